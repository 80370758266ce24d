//! Helpers for the integration tests: servers started on ephemeral ports
//! (never a fixed port), readiness by polling with a deadline (never a
//! sleep), and the loadgen binary run with a JSON result.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::metrics::RunResult;

pub const BIN: &str = env!("CARGO_BIN_EXE_corecache-loadgen");

/// A child process killed (by its own handle) when the test ends.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub udp: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn memcached_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("memcached"))
        .find(|p| p.is_file())
}

/// Waits until the server at `addr` answers `version`, or the deadline
/// passes. An accepted connection alone is not enough: the port was picked
/// free and released, so something else may hold it for a moment while the
/// child fails to bind it (a run then found nothing listening: CI, 2026-12-04).
fn wait_ready(addr: SocketAddr, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            && answers_version(c)
            && matches!(child.try_wait(), Ok(None))
        {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false; // e.g. the port was taken between pick and bind
        }
        std::thread::yield_now();
    }
    false
}

/// Whether the server on `c` answers `version` with a `VERSION` line.
fn answers_version(mut c: TcpStream) -> bool {
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    if c.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).is_ok() && line.starts_with("VERSION ")
}

/// Starts memcached 1.6 (one thread) on a free port, with UDP if asked.
/// None (and a SKIP message) when no memcached binary is installed.
pub fn memcached(udp: bool) -> Option<Server> {
    let Some(bin) = memcached_binary() else {
        eprintln!(
            "SKIP: no memcached binary on PATH (bash scripts/install-test-deps.sh installs it)"
        );
        return None;
    };
    // A free port is picked by binding port 0 and releasing it; another
    // process could take it before memcached binds, so retry on failure.
    for _ in 0..5 {
        let port = free_tcp_port();
        let uport = if udp { free_udp_port() } else { 0 };
        let mut child = Command::new(&bin)
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                &uport.to_string(),
            ])
            .args(["-t", "1", "-m", "256", "-c", "4096"])
            // memcached refuses to run as root unless told which user to be.
            // SAFETY: geteuid has no preconditions and cannot fail.
            .args(if unsafe { libc::geteuid() } == 0 {
                &["-u", "root"][..]
            } else {
                &[]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memcached");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        if wait_ready(addr, &mut child) {
            let udp = udp.then(|| format!("127.0.0.1:{uport}").parse().unwrap());
            return Some(Server { child, addr, udp });
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("memcached did not start on any of 5 ports");
}

/// Starts the loadgen's null server on an ephemeral port it reports.
pub fn null_server(extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["null-server", "--listen", "127.0.0.1:0", "--no-pin"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn null server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    Server {
        child,
        addr,
        udp: None,
    }
}

/// `stats` of a memcached-compatible server, as numbers where they are.
pub fn stats(addr: SocketAddr) -> HashMap<String, u64> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"stats\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(b"END\r\n") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "stats connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("STAT ")?.split(' ');
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

/// Runs `corecache-loadgen run` with `args` (plus --json, --no-progress)
/// and returns the parsed result; panics with stderr on failure.
pub fn run(target: SocketAddr, args: &[&str]) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new(BIN)
        .args([
            "run",
            "--target",
            &target.to_string(),
            "--no-progress",
            "--no-pin",
        ])
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    read_result(&json)
}

/// Command-line words from one string (tests read better that way).
pub fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

pub fn read_result(path: &Path) -> RunResult {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
