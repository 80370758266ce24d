//! `[tls]`: TLS on the memcached port, memcached's `-Z` and `-o ssl_*`
//! (see engine/src/tls/ and docs/security.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::tls::{MinVersion, Settings};

/// `[tls]`, and `-Z` with memcached's `-o ssl_*` options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// TLS on every TCP listener but the `plain` ones (-Z).
    pub enabled: bool,
    /// PEM certificate chain, leaf first (ssl_chain_cert).
    pub chain_cert: Option<PathBuf>,
    /// PEM private key (ssl_key).
    pub key: Option<PathBuf>,
    /// PEM CA certificates for client certificates (ssl_ca_cert).
    pub ca_cert: Option<PathBuf>,
    /// 0 none, 1 ask, 2 and 3 require a client certificate (ssl_verify_mode).
    pub verify_mode: u8,
    /// memcached's numbering: 2 TLS 1.2, 3 TLS 1.3 (0 and 1 mean 1.2) (ssl_min_version).
    pub min_version: u8,
    /// Keep sessions for resumption (ssl_session_cache).
    pub session_cache: bool,
    /// OpenSSL cipher names, colon separated (ssl_ciphers).
    pub ciphers: Option<String>,
    /// Ask for kernel TLS offload (ssl_kernel_tls): not built, so always the
    /// rustls path; a warning says so.
    pub kernel_tls: bool,
    /// memcached's write buffer per connection in KiB (ssl_wbuf_size):
    /// shown in `stats settings`, no effect (replies are encrypted straight
    /// into the send buffer).
    pub wbuf_size_kb: u32,
    /// Listeners without TLS (memcached's `-l notls:ADDR:PORT`).
    pub plain: Vec<SocketAddr>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enabled: false,
            chain_cert: None,
            key: None,
            ca_cert: None,
            verify_mode: 0,
            min_version: 2,
            session_cache: false,
            ciphers: None,
            kernel_tls: false,
            wbuf_size_kb: 16,
            plain: Vec::new(),
        }
    }
}

impl TlsConfig {
    /// The settings the server configuration is built from (with -Z on).
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let need = |v: &Option<PathBuf>, name: &str| {
            v.clone().ok_or_else(|| {
                ConfigError::setting(
                    &format!("tls.{name}"),
                    format!("-Z needs a certificate and key (-o ssl_{name}=PATH)"),
                )
            })
        };
        let (min_version, _) = MinVersion::from_memcached(&self.min_version.to_string())
            .map_err(|e| ConfigError::setting("tls.min_version", e))?;
        Ok(Settings {
            chain_cert: need(&self.chain_cert, "chain_cert")?,
            key: need(&self.key, "key")?,
            ca_cert: self.ca_cert.clone(),
            verify_mode: self.verify_mode,
            min_version,
            session_cache: self.session_cache,
            ciphers: self.ciphers.clone(),
        })
    }
}

impl Config {
    /// Whether peer links use TLS: -Z, a cluster, and `cluster.tls`.
    pub fn peer_tls(&self) -> bool {
        self.tls.enabled && self.cluster.tls && self.cluster.node.is_some()
    }

    /// Peer links need what TLS clients need, and this node must be reached
    /// at its address in `--cluster-peers` the way peers will speak to it:
    /// a TLS listener with peer TLS on, a `notls:` listener with it off.
    fn validate_peer_tls(&self) -> Result<(), ConfigError> {
        let Some(node) = &self.cluster.node else {
            return Ok(());
        };
        let Ok(peers) = cluster::Peers::parse(node, self.cluster.peers.trim()) else {
            // Refused with its own line by the cluster's validation.
            return Ok(());
        };
        let me = peers.this();
        let addr = me
            .host
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, me.port));
        let plain = addr.is_some_and(|a| self.tls.plain.contains(&a));
        if self.cluster.tls {
            if self.tls.ca_cert.is_none() {
                return Err(ConfigError::setting(
                    "tls.ca_cert",
                    "under -Z peer links use TLS and verify peers against ssl_ca_cert: give -o ssl_ca_cert=PATH, or --cluster-tls off (cluster.tls = false) with peers at -l notls: addresses",
                ));
            }
            if plain {
                return Err(ConfigError::setting(
                    "cluster.tls",
                    format!(
                        "this node's address in --cluster-peers, {}:{}, is a notls: listener, but peers would speak TLS to it; list its TLS address, or --cluster-tls off",
                        me.host, me.port
                    ),
                ));
            }
            for m in &peers.members {
                if rustls::pki_types::ServerName::try_from(m.host.as_str()).is_err() {
                    return Err(ConfigError::setting(
                        "cluster.peers",
                        format!(
                            "member `{}`'s host `{}` cannot be checked against a certificate (not an IP address or a DNS name)",
                            m.name, m.host
                        ),
                    ));
                }
            }
        } else if addr.is_some() && !plain {
            return Err(ConfigError::setting(
                "cluster.tls",
                format!(
                    "with --cluster-tls off peers connect in plaintext to this node's address in --cluster-peers, {}:{}, which is a TLS listener; listen there with -l notls:{}:{}",
                    me.host, me.port, me.host, me.port
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        let t = &self.tls;
        if !t.enabled {
            return Ok(());
        }
        if self.server.unix_socket.is_some() {
            return Err(ConfigError::setting(
                "tls.enabled",
                "TLS is for TCP listeners; a unix socket (-s) has none",
            ));
        }
        let s = t.settings()?;
        if s.verify_mode > 3 {
            return Err(ConfigError::setting(
                "tls.verify_mode",
                "must be 0..3 (use -o ssl_verify_mode=0)",
            ));
        }
        if let Some(list) = &s.ciphers {
            crate::tls::cipher_suites(list).map_err(|e| ConfigError::setting("tls.ciphers", e))?;
        }
        self.validate_peer_tls()
    }
}
