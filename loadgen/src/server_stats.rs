//! `--server-stats`: the server's own counters (memcached's `stats`) read
//! when the measured window opens and after it has drained, so a result can show that
//! the load generator's count agrees with the server's. Read by the
//! collector thread over a separate connection; the client threads never wait.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The counters compared: keys asked for by gets, and sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub cmd_get: u64,
    pub cmd_set: u64,
}

/// The server's counters over the measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerDelta {
    pub cmd_get: u64,
    pub cmd_set: u64,
    /// The measured window the delta is divided by.
    pub seconds: f64,
    /// (cmd_get + cmd_set) per second.
    pub rate: f64,
}

impl ServerDelta {
    pub fn between(a: Sample, b: Sample, seconds: f64) -> ServerDelta {
        let cmd_get = b.cmd_get.saturating_sub(a.cmd_get);
        let cmd_set = b.cmd_set.saturating_sub(a.cmd_set);
        ServerDelta {
            cmd_get,
            cmd_set,
            seconds,
            rate: (cmd_get + cmd_set) as f64 / seconds.max(1e-9),
        }
    }
}

/// Parses `STAT cmd_get N` / `STAT cmd_set N` out of a stats reply.
pub fn parse(reply: &[u8]) -> Option<Sample> {
    let text = std::str::from_utf8(reply).ok()?;
    let mut get = None;
    let mut set = None;
    for line in text.lines() {
        let mut parts = line.split(' ');
        if parts.next() != Some("STAT") {
            continue;
        }
        match (parts.next(), parts.next()) {
            (Some("cmd_get"), Some(v)) => get = v.parse().ok(),
            (Some("cmd_set"), Some(v)) => set = v.parse().ok(),
            _ => {}
        }
    }
    Some(Sample {
        cmd_get: get?,
        cmd_set: set?,
    })
}

/// Asks `addr` for `stats` (bounded by a 2 s timeout).
pub fn sample(addr: SocketAddr) -> io::Result<Sample> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    s.write_all(b"stats\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.ends_with(b"END\r\n") {
        let n = s.read(&mut chunk)?;
        if n == 0 || buf.len() > 1 << 20 {
            return Err(io::Error::other("stats reply ended early"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse(&buf).ok_or_else(|| io::Error::other("stats reply has no cmd_get/cmd_set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memcached_stats_and_computes_the_delta() {
        let a = parse(b"STAT pid 1\r\nSTAT cmd_get 100\r\nSTAT cmd_set 7\r\nEND\r\n").unwrap();
        assert_eq!(
            a,
            Sample {
                cmd_get: 100,
                cmd_set: 7
            }
        );
        let b = Sample {
            cmd_get: 1100,
            cmd_set: 107,
        };
        let d = ServerDelta::between(a, b, 2.0);
        assert_eq!((d.cmd_get, d.cmd_set), (1000, 100));
        assert!((d.rate - 550.0).abs() < 1e-6);
        assert_eq!(parse(b"STAT pid 1\r\nEND\r\n"), None);
    }
}
