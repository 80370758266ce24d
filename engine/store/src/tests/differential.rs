//! Differential test: the same random sequence of classic commands against the store
//! and against a real memcached 1.6 (started on a free loopback port), comparing every
//! reply. Skips with a message when `memcached` is not installed.
//!
//! Random values never consist of whitespace only: memcached's strtoull then runs past
//! the value into stale chunk bytes (an incr on "\r" can return 30), which is not a
//! behaviour to copy.
//!
//! Values are compared with spaces removed: memcached space-pads a counter that decr
//! shortened ("10" -> "9 ") when it can update in place, but rewrites it at its exact
//! length when a response still holds a reference to the item; the store always pads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::super::{ArithOutcome, DeleteOutcome, StoreMode, StoreOutcome, TouchOutcome};
use super::*;

pub(super) struct Memcached {
    child: Child,
    last: String,
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Memcached {
    pub(super) fn start() -> Option<Memcached> {
        // The port is free when picked but may be taken by another test's
        // memcached before ours binds it: retry until the server that answers
        // reports our child's pid.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let mut child = Command::new("memcached")
                .args([
                    "-t",
                    "1",
                    "-m",
                    "64",
                    "-U",
                    "0",
                    "-l",
                    "127.0.0.1",
                    "-u",
                    "root",
                ])
                .args(["-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let stream = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break None; // it could not bind: try another port
                }
                match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(s) => break Some(s),
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => break None,
                }
            };
            let Some(stream) = stream else {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            };
            stream.set_nodelay(true).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .ok()?;
            let w = stream.try_clone().ok()?;
            let mut mc = Memcached {
                child,
                last: String::new(),
                r: BufReader::new(stream),
                w,
            };
            if mc.pid() == Some(mc.child.id()) {
                return Some(mc);
            }
        }
        None
    }

    /// The pid the server reports in `stats`; None on any error (the server
    /// may be another test's, going away).
    fn pid(&mut self) -> Option<u32> {
        self.w.write_all(b"stats\r\n").ok()?;
        let mut pid = None;
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if let Some(p) = line.strip_prefix("STAT pid ") {
                pid = p.trim().parse().ok();
            }
            if line == "END" {
                return pid;
            }
        }
    }

    /// The first line of the last request, for failure messages.
    pub(super) fn last_sent(&self) -> &str {
        &self.last
    }

    pub(super) fn send(&mut self, bytes: &[u8]) {
        let end = bytes
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(bytes.len());
        self.last = String::from_utf8_lossy(&bytes[..end]).into_owned();
        self.w.write_all(bytes).unwrap();
    }

    pub(super) fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    /// Reads a data block of `len` bytes and its CRLF.
    pub(super) fn block(&mut self, len: usize) -> Vec<u8> {
        let mut data = vec![0; len + 2];
        self.r.read_exact(&mut data).unwrap();
        data.truncate(len);
        data
    }

    /// One `gets` reply: (flags, value, cas) or None.
    fn gets(&mut self, key: &str) -> Option<(u32, Vec<u8>, u64)> {
        self.send(format!("gets {key}\r\n").as_bytes());
        let head = self.line();
        if head == "END" {
            return None;
        }
        let parts: Vec<&str> = head.split(' ').collect();
        assert_eq!(parts[0], "VALUE", "{head}");
        let (flags, len, cas) = (
            parts[2].parse().unwrap(),
            parts[3].parse::<usize>().unwrap(),
            parts[4].parse().unwrap(),
        );
        let mut data = vec![0; len + 2];
        self.r.read_exact(&mut data).unwrap();
        data.truncate(len);
        assert_eq!(self.line(), "END");
        Some((flags, data, cas))
    }
}

fn unpadded(v: &[u8]) -> Vec<u8> {
    v.iter().copied().filter(|&b| b != b' ').collect()
}

fn store_reply(o: StoreOutcome) -> &'static str {
    match o {
        StoreOutcome::Stored { .. } => "STORED",
        StoreOutcome::NotStored => "NOT_STORED",
        StoreOutcome::Exists => "EXISTS",
        StoreOutcome::NotFound => "NOT_FOUND",
        StoreOutcome::TooLarge => "SERVER_ERROR object too large for cache",
        StoreOutcome::OutOfMemory => "SERVER_ERROR out of memory storing object",
    }
}

fn arith_reply(o: ArithOutcome) -> String {
    match o {
        ArithOutcome::Value { value, .. } => value.to_string(),
        ArithOutcome::NotFound => "NOT_FOUND".into(),
        ArithOutcome::NonNumeric => {
            "CLIENT_ERROR cannot increment or decrement non-numeric value".into()
        }
        ArithOutcome::Exists => "EXISTS".into(),
        ArithOutcome::OutOfMemory => "SERVER_ERROR out of memory".into(),
    }
}

#[test]
fn random_commands_reply_as_memcached_does() {
    let Some(mut mc) = Memcached::start() else {
        println!("skipping: memcached is not installed (scripts/install-test-deps.sh)");
        return;
    };
    let mut s = store(64 << 20, Policy::default());
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Last CAS each side reported per key, so `cas` can be sent with a valid or a stale
    // value on both sides alike.
    let mut cas_seen: std::collections::HashMap<String, (u64, u64)> = Default::default();
    let mut history: std::collections::HashMap<String, Vec<String>> = Default::default();
    for step in 0..20_000 {
        // Counters ("n" keys) take incr/decr with any delta but never append/prepend;
        // the other keys take everything else and only small increments. memcached
        // pads a shortened counter or not depending on references held by responses,
        // so a shortened counter must not be appended to for the replies to be defined.
        let counter = next(3) == 0;
        let key = format!("{}{}", if counter { "n" } else { "k" }, next(12));
        let value: Vec<u8> = match next(4) {
            0 => next(1000).to_string().into_bytes(),
            1 if counter => u64::MAX.to_string().into_bytes(),
            _ if counter => next(100_000).to_string().into_bytes(),
            _ => (0..next(300))
                .map(|i| (i as u8).wrapping_mul(31) ^ b'x')
                .collect(),
        };
        let flags = next(3) as u32 * 7;
        let mut op = next(13);
        if counter && (3..=4).contains(&op) {
            op = 0;
        }
        if !counter && op == 11 {
            op = 10;
        }
        let hist = history.entry(key.clone()).or_default();
        hist.push(format!(
            "step {step} op {op} len {} flags {flags}",
            value.len()
        ));
        let ctx = format!(
            "step {step}, op {op}, key {key}; history {:?}",
            &hist[hist.len().saturating_sub(8)..]
        );
        match op {
            0..=4 => {
                let (mode, name) = [
                    (StoreMode::Set, "set"),
                    (StoreMode::Add, "add"),
                    (StoreMode::Replace, "replace"),
                    (StoreMode::Append, "append"),
                    (StoreMode::Prepend, "prepend"),
                ][op as usize];
                let ours = store_reply(s.store(mode, hk(key.as_bytes()), flags, 0, &value, 0));
                let mut req = format!("{name} {key} {flags} 0 {}\r\n", value.len()).into_bytes();
                req.extend_from_slice(&value);
                req.extend_from_slice(b"\r\n");
                mc.send(&req);
                assert_eq!(ours, mc.line(), "{ctx}");
            }
            5 => {
                let (ours_cas, theirs_cas) =
                    cas_seen.get(&key).copied().unwrap_or((1 << 50, 1 << 50));
                let stale = next(3) == 0;
                let (oc, tc) = if stale {
                    (ours_cas + (1 << 40), theirs_cas + (1 << 40))
                } else {
                    (ours_cas, theirs_cas)
                };
                let ours =
                    store_reply(s.store(StoreMode::Cas, hk(key.as_bytes()), flags, 0, &value, oc));
                let mut req = format!("cas {key} {flags} 0 {} {tc}\r\n", value.len()).into_bytes();
                req.extend_from_slice(&value);
                req.extend_from_slice(b"\r\n");
                mc.send(&req);
                assert_eq!(ours, mc.line(), "{ctx}");
            }
            6..=8 => {
                let ours = s
                    .gets(hk(key.as_bytes()))
                    .map(|v| (v.flags, v.value.to_vec(), v.cas));
                let theirs = mc.gets(&key);
                match (&ours, &theirs) {
                    (Some(o), Some(t)) => {
                        assert_eq!((o.0, unpadded(&o.1)), (t.0, unpadded(&t.1)), "{ctx}");
                        cas_seen.insert(key.clone(), (o.2, t.2));
                    }
                    (None, None) => {}
                    _ => panic!("{ctx}: ours {ours:?} theirs {theirs:?}"),
                }
            }
            9 => {
                let ours = match s.delete(hk(key.as_bytes())) {
                    DeleteOutcome::Deleted => "DELETED",
                    _ => "NOT_FOUND",
                };
                mc.send(format!("delete {key}\r\n").as_bytes());
                assert_eq!(ours, mc.line(), "{ctx}");
            }
            10 | 11 => {
                let incr = op == 10;
                let delta = if counter && next(4) == 0 {
                    u64::MAX - next(5)
                } else {
                    next(50)
                };
                let before = s.peek(hk(key.as_bytes())).map(|v| v.value.to_vec());
                let ours = arith_reply(s.incr_decr(hk(key.as_bytes()), incr, delta));
                let cmd = if incr { "incr" } else { "decr" };
                mc.send(format!("{cmd} {key} {delta}\r\n").as_bytes());
                let theirs = mc.line();
                let big = before
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .is_some_and(|v| v >= 1 << 63);
                if ours != theirs && big && theirs.starts_with("CLIENT_ERROR cannot increment") {
                    // memcached's safe_strtoull calls a counter >= 2^63 negative
                    // when strchr(value, '-') finds a '-' in whatever bytes follow
                    // the (unterminated) value in memory: not a rule to copy.
                    // Put both sides back in step.
                    s.set(hk(key.as_bytes()), b"7", 0, 0);
                    mc.send(format!("set {key} 0 0 1\r\n7\r\n").as_bytes());
                    assert_eq!(mc.line(), "STORED", "{ctx}");
                    cas_seen.remove(&key);
                    continue;
                }
                if ours != theirs {
                    let now = mc.gets(&key).map(|v| v.1);
                    panic!(
                        "{ctx}: {cmd} {delta}: ours {ours} theirs {theirs}; our value before {:?}, memcached's now {:?}",
                        before.map(|v| String::from_utf8_lossy(&v).into_owned()),
                        now.map(|v| String::from_utf8_lossy(&v).into_owned())
                    );
                }
            }
            _ => {
                if next(40) == 0 {
                    s.flush_all(0);
                    mc.send(b"flush_all\r\n");
                    assert_eq!("OK", mc.line(), "{ctx}");
                } else {
                    let ours = match s.touch(hk(key.as_bytes()), 3600) {
                        TouchOutcome::Touched => "TOUCHED",
                        TouchOutcome::NotFound => "NOT_FOUND",
                    };
                    mc.send(format!("touch {key} 3600\r\n").as_bytes());
                    assert_eq!(ours, mc.line(), "{ctx}");
                }
            }
        }
    }
}
