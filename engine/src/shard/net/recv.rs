//! The receiving side of a shard's connections: accepting (with the
//! server-wide connection limit), multishot receives, and pausing a
//! connection whose input must wait.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use runtime::Token;

use super::Net;
use super::conn::{Conn, Pause, Wire};
use crate::shard::ops::{OP_CANCEL, OP_RECV, TCP_GROUP};
use crate::shard::stats::ShardStats;
use crate::shared::Shared;

/// What a client over the connection limit is told before it is closed
/// (memcached's words).
const TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";

/// What a receive completion leaves for the request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Bytes for connection `slot`: parse them.
    Data(u32),
    /// No bytes (EOF, an error, buffers exhausted); the connection is marked
    /// for this turn's flush.
    Nothing(u32),
    /// The connection is gone (a late completion).
    Stale,
}

impl Net {
    pub fn on_accept(
        &mut self,
        listener: u32,
        result: i32,
        more: bool,
        shared: &Shared,
        stats: &mut ShardStats,
        now: u32,
    ) {
        let index = listener as usize;
        if !more {
            self.accept_armed[index] = false;
        }
        if result < 0 {
            match -result {
                libc::ECANCELED => {}
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    // Out of descriptors or memory: retrying at once would spin.
                    if !self.accept_backoff {
                        tracing::warn!(
                            "accept failed: {}",
                            std::io::Error::from_raw_os_error(-result)
                        );
                    }
                    self.accept_backoff = true;
                }
                e => tracing::debug!("accept failed: {}", std::io::Error::from_raw_os_error(e)),
            }
        } else {
            // SAFETY: a successful accept returns a new descriptor that we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(result) };
            self.admit(fd, listener, shared, stats, now);
        }
        if !self.accept_armed[index] && !self.stopping && !self.accept_backoff {
            let _ = self.arm_listeners();
        }
    }

    fn admit(
        &mut self,
        fd: OwnedFd,
        listener: u32,
        shared: &Shared,
        stats: &mut ShardStats,
        now: u32,
    ) {
        if self.stopping {
            return;
        }
        let limit = shared.config.server.max_connections;
        if shared.connections.fetch_add(1, Ordering::Relaxed) >= limit {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            stats.rejected_connections += 1;
            // SAFETY: send on a descriptor we own, from a static buffer; a
            // fresh socket's empty send buffer takes these few bytes at once.
            unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    TOO_MANY_CONNECTIONS.as_ptr().cast(),
                    TOO_MANY_CONNECTIONS.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
            }
            return;
        }
        let _ = runtime::socket::set_nodelay(&fd);
        let tls = match &shared.tls {
            Some(certs) if self.tls_listener.get(listener as usize) == Some(&true) => {
                match crate::tls::TlsConn::new(certs.config(&mut self.tls_config)) {
                    Ok(t) => Some(Box::new(t)),
                    Err(e) => {
                        tracing::warn!("TLS connection refused: {e}");
                        shared.connections.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            _ => None,
        };
        let http = self.http_listener == Some(listener);
        let (slot, _) = self.conns.insert(|generation| {
            let mut conn = Conn::new(fd, generation, now, listener);
            if http {
                conn.wire = Wire::Http;
                conn.http = Some(Box::default());
            }
            conn.tls = tls;
            conn
        });
        stats.curr_connections += 1;
        stats.total_connections += 1;
        if shared.logger.state().wants(crate::logger::EV_CONNEVENTS)
            && let Some(c) = self.conns.slot(slot)
        {
            self.conn_events.push(crate::shard::watch::ConnEvent {
                peer: c.peer,
                fd: c.raw_fd(),
                closed: None,
            });
        }
        self.arm_recv(slot);
    }

    pub(super) fn arm_recv(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let (fd, token) = (conn.raw_fd(), Token::new(OP_RECV, slot, conn.generation));
        conn.recv_armed = true;
        // SAFETY: the shard's buffer ring outlives its connections, and the
        // connection's descriptor stays open until the receive has ended
        // (`quiescent`).
        if unsafe { self.ring.queue_recv_multi(fd, TCP_GROUP, token) }.is_err()
            && let Some(conn) = self.conns.slot_mut(slot)
        {
            conn.recv_armed = false;
            conn.closing = true;
        }
    }

    /// Whether the connection of receive `t` parses its input now. One that
    /// has paused (it ran its budget with a backlog, or waits for its replies
    /// to drain or for a channel) only keeps what arrives until its receive
    /// is cancelled: the buffers it takes, and an ENOBUFS, say nothing about
    /// the receive pool being short.
    pub fn is_reading(&self, t: Token) -> bool {
        self.conns
            .get(t.slot, t.generation)
            .is_some_and(|c| c.pause == Pause::No && !c.closing)
    }

    /// A receive completed with `result`.
    pub fn on_recv(
        &mut self,
        t: Token,
        result: i32,
        more: bool,
        stats: &mut ShardStats,
    ) -> Received {
        let Some(conn) = self.conns.get_mut(t.slot, t.generation) else {
            return Received::Stale;
        };
        if !more {
            conn.recv_armed = false;
            conn.cancelling = false;
        }
        match result {
            n if n > 0 => {
                stats.bytes_read += n as u64;
                return Received::Data(t.slot);
            }
            0 => {
                // EOF: answer what was sent before it, then close. A
                // connection that yielded still has requests buffered: it
                // closes once they have run (`Core::run_backlog`).
                conn.eof = true;
                if conn.pause != Pause::Yield {
                    conn.closing = true;
                }
            }
            e if -e == libc::ENOBUFS => {
                // Every receive buffer is taken; they come back this turn.
            }
            e if -e == libc::ECANCELED => {}
            _ => {
                // Reset or another error: nobody will read replies any more.
                conn.eof = true;
                conn.closing = true;
                conn.replies.reset();
            }
        }
        Received::Nothing(t.slot)
    }

    /// Stops reading a connection: its multishot receive is cancelled, and
    /// what already arrived waits in its read buffer.
    pub fn pause(&mut self, slot: u32, why: Pause) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        conn.pause = why;
        if why == Pause::Mesh && !self.stalled.contains(&slot) {
            self.stalled.push(slot);
        }
        if why == Pause::Yield {
            // Paused at most once per turn: the list holds no duplicates.
            self.yielded.push(slot);
        }
        self.cancel_recv(slot);
    }

    pub(super) fn cancel_recv(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if conn.recv_armed && !conn.cancelling {
            conn.cancelling = true;
            let target = Token::new(OP_RECV, slot, conn.generation);
            if self
                .ring
                .queue_cancel(target, Token::op(OP_CANCEL))
                .is_err()
                && let Some(conn) = self.conns.slot_mut(slot)
            {
                conn.cancelling = false;
            }
        }
    }
}
