//! `[http]`: the HTTP port (REST, metrics, status page), off unless a port is
//! set (`--http-port`, `--http-listen`, `--http-token`, `--http-token-file`).

use std::net::IpAddr;
use std::path::PathBuf;

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
    /// The token read from this file instead (--http-token-file): one token,
    /// a trailing newline trimmed; re-read on SIGHUP. Excludes `token`.
    pub token_file: Option<PathBuf>,
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
            token_file: None,
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
        if h.token.is_some() && h.token_file.is_some() {
            return Err(ConfigError::setting(
                "http.token_file",
                "http.token and http.token_file exclude each other; use one",
            ));
        }
        if let Some(t) = &h.token {
            check_token(t).map_err(|why| ConfigError::setting("http.token", why))?;
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

    /// The bearer token in force: `http.token`, or the contents of
    /// `http.token_file` (read now; a trailing newline trimmed). The error
    /// names the setting and the file.
    pub fn http_token(&self) -> Result<Option<String>, ConfigError> {
        let h = &self.http;
        let Some(path) = &h.token_file else {
            return Ok(h.token.clone());
        };
        let bad = |why: String| {
            ConfigError::setting("http.token_file", format!("{}: {why}", path.display()))
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let token = text.strip_suffix('\n').unwrap_or(&text);
        let token = token.strip_suffix('\r').unwrap_or(token);
        if token.is_empty() {
            return Err(bad("is empty: write the token into it".into()));
        }
        check_token(token).map_err(|why| bad(format!("the token {why} (one token per file)")))?;
        Ok(Some(token.to_string()))
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

/// A bearer token is what `Authorization: Bearer T` can carry as it is.
fn check_token(t: &str) -> Result<(), &'static str> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be non-empty printable ASCII without spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(contents: Option<&[u8]>) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        if let Some(c) = contents {
            std::fs::write(&path, c).unwrap();
        }
        let mut c = Config::default();
        c.http.port = Some(0);
        c.http.token_file = Some(path);
        (dir, c)
    }

    #[test]
    fn a_token_file_holds_one_token_and_its_newline_is_trimmed() {
        for (text, want) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret", "s3cret"),
            (b"s3cret\r\n", "s3cret"),
        ] {
            let (_dir, c) = with_file(Some(text));
            c.validate().unwrap();
            assert_eq!(c.http_token().unwrap().as_deref(), Some(want));
        }
    }

    #[test]
    fn a_missing_empty_or_strange_token_file_is_refused_by_name() {
        for (contents, says) in [
            (None, "cannot read it"),
            (Some(&b""[..]), "is empty"),
            (Some(b"\n"), "is empty"),
            (Some(b"one\ntwo\n"), "one token per file"),
            (Some(b"with space\n"), "without spaces"),
            (Some(b"\xff\xfe"), "cannot read it"),
        ] {
            let (_dir, c) = with_file(contents);
            let err = c.http_token().unwrap_err().0;
            assert!(err.contains("http.token_file"), "{err}");
            assert!(err.contains(says), "{contents:?}: {err}");
        }
    }

    #[test]
    fn token_and_token_file_exclude_each_other() {
        let (_dir, mut c) = with_file(Some(b"a\n"));
        c.http.token = Some("b".into());
        let err = c.validate().unwrap_err().0;
        assert!(err.contains("exclude each other"), "{err}");
        let mut c = Config::default();
        c.http.port = Some(0);
        c.http.token = Some("has space".into());
        assert!(c.validate().unwrap_err().0.contains("http.token"));
        assert_eq!(c.http_token().unwrap().as_deref(), Some("has space"));
    }
}
