//! One connection's record layer on rustls' unbuffered API, for either side:
//! [`ServerSide`] on the connections of a TLS listener, [`ClientSide`] on a
//! peer link this node opens to another (shard/peer/). The two differ only in
//! the rustls connection type underneath ([`Side`]); everything else here,
//! decrypting in place, encrypting into the send buffer, alerts and
//! close_notify, is the same code.

use std::fmt;
use std::ops::DerefMut;
use std::sync::Arc;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedConnectionCommon, UnbufferedStatus,
};
use rustls::{ClientConfig, ServerConfig};

/// Bytes a TLS record adds to at most 16 KiB of plaintext (TLS 1.2 with
/// AES-GCM: header 5, explicit nonce 8, tag 16; TLS 1.3 adds 22).
pub(super) const RECORD_OVERHEAD: usize = 29;
pub(super) const MAX_PLAINTEXT: usize = 16 * 1024;

/// Which end of the handshake a [`TlsConn`] is: the rustls connection type
/// and its `process_tls_records` (rustls defines one per side).
pub trait Side {
    type Data;
    type Conn: DerefMut<Target = UnbufferedConnectionCommon<Self::Data>>;
    fn process<'c, 'i>(
        conn: &'c mut Self::Conn,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

/// The accepting end: a client connected to one of our TLS listeners.
pub enum ServerSide {}

/// The connecting end: this node on a peer link to another node's listener.
pub enum ClientSide {}

impl Side for ServerSide {
    type Data = ServerConnectionData;
    type Conn = UnbufferedServerConnection;
    fn process<'c, 'i>(
        conn: &'c mut Self::Conn,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        conn.process_tls_records(incoming)
    }
}

impl Side for ClientSide {
    type Data = ClientConnectionData;
    type Conn = UnbufferedClientConnection;
    fn process<'c, 'i>(
        conn: &'c mut Self::Conn,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        conn.process_tls_records(incoming)
    }
}

/// What a receive left the connection in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Go on reading.
    Open,
    /// The client sent close_notify: no more input.
    PeerClosed,
    /// A protocol error (an alert for the client may be in `outgoing`):
    /// close. `handshake` says whether it happened before the handshake
    /// completed (`ssl_handshake_errors`).
    Failed { handshake: bool },
}

/// One connection's TLS state and the ciphertext it holds; the server's
/// end unless said otherwise.
pub struct TlsConn<S: Side = ServerSide> {
    conn: S::Conn,
    /// The start of a record that has not arrived whole.
    incoming: Vec<u8>,
    /// Ciphertext to send: handshake messages, alerts, encrypted replies.
    pub outgoing: Vec<u8>,
    /// Replies made before the handshake allowed encrypting them.
    early: Vec<u8>,
    failed: bool,
    /// close_notify has been queued (or cannot be): nothing more to send.
    finished: bool,
    /// Why the connection failed, for the log of whoever closes it.
    error: Option<rustls::Error>,
}

impl<S: Side> fmt::Debug for TlsConn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn")
            .field("handshaking", &self.conn.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("outgoing", &self.outgoing.len())
            .finish_non_exhaustive()
    }
}

impl TlsConn<ServerSide> {
    /// The server's end of a connection a client opened.
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsConn<ServerSide>, rustls::Error> {
        Ok(TlsConn::with(UnbufferedServerConnection::new(config)?))
    }
}

impl TlsConn<ClientSide> {
    /// The client's end of a connection to `name` (the certificate the
    /// server presents must be valid for it). Its first flight, the
    /// ClientHello, is in `outgoing` at once.
    pub fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsConn<ClientSide>, rustls::Error> {
        let mut tls = TlsConn::with(UnbufferedClientConnection::new(config, name)?);
        // Nothing to encrypt: this only runs the state machine to its first
        // wait, encoding the ClientHello on the way.
        tls.write(&[])?;
        Ok(tls)
    }
}

impl<S: Side> TlsConn<S> {
    fn with(conn: S::Conn) -> TlsConn<S> {
        TlsConn {
            conn,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            early: Vec::new(),
            failed: false,
            finished: false,
            error: None,
        }
    }

    /// Why the connection failed, once it has.
    pub fn error(&self) -> Option<&rustls::Error> {
        self.error.as_ref()
    }

    /// Frees the ciphertext buffers' spare room once they are empty (an idle
    /// connection then holds only rustls' own state).
    pub fn release_idle_buffers(&mut self) {
        if self.outgoing.is_empty() && self.outgoing.capacity() > 4096 {
            self.outgoing = Vec::new();
        }
        if self.incoming.is_empty() && self.incoming.capacity() > 0 {
            self.incoming = Vec::new();
        }
        if self.early.is_empty() && self.early.capacity() > 0 {
            self.early = Vec::new();
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The negotiated protocol and suite, for logs (`None` while handshaking).
    pub fn describe(&self) -> Option<String> {
        let version = self.conn.protocol_version()?;
        let suite = self.conn.negotiated_cipher_suite()?;
        Some(format!("{version:?} {:?}", suite.suite()))
    }

    /// Ciphertext from the client, in `data` (a receive buffer, decrypted in
    /// place). Each decrypted record is handed to `deliver`.
    pub fn receive(&mut self, data: &mut [u8], deliver: &mut dyn FnMut(&[u8])) -> Received {
        if self.failed {
            return Received::Failed { handshake: false };
        }
        let handshake = self.conn.is_handshaking();
        // What rustls did not discard stays in `incoming`, in order: a
        // handshake message split across records is kept there by position.
        let (used, result) = if self.incoming.is_empty() {
            let (used, r) = self.drive(data, deliver);
            self.incoming.extend_from_slice(&data[used..]);
            (0, r)
        } else {
            self.incoming.extend_from_slice(data);
            let mut buf = std::mem::take(&mut self.incoming);
            let (used, r) = self.drive(&mut buf, deliver);
            self.incoming = buf;
            (used, r)
        };
        self.incoming.drain(..used);
        match result {
            Ok(true) => Received::PeerClosed,
            Ok(false) => {
                self.flush_early();
                Received::Open
            }
            Err(e) => {
                tracing::debug!("TLS connection failed: {e}");
                self.fail();
                self.error = Some(e);
                Received::Failed {
                    handshake: handshake && self.conn.is_handshaking(),
                }
            }
        }
    }

    /// Runs the state machine over `buf` until it wants more input. Returns
    /// how much of `buf` it used and whether the client closed.
    fn drive(
        &mut self,
        buf: &mut [u8],
        deliver: &mut dyn FnMut(&[u8]),
    ) -> (usize, Result<bool, rustls::Error>) {
        let mut used = 0;
        let mut peer_closed = false;
        loop {
            let UnbufferedStatus { mut discard, state } =
                S::process(&mut self.conn, &mut buf[used..]);
            let step = match state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut step = Ok(None);
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                discard += record.discard;
                                deliver(record.payload);
                            }
                            Err(e) => {
                                step = Err(e);
                                break;
                            }
                        }
                    }
                    step
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_into(&mut self.outgoing, &mut encode).map(|()| None)
                }
                // Sent at the end of the loop turn, with the replies.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Ok(None)
                }
                Ok(ConnectionState::PeerClosed) => {
                    peer_closed = true;
                    Ok(None)
                }
                Ok(ConnectionState::Closed) => Ok(Some(true)),
                Ok(ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_)) => {
                    Ok(Some(peer_closed))
                }
                // Early data is off (max_early_data_size = 0), and a client
                // never reads any.
                Ok(_) => Err(rustls::Error::General("unexpected TLS state".into())),
            };
            used += discard;
            match step {
                Ok(None) => {}
                Ok(Some(closed)) => return (used, Ok(closed)),
                Err(e) => return (used, Err(e)),
            }
        }
    }

    /// Encrypts `plain` (replies) into `outgoing`; before the handshake
    /// allows that, keeps it to encrypt once it does.
    pub fn encrypt(&mut self, plain: &[u8]) -> Result<(), rustls::Error> {
        if self.failed {
            return Ok(());
        }
        if !self.early.is_empty() || !self.write(plain)? {
            self.early.extend_from_slice(plain);
        }
        Ok(())
    }

    fn flush_early(&mut self) {
        if self.early.is_empty() {
            return;
        }
        let early = std::mem::take(&mut self.early);
        match self.write(&early) {
            Ok(true) => {}
            Ok(false) => self.early = early,
            Err(_) => self.fail(),
        }
    }

    /// Encrypts `plain` if the connection may send application data now.
    fn write(&mut self, plain: &[u8]) -> Result<bool, rustls::Error> {
        loop {
            let UnbufferedStatus { discard, state } =
                S::process(&mut self.conn, &mut self.incoming);
            let done = match state? {
                ConnectionState::WriteTraffic(mut traffic) => {
                    let guess = plain.len() + (plain.len() / MAX_PLAINTEXT + 1) * RECORD_OVERHEAD;
                    append(&mut self.outgoing, guess, |out| {
                        match traffic.encrypt(plain, out) {
                            Ok(n) => Ok(n),
                            Err(EncryptError::InsufficientSize(s)) => Err(Some(s.required_size)),
                            Err(_) => Err(None),
                        }
                    })?;
                    Some(true)
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(&mut self.outgoing, &mut encode)?;
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                _ => Some(false),
            };
            self.incoming.drain(..discard);
            if let Some(done) = done {
                return Ok(done);
            }
        }
    }

    /// After an error: queue the alert rustls made for the client, if any.
    /// (The buffer passed must be what is left of the input: rustls may
    /// hold positions in it.)
    fn fail(&mut self) {
        self.failed = true;
        self.early.clear();
        // Only while an alert is queued: a call with nothing queued would
        // parse the rest of the input again.
        while self.conn.wants_write() {
            let UnbufferedStatus { state, .. } = S::process(&mut self.conn, &mut self.incoming);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    if encode_into(&mut self.outgoing, &mut encode).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.incoming = Vec::new();
    }

    /// Queues close_notify before the connection closes, as memcached's
    /// SSL_shutdown does: a client reading after the server closed then sees
    /// a clean end of the stream rather than a truncation. Once only; true
    /// when this call queued it (the caller then has ciphertext to send).
    pub fn close_notify(&mut self) -> bool {
        if self.failed || self.finished {
            return false;
        }
        self.finished = true;
        let UnbufferedStatus { state, .. } = S::process(&mut self.conn, &mut self.incoming);
        let Ok(ConnectionState::WriteTraffic(mut traffic)) = state else {
            return false;
        };
        let before = self.outgoing.len();
        let _ = append(&mut self.outgoing, 64, |out| {
            traffic.queue_close_notify(out).map_err(|e| match e {
                EncryptError::InsufficientSize(s) => Some(s.required_size),
                _ => None,
            })
        });
        self.outgoing.len() > before
    }
}

/// Encodes a handshake record at the end of `out`.
fn encode_into<Data>(
    out: &mut Vec<u8>,
    encode: &mut rustls::unbuffered::EncodeTlsData<'_, Data>,
) -> Result<(), rustls::Error> {
    append(out, 4096, |buf| match encode.encode(buf) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(s)) => Err(Some(s.required_size)),
        Err(_) => Err(None),
    })
}

/// Appends what `write` writes into a spare tail of `out`, growing the tail
/// to the size asked for when `write` says it is too small (`Err(Some(n))`).
fn append(
    out: &mut Vec<u8>,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    let mut room = guess.max(64);
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(need)) if need > room => room = need,
            Err(_) => {
                out.truncate(start);
                return Err(rustls::Error::General("TLS encoding failed".into()));
            }
        }
    }
}
