//! TLS for client connections, with rustls' unbuffered API so that it runs
//! on the shard's own loop: no thread, no socket of rustls' own, no buffer
//! of plaintext inside rustls.
//!
//! ```text
//!   recv completion (provided buffer) ─► TlsConn::receive ─► records decrypted in place
//!        └─ partial record? the tail is kept in `incoming` ─┘       └─► deliver(plaintext) ─► request path
//!   replies (plaintext) ─► TlsConn::encrypt ─► `outgoing` (ciphertext, handshake, alerts) ─► send
//! ```
//!
//! A record that arrives whole in one receive buffer is decrypted where the
//! kernel put it; only a record split across receives is assembled in
//! `incoming`. Replies are encrypted straight from the reply queue's bytes
//! into the send buffer: the cipher's own copy is the only one.
//!
//! Here: the server configuration from memcached's `-o ssl_*` settings
//! ([`Settings`], [`Certs`], reloaded by `refresh_certs`) and one
//! connection's record layer ([`TlsConn`]); the shard's network half puts a
//! `TlsConn` on each connection of a TLS listener (shard/net/).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    NoServerSessionStorage, ServerSessionMemoryCache, StoresServerSessions,
    UnbufferedServerConnection, WebPkiClientVerifier,
};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};

/// Bytes a TLS record adds to at most 16 KiB of plaintext (TLS 1.2 with
/// AES-GCM: header 5, explicit nonce 8, tag 16; TLS 1.3 adds 22).
const RECORD_OVERHEAD: usize = 29;
const MAX_PLAINTEXT: usize = 16 * 1024;

/// Sessions kept for resumption with `ssl_session_cache`.
const SESSION_CACHE_ENTRIES: usize = 16 * 1024;

/// The lowest protocol version a client may speak (`ssl_min_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

impl MinVersion {
    /// memcached's numbering: 0 TLSv1, 1 TLSv1.1, 2 TLSv1.2, 3 TLSv1.3.
    /// rustls speaks neither 1.0 nor 1.1: those mean 1.2, with a warning
    /// (the second value).
    pub fn from_memcached(n: &str) -> Result<(MinVersion, Option<String>), String> {
        match n {
            "0" | "1" => Ok((
                MinVersion::Tls12,
                Some(format!(
                    "ssl_min_version={n} asks for TLS 1.{}, which rustls does not speak: TLS 1.2 is the minimum",
                    n.parse::<u8>().unwrap_or(0)
                )),
            )),
            "2" => Ok((MinVersion::Tls12, None)),
            "3" => Ok((MinVersion::Tls13, None)),
            _ => Err(format!("ssl_min_version must be 0..3, not {n}")),
        }
    }

    /// As `stats settings` shows it (memcached's words).
    pub fn name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

/// memcached's `-o ssl_*` settings, as far as they shape the server config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// PEM certificate chain, leaf first (`ssl_chain_cert`).
    pub chain_cert: PathBuf,
    /// PEM private key: PKCS#1, PKCS#8 or SEC1 (`ssl_key`).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to (`ssl_ca_cert`).
    pub ca_cert: Option<PathBuf>,
    /// 0 none, 1 ask for a client certificate (verified if sent), 2 require
    /// one, 3 require one (OpenSSL's "once" only matters to renegotiation,
    /// which TLS 1.3 and rustls do not do).
    pub verify_mode: u8,
    pub min_version: MinVersion,
    /// Keep sessions for resumption by session ID and TLS 1.3 tickets.
    pub session_cache: bool,
    /// OpenSSL cipher names, colon separated (`ssl_ciphers`); `None`: rustls' defaults.
    pub ciphers: Option<String>,
}

/// OpenSSL's names of the suites rustls (with the ring provider) offers.
/// OpenSSL's `ssl_ciphers` list names TLS 1.2 suites only and leaves TLS 1.3
/// on; here a TLS 1.3 name may be listed too, and a list without any keeps
/// every TLS 1.3 suite, as OpenSSL would.
const CIPHER_NAMES: &[(&str, SupportedCipherSuite)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The suites an `ssl_ciphers` list names; an unknown name is refused
/// rather than silently dropped.
pub fn cipher_suites(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut suites = Vec::new();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        let Some((_, suite)) = CIPHER_NAMES.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = CIPHER_NAMES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "ssl_ciphers: unknown cipher {name} (known: {})",
                known.join(":")
            ));
        };
        if !suites.contains(suite) {
            suites.push(*suite);
        }
    }
    if suites.is_empty() {
        return Err("ssl_ciphers names no cipher".into());
    }
    if !suites.iter().any(|s| s.tls13().is_some()) {
        suites.extend(
            CIPHER_NAMES
                .iter()
                .map(|(_, s)| *s)
                .filter(|s| s.tls13().is_some()),
        );
    }
    Ok(suites)
}

/// A server configuration and the counter of sessions it created.
#[derive(Clone)]
pub struct Server {
    pub config: Arc<ServerConfig>,
    /// Sessions stored for resumption (`ssl_new_sessions`); `None` without
    /// `ssl_session_cache`, when memcached does not report the stat either.
    pub new_sessions: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("new_sessions", &self.new_sessions)
            .finish_non_exhaustive()
    }
}

/// Reads the certificates and key the settings name and builds the server
/// configuration. Errors are one line, memcached's wording where it has one.
pub fn server_config(s: &Settings) -> Result<Server, String> {
    server_config_counting(s, Arc::new(AtomicU64::new(0)))
}

/// The server's certificates: loaded at start, reloaded by `refresh_certs`
/// and SIGHUP. Shards keep the configuration they last took and take the
/// new one when `version` moves, so accepting locks nothing unless it did.
pub struct Certs {
    settings: Settings,
    version: AtomicU64,
    current: std::sync::Mutex<Arc<ServerConfig>>,
    sessions: Arc<AtomicU64>,
    /// Seconds since the Unix epoch of the last successful load.
    loaded_at: AtomicU64,
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certs")
            .field("settings", &self.settings)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Certs {
    pub fn load(settings: Settings) -> Result<Certs, String> {
        let sessions = Arc::new(AtomicU64::new(0));
        let server = server_config_counting(&settings, sessions.clone())?;
        Ok(Certs {
            settings,
            version: AtomicU64::new(1),
            current: std::sync::Mutex::new(server.config),
            sessions,
            loaded_at: AtomicU64::new(unix_now()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Reads the files again; on an error the configuration in use stays.
    pub fn refresh(&self) -> Result<(), String> {
        let server = server_config_counting(&self.settings, self.sessions.clone())?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = server.config;
        self.version.fetch_add(1, Ordering::Release);
        self.loaded_at.store(unix_now(), Ordering::Relaxed);
        Ok(())
    }

    /// The configuration for a new connection, through a shard's cache
    /// (`cached`: the version and configuration it took last).
    pub fn config(&self, cached: &mut Option<(u64, Arc<ServerConfig>)>) -> Arc<ServerConfig> {
        let version = self.version.load(Ordering::Acquire);
        match cached {
            Some((v, c)) if *v == version => c.clone(),
            _ => {
                let c = self
                    .current
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                *cached = Some((version, c.clone()));
                c
            }
        }
    }

    /// Sessions stored for resumption (`ssl_new_sessions`), with the cache on.
    pub fn new_sessions(&self) -> Option<u64> {
        self.settings
            .session_cache
            .then(|| self.sessions.load(Ordering::Relaxed))
    }

    /// Seconds since the certificates were last loaded.
    pub fn since_refresh(&self) -> u64 {
        unix_now().saturating_sub(self.loaded_at.load(Ordering::Relaxed))
    }
}

fn server_config_counting(s: &Settings, sessions: Arc<AtomicU64>) -> Result<Server, String> {
    let chain = load_chain(&s.chain_cert)
        .map_err(|e| format!("Error loading the certificate chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(&s.key)
        .map_err(|e| format!("Error loading the private key: {} : {e}", s.key.display()))?;
    let mut provider = ring::default_provider();
    if let Some(list) = &s.ciphers {
        provider.cipher_suites = cipher_suites(list)?;
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("ssl_ciphers: {e}"))?;
    let builder = match s.verify_mode {
        0 => builder.with_no_client_auth(),
        1..=3 => {
            let Some(ca) = &s.ca_cert else {
                return Err(format!(
                    "ssl_verify_mode={} needs ssl_ca_cert to verify client certificates",
                    s.verify_mode
                ));
            };
            let roots =
                load_roots(ca).map_err(|e| format!("Error loading the CA certificate: {e}"))?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if s.verify_mode == 1 {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("ssl_ca_cert {}: {e}", ca.display()))?,
            )
        }
        n => return Err(format!("ssl_verify_mode must be 0..3, not {n}")),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("Error loading the private key: {} : {e}", s.key.display()))?;
    config.max_early_data_size = 0;
    let new_sessions = if s.session_cache {
        config.session_storage = Arc::new(CountingCache {
            inner: ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES),
            stored: sessions.clone(),
        });
        Some(sessions)
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        None
    };
    Ok(Server {
        config: Arc::new(config),
        new_sessions,
    })
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{} : {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} : no certificate in the file", path.display()));
    }
    Ok(chain)
}

fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in load_chain(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{} : {e}", path.display()))?;
    }
    Ok(roots)
}

/// rustls' session cache, counting the sessions stored. Its lock is taken
/// in handshakes only, never on the request path.
#[derive(Debug)]
struct CountingCache {
    inner: Arc<ServerSessionMemoryCache>,
    stored: Arc<AtomicU64>,
}

impl StoresServerSessions for CountingCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let stored = self.inner.put(key, value);
        if stored {
            self.stored.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.take(key)
    }

    fn can_cache(&self) -> bool {
        true
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

/// One connection's TLS state and the ciphertext it holds.
pub struct TlsConn {
    conn: UnbufferedServerConnection,
    /// The start of a record that has not arrived whole.
    incoming: Vec<u8>,
    /// Ciphertext to send: handshake messages, alerts, encrypted replies.
    pub outgoing: Vec<u8>,
    /// Replies made before the handshake allowed encrypting them.
    early: Vec<u8>,
    failed: bool,
    /// close_notify has been queued (or cannot be): nothing more to send.
    finished: bool,
}

impl fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn")
            .field("handshaking", &self.conn.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("outgoing", &self.outgoing.len())
            .finish_non_exhaustive()
    }
}

impl TlsConn {
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsConn, rustls::Error> {
        Ok(TlsConn {
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            early: Vec::new(),
            failed: false,
            finished: false,
        })
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
                self.conn.process_tls_records(&mut buf[used..]);
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
                // Early data is off (max_early_data_size = 0).
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
                self.conn.process_tls_records(&mut self.incoming);
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
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut self.incoming);
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
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut self.incoming);
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

/// Whether this kernel offers the `tls` upper-layer protocol that kernel TLS
/// offload needs (`ssl_kernel_tls`). Offload itself is not built: without
/// the ULP it cannot be tested here.
pub fn kernel_tls_available() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").is_ok_and(|s| has_tls_ulp(&s))
}

fn has_tls_ulp(list: &str) -> bool {
    list.split_whitespace().any(|u| u == "tls")
}

#[cfg(test)]
mod tests;
