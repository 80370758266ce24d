//! The receive side of a TLS peer link: the ciphertext of a receive is
//! decrypted where the kernel put it, and each record's plaintext is matched
//! to the waiting requests straight from there; only the start of a reply
//! that a record leaves incomplete is kept (in `plain`) for the next one.
//!
//! ```text
//!   recv ─► rbuf (ciphertext) ─► TlsConn::receive ─► record decrypted in place
//!                                                      │ `plain` empty?  match from the record, keep the tail
//!                                                      └ else            append to `plain`, match from there
//! ```
//!
//! The caller takes the link's TLS state out ([`Links::take_tls`]), so that
//! matching may deliver replies to connections, and puts it back after.

use super::{Failure, Links, State};
use crate::tls::{ClientSide, Received, TlsConn};

/// A TLS link's receive state, taken out of the link for one receive.
pub struct TlsRx {
    tls: Box<TlsConn<ClientSide>>,
    /// The ciphertext the receive brought (emptied by [`TlsRx::receive`]).
    cipher: Vec<u8>,
    /// Plaintext of a reply not yet whole.
    plain: Vec<u8>,
    /// Whether any plaintext arrived (the peer's first reply: the link is up).
    delivered: bool,
}

impl TlsRx {
    /// Decrypts what was received and hands the plaintext to `matcher`,
    /// which returns how much of it made whole replies (and whether the
    /// stream broke). Returns why the link must be dropped, if it must.
    pub fn receive(
        &mut self,
        mut matcher: impl FnMut(&[u8]) -> (usize, Option<Failure>),
    ) -> Option<Failure> {
        let TlsRx {
            tls,
            cipher,
            plain,
            delivered,
        } = self;
        let mut failure = None;
        let got = tls.receive(cipher, &mut |record| {
            if failure.is_some() || record.is_empty() {
                return;
            }
            *delivered = true;
            if plain.is_empty() {
                let (used, f) = matcher(record);
                plain.extend_from_slice(&record[used..]);
                failure = f;
            } else {
                plain.extend_from_slice(record);
                let (used, f) = matcher(plain);
                plain.drain(..used);
                failure = f;
            }
        });
        cipher.clear();
        failure.or(match got {
            Received::Open => None,
            Received::PeerClosed => Some(Failure::Closed),
            Received::Failed { .. } => Some(Failure::Tls),
        })
    }
}

impl Links {
    /// Whether the link to `node` speaks TLS on its current connection.
    pub(super) fn is_tls(&self, node: usize) -> bool {
        self.links
            .get(node)
            .and_then(Option::as_ref)
            .is_some_and(|l| l.tls.is_some())
    }

    /// The TLS state of the link to `node`, with the ciphertext received.
    pub(super) fn take_tls(&mut self, node: usize) -> Option<TlsRx> {
        let link = self.link(node)?;
        let tls = link.tls.take()?;
        Some(TlsRx {
            tls,
            cipher: std::mem::take(&mut link.rbuf),
            plain: std::mem::take(&mut link.plain),
            delivered: false,
        })
    }

    /// Puts back what [`Links::take_tls`] took; the peer's first reply makes
    /// a handshaking link up.
    pub(super) fn put_tls(&mut self, node: usize, rx: TlsRx) {
        let Some(link) = self.link(node) else {
            return;
        };
        if rx.delivered
            && let State::Handshaking { .. } = link.state
        {
            link.state = State::Up;
            link.stats.tls_handshakes += 1;
            tracing::debug!(
                peer = %link.addr,
                tls = rx.tls.describe().unwrap_or_default(),
                "cluster link up over TLS"
            );
        }
        link.tls = Some(rx.tls);
        link.rbuf = rx.cipher;
        link.plain = rx.plain;
        if link.plain.is_empty() && link.plain.capacity() > 4 * super::RECV_CHUNK {
            link.plain = Vec::new();
        }
    }
}
