//! `[http]`: the HTTP port (REST, metrics, status page), off unless a port is
//! set (`--http-port`, `--http-listen`, `--http-token`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{ByteSize, Config, ConfigError};

/// `[http]`, and the `--http-*` flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// TCP port of the HTTP listener (--http-port); none: no HTTP port. 0 picks
    /// a free port.
    pub port: Option<u16>,
    /// Address to bind (--http-listen); none: the first `server.listen` address.
    pub listen: Option<IpAddr>,
    /// When set, every path but /health needs `Authorization: Bearer TOKEN`
    /// (--http-token).
    pub token: Option<String>,
    /// The request line and headers of one request, at most (431 past it).
    pub max_header_bytes: ByteSize,
    /// The body of one request, at most (413 past it).
    pub max_body_bytes: ByteSize,
    /// The node name the legacy `/set` and `/get` answers carry when the
    /// server is not part of a cluster (with one, the cluster node's name).
    pub node_name: String,
    /// Time every request per command family into histograms shown on
    /// `/metrics` (only while the HTTP port is on).
    pub latency_histograms: bool,
    /// Time one request in this many (per shard); 1 times every request.
    pub latency_sample: u32,
    /// With TLS on (-Z), the HTTP port speaks HTTPS with the memcached port's
    /// certificates and client-certificate rules; false keeps it plain.
    pub tls: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            port: None,
            listen: None,
            token: None,
            max_header_bytes: ByteSize(8 << 10),
            max_body_bytes: ByteSize(2 << 20),
            node_name: "node-1".to_string(),
            latency_histograms: true,
            latency_sample: 16,
            tls: true,
        }
    }
}

impl Config {
    pub(super) fn validate_http(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        if h.port.is_none() {
            return Ok(());
        }
        if self.server.unix_socket.is_some() && h.listen.is_none() {
            return Err(ConfigError::setting(
                "http.listen",
                "with -s (unix socket) there is no TCP address to share: set --http-listen",
            ));
        }
        if !(1 << 10..=1 << 20).contains(&h.max_header_bytes.0) {
            return Err(ConfigError::setting(
                "http.max_header_bytes",
                format!("{} is outside 1k..1m (use \"8k\")", h.max_header_bytes.0),
            ));
        }
        if h.latency_sample == 0 {
            return Err(ConfigError::setting(
                "http.latency_sample",
                "must be at least 1 (1 times every request; use 16)",
            ));
        }
        if h.max_body_bytes.0 > 64 << 20 {
            return Err(ConfigError::setting(
                "http.max_body_bytes",
                format!("{} is over 64m (use \"2m\")", h.max_body_bytes.0),
            ));
        }
        if h.token
            .as_deref()
            .is_some_and(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::setting(
                "http.token",
                "must be non-empty printable ASCII without spaces",
            ));
        }
        if h.node_name.is_empty()
            || h.node_name
                .bytes()
                .any(|b| b < 0x20 || b == b'"' || b == b'\\')
        {
            return Err(ConfigError::setting(
                "http.node_name",
                "must be non-empty, without control characters, quotes or backslashes",
            ));
        }
        Ok(())
    }

    /// Whether the shards keep latency histograms.
    pub fn latency_histograms(&self) -> bool {
        self.http.port.is_some() && self.http.latency_histograms
    }

    /// The address the HTTP port binds, when it is on.
    pub fn http_ip(&self) -> IpAddr {
        self.http.listen.unwrap_or(self.server.listen[0])
    }
}
