//! TLS for client connections and peer links, with rustls' unbuffered API so that it runs
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
//! ([`Settings`], [`Certs`], reloaded by `refresh_certs`), the client
//! configuration of peer links made from the same files
//! ([`peer_client_config`]), and one connection's record layer
//! ([`TlsConn`], conn.rs) for either end: the shard's network half puts a
//! server-side `TlsConn` on each connection of a TLS listener (shard/net/),
//! a peer link a client-side one on the connection it opens (shard/peer/).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    NoServerSessionStorage, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};

mod conn;
pub use conn::{ClientSide, Received, ServerSide, Side, TlsConn};

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
/// With TLS on peer links the same files make the client configuration the
/// links connect with, reloaded with it.
pub struct Certs {
    settings: Settings,
    version: AtomicU64,
    current: std::sync::Mutex<Loaded>,
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

/// The configurations one load of the files made.
struct Loaded {
    server: Arc<ServerConfig>,
    /// For peer links, when they use TLS.
    peer: Option<Arc<ClientConfig>>,
}

impl Certs {
    /// Loads the server configuration and, with `peers`, the client one for
    /// peer links.
    pub fn load(settings: Settings, peers: bool) -> Result<Certs, String> {
        let sessions = Arc::new(AtomicU64::new(0));
        let loaded = Certs::read(&settings, peers, sessions.clone())?;
        Ok(Certs {
            settings,
            version: AtomicU64::new(1),
            current: std::sync::Mutex::new(loaded),
            sessions,
            loaded_at: AtomicU64::new(unix_now()),
        })
    }

    fn read(s: &Settings, peers: bool, sessions: Arc<AtomicU64>) -> Result<Loaded, String> {
        let server = server_config_counting(s, sessions)?.config;
        let peer = peers.then(|| peer_client_config(s)).transpose()?;
        Ok(Loaded { server, peer })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Reads the files again; on an error the configuration in use stays.
    pub fn refresh(&self) -> Result<(), String> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *current = Certs::read(
            &self.settings,
            current.peer.is_some(),
            self.sessions.clone(),
        )?;
        self.version.fetch_add(1, Ordering::Release);
        self.loaded_at.store(unix_now(), Ordering::Relaxed);
        Ok(())
    }

    /// Takes the current configuration through a shard's cache (`cached`:
    /// the version and configuration it took last).
    fn cached<C>(
        &self,
        cached: &mut Option<(u64, Arc<C>)>,
        pick: impl FnOnce(&Loaded) -> Option<Arc<C>>,
    ) -> Option<Arc<C>> {
        let version = self.version.load(Ordering::Acquire);
        match cached {
            Some((v, c)) if *v == version => Some(c.clone()),
            _ => {
                let c = pick(&self.current.lock().unwrap_or_else(|e| e.into_inner()))?;
                *cached = Some((version, c.clone()));
                Some(c)
            }
        }
    }

    /// The server configuration for a new connection.
    pub fn config(&self, cached: &mut Option<(u64, Arc<ServerConfig>)>) -> Arc<ServerConfig> {
        self.cached(cached, |l| Some(l.server.clone()))
            .expect("a server configuration is always loaded")
    }

    /// The client configuration for a new peer link; `None` when peer links
    /// are plaintext.
    pub fn peer_config(
        &self,
        cached: &mut Option<(u64, Arc<ClientConfig>)>,
    ) -> Option<Arc<ClientConfig>> {
        self.cached(cached, |l| l.peer.clone())
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
    let (provider, versions) = provider_and_versions(s)?;
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

/// The crypto provider with `ssl_ciphers`' suites, and the versions from
/// `ssl_min_version`: the same for both ends of a connection.
fn provider_and_versions(
    s: &Settings,
) -> Result<
    (
        Arc<rustls::crypto::CryptoProvider>,
        &'static [&'static rustls::SupportedProtocolVersion],
    ),
    String,
> {
    let mut provider = ring::default_provider();
    if let Some(list) = &s.ciphers {
        provider.cipher_suites = cipher_suites(list)?;
    }
    static FROM_12: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    let versions: &'static [&'static rustls::SupportedProtocolVersion] = match s.min_version {
        MinVersion::Tls12 => &FROM_12,
        MinVersion::Tls13 => &ONLY_13,
    };
    Ok((Arc::new(provider), versions))
}

/// The client configuration of peer links: the peer's certificate must
/// chain to `ssl_ca_cert` and name the peer's host; this node presents its
/// own `ssl_chain_cert`/`ssl_key`, so that peers requiring client
/// certificates (`ssl_verify_mode` 2 or 3) accept it. Same suites and
/// minimum version as the server side.
pub fn peer_client_config(s: &Settings) -> Result<Arc<ClientConfig>, String> {
    let Some(ca) = &s.ca_cert else {
        return Err(
            "TLS on peer links verifies peers against ssl_ca_cert: give -o ssl_ca_cert=PATH (tls.ca_cert), or turn peer TLS off with --cluster-tls off (cluster.tls = false)"
                .into(),
        );
    };
    let roots = load_roots(ca).map_err(|e| format!("Error loading the CA certificate: {e}"))?;
    let chain = load_chain(&s.chain_cert)
        .map_err(|e| format!("Error loading the certificate chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(&s.key)
        .map_err(|e| format!("Error loading the private key: {} : {e}", s.key.display()))?;
    let (provider, versions) = provider_and_versions(s)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("ssl_ciphers: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("Error loading the private key: {} : {e}", s.key.display()))?;
    Ok(Arc::new(config))
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
