//! Differential half: the same requests sent to a real memcached (1.6.18 from
//! Debian), whose replies must parse with `parse_response` and equal, byte for
//! byte, what our encoders produce for the same outcome. Skipped with a message
//! when memcached is not installed (`bash scripts/install-test-deps.sh`).

use super::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PATH: &str = "/usr/bin/memcached";

struct Memcached {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Memcached {
    /// Starts memcached on a free loopback port (memcached cannot take port 0:
    /// we take a free one from the kernel, and retry when another process wins it).
    fn start() -> Option<Memcached> {
        let path = std::env::var("MEMCACHED").unwrap_or_else(|_| PATH.to_string());
        if !std::path::Path::new(&path).exists() {
            println!("binary differential: no memcached at {path} (set MEMCACHED=...): SKIPPED");
            return None;
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            // `-u root` only matters when we are root, where memcached demands it.
            let mut child = Command::new(&path)
                .args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1"])
                .args(["-t", "1", "-u", "root"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn memcached");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port: try another
                }
                if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                    // Only our memcached reports our child's pid.
                    if Conn::new(s).pid() == Some(child.id()) {
                        return Some(Memcached { child, addr });
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("memcached did not start");
    }

    fn connect(&self) -> Conn {
        Conn::new(TcpStream::connect(self.addr).expect("connect"))
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(s: TcpStream) -> Conn {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    fn send_req(&mut self, r: &BinRequest<'_>) {
        let mut wire = Vec::new();
        r.encode(&mut wire);
        self.send(&wire);
    }

    /// The next response packet, raw; `None` at end of stream.
    fn packet(&mut self) -> Option<Vec<u8>> {
        loop {
            match parse_response(&self.buf) {
                ResponseParse::Complete { consumed, .. } => {
                    return Some(self.buf.drain(..consumed).collect());
                }
                ResponseParse::Incomplete { .. } => {}
                ResponseParse::Invalid(e) => panic!("memcached sent {e:?}: {:?}", self.buf),
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk).expect("read");
            if n == 0 {
                assert!(self.buf.is_empty(), "stream ended inside a packet");
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, r: &BinRequest<'_>) -> Vec<u8> {
        self.send_req(r);
        self.packet().expect("a reply")
    }

    fn closed(&mut self) -> bool {
        self.packet().is_none()
    }

    /// memcached's pid from the general stats, read through our codec.
    fn pid(&mut self) -> Option<u32> {
        self.send_req(&BinRequest::new(BinOp::Stat { key: None }, false, 1, 0));
        let mut pid = None;
        loop {
            let p = self.packet()?;
            let ResponseParse::Complete { response, .. } = parse_response(&p) else {
                return None;
            };
            if response.key.is_empty() {
                return pid;
            }
            if response.key == b"pid" {
                pid = std::str::from_utf8(response.value).ok()?.parse().ok();
            }
        }
    }
}

fn cas_of(p: &[u8]) -> u64 {
    let ResponseParse::Complete { response, .. } = parse_response(p) else {
        panic!("{p:?}")
    };
    response.cas
}

/// Our encoding of the outcome, given the request it answers.
fn ours(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

/// What our parser refuses `wire` with, encoded.
fn our_refusal(wire: &[u8]) -> (Vec<u8>, BinInvalid<'_>) {
    let BinParse::Invalid(inv) = parse(wire, &Limits::default()) else {
        panic!("{wire:?} parsed")
    };
    (ours(|o| inv.reply.unwrap().encode(o)), inv)
}

#[test]
fn replies_match_memcached() {
    let Some(mc) = Memcached::start() else { return };
    let mut c = mc.connect();
    let r = |op, quiet, opaque| BinRequest::new(op, quiet, opaque, 0);
    let rc = |op, opaque, cas| BinRequest::new(op, false, opaque, cas);
    let set = |key, flags, value| BinOp::Store {
        mode: StoreMode::Set,
        key,
        flags,
        exptime: 0,
        value,
    };
    let get = |key, with_key| BinOp::Get { key, with_key };
    let incr = |mode, key, delta, exptime| {
        BinOp::Arith(Arith {
            mode,
            key,
            delta,
            initial: 10,
            exptime,
        })
    };

    let q = r(BinOp::Flush { delay: None }, false, 1);
    assert_eq!(c.call(&q), ours(|o| encode_ok(o, q.reply_to(), 0)));

    let q = r(set(b"k", 5, b"hello"), false, 2);
    let got = c.call(&q);
    let c1 = cas_of(&got);
    assert_ne!(c1, 0);
    assert_eq!(got, ours(|o| encode_ok(o, q.reply_to(), c1)));

    let q = r(get(b"k", false), false, 3);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_hit(o, q.reply_to(), 5, c1, None, b"hello"))
    );
    let q = r(get(b"k", true), false, 4);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_hit(o, q.reply_to(), 5, c1, Some(b"k"), b"hello"))
    );
    let q = r(get(b"nokey", false), false, 5);
    assert_eq!(c.call(&q), ours(|o| encode_miss(o, q.reply_to(), None)));
    let q = r(get(b"nokey", true), false, 6);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_miss(o, q.reply_to(), Some(b"nokey")))
    );

    for (mode, key) in [(StoreMode::Add, &b"k"[..]), (StoreMode::Replace, b"nokey")] {
        let q = r(
            BinOp::Store {
                mode,
                key,
                flags: 0,
                exptime: 0,
                value: b"x",
            },
            false,
            7,
        );
        assert_eq!(
            c.call(&q),
            ours(|o| encode_status(o, q.reply_to(), mode.not_stored_status()))
        );
    }
    let q = rc(set(b"k", 5, b"other"), 8, c1 + 1000);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_status(o, q.reply_to(), Status::KeyExists))
    );

    let app = |key| BinOp::Concat {
        mode: ConcatMode::Append,
        key,
        value: b" world",
    };
    let q = r(app(b"k"), false, 9);
    let got = c.call(&q);
    let c2 = cas_of(&got);
    assert_eq!(got, ours(|o| encode_ok(o, q.reply_to(), c2)));
    let q = r(get(b"k", false), false, 10);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_hit(o, q.reply_to(), 5, c2, None, b"hello world"))
    );
    let q = r(app(b"nokey"), false, 11);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_status(o, q.reply_to(), Status::NotStored))
    );

    // Counters: created at the initial value, then moved; decrements stop at 0.
    for (mode, delta, want) in [
        (ArithMode::Increment, 5, 10),
        (ArithMode::Increment, 5, 15),
        (ArithMode::Decrement, 20, 0),
    ] {
        let q = r(incr(mode, b"n", delta, 0), false, 12);
        let got = c.call(&q);
        let cas = cas_of(&got);
        assert_eq!(got, ours(|o| encode_counter(o, q.reply_to(), want, cas)));
    }
    let q = r(incr(ArithMode::Increment, b"k", 1, 0), false, 13);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_status(o, q.reply_to(), Status::DeltaBadval))
    );
    let q = r(
        incr(ArithMode::Decrement, b"absent", 1, NO_CREATE),
        false,
        14,
    );
    assert_eq!(
        c.call(&q),
        ours(|o| encode_status(o, q.reply_to(), Status::NotFound))
    );

    let q = r(
        BinOp::Touch {
            key: b"k",
            exptime: 100,
        },
        false,
        15,
    );
    let got = c.call(&q);
    assert_eq!(
        got,
        ours(|o| encode_touched(o, q.reply_to(), 5, cas_of(&got)))
    );
    let q = r(
        BinOp::Gat {
            key: b"k",
            exptime: 100,
            with_key: true,
        },
        false,
        16,
    );
    let got = c.call(&q);
    assert_eq!(
        got,
        ours(|o| encode_hit(o, q.reply_to(), 5, cas_of(&got), Some(b"k"), b"hello world"))
    );
    let q = r(
        BinOp::Touch {
            key: b"nokey",
            exptime: 100,
        },
        false,
        17,
    );
    assert_eq!(c.call(&q), ours(|o| encode_miss(o, q.reply_to(), None)));

    let q = rc(BinOp::Delete { key: b"k" }, 18, 1);
    assert_eq!(
        c.call(&q),
        ours(|o| encode_status(o, q.reply_to(), Status::KeyExists))
    );
    let q = r(BinOp::Delete { key: b"k" }, false, 19);
    assert_eq!(c.call(&q), ours(|o| encode_ok(o, q.reply_to(), 0)));
    assert_eq!(
        c.call(&q),
        ours(|o| encode_status(o, q.reply_to(), Status::NotFound))
    );

    // Quiet: a setq, a missing getq and a hit getkq, ended by a noop: only the
    // hit and the noop come back.
    c.send_req(&r(set(b"q", 1, b"v"), true, 20));
    c.send_req(&r(get(b"nokey", false), true, 21));
    let q = r(get(b"q", true), true, 22);
    c.send_req(&q);
    let noop = r(BinOp::Noop, false, 23);
    c.send_req(&noop);
    let got = c.packet().unwrap();
    assert_eq!(
        got,
        ours(|o| encode_hit(o, q.reply_to(), 1, cas_of(&got), Some(b"q"), b"v"))
    );
    assert_eq!(
        c.packet().unwrap(),
        ours(|o| encode_ok(o, noop.reply_to(), 0))
    );

    let q = r(BinOp::Version, false, 24);
    let got = c.call(&q);
    let ResponseParse::Complete { response, .. } = parse_response(&got) else {
        panic!()
    };
    let version = std::str::from_utf8(response.value).unwrap().to_string();
    assert!(version.starts_with("1.6."), "{version}");
    assert_eq!(got, ours(|o| encode_version(o, q.reply_to(), &version)));

    // What the module docs tell the engine to answer: verbosity and SASL
    // (memcached without -S) are unknown commands.
    for op in [BinOp::Verbosity { level: 1 }, BinOp::SaslListMechs] {
        let q = r(op, false, 25);
        c.send_req(&q);
        if let BinOp::Verbosity { .. } = op {
            // memcached skips the body length again after the 4 bytes of extras
            // it already read (the deviation in the module docs), and replies
            // once it has: feed it 4 bytes to eat.
            c.send(&[0; 4]);
        }
        assert_eq!(
            c.packet().unwrap(),
            ours(|o| encode_status(o, q.reply_to(), Status::UnknownCommand))
        );
    }
    // An unknown opcode: our refusal is memcached's reply, and the connection
    // carries on after the body.
    let wire = super::pkt(0x50, &[], &[], b"abc", 26, 0);
    let (want, inv) = our_refusal(&wire);
    assert_eq!((inv.consumed + inv.swallow, inv.close), (wire.len(), false));
    c.send(&wire);
    assert_eq!(c.packet().unwrap(), want);
    assert_eq!(c.call(&noop), ours(|o| encode_ok(o, noop.reply_to(), 0)));

    // Too large: refused from the header and key, the value swallowed, the old
    // item unlinked.
    assert_ne!(cas_of(&c.call(&r(set(b"big", 0, b"old"), false, 27))), 0);
    let value = vec![b'v'; 2 << 20];
    let mut wire = Vec::new();
    r(set(b"big", 0, &value), false, 28).encode(&mut wire);
    let (want, inv) = our_refusal(&wire);
    assert_eq!(
        (inv.consumed + inv.swallow, inv.unlink),
        (wire.len(), Some(&b"big"[..]))
    );
    c.send(&wire);
    assert_eq!(c.packet().unwrap(), want);
    let q = r(get(b"big", false), false, 29);
    assert_eq!(c.call(&q), ours(|o| encode_miss(o, q.reply_to(), None)));

    // Stats: every pair is our stat encoding; the empty stat ends them.
    c.send_req(&r(BinOp::Stat { key: None }, false, 30));
    let mut pairs = 0;
    loop {
        let got = c.packet().unwrap();
        let ResponseParse::Complete { response: s, .. } = parse_response(&got) else {
            panic!()
        };
        if s.key.is_empty() {
            assert_eq!(got, ours(|o| encode_stats_end(o, 30)));
            break;
        }
        assert_eq!(got, ours(|o| encode_stat(o, 30, s.key, s.value)));
        pairs += 1;
    }
    assert!(pairs > 10, "{pairs} stats");

    let q = r(BinOp::Quit, false, 31);
    assert_eq!(c.call(&q), ours(|o| encode_ok(o, q.reply_to(), 0)));
    assert!(c.closed(), "quit closes");

    // Refusals that close: our reply is memcached's, then memcached hangs up.
    for wire in [
        super::pkt(0x00, &[0; 4], b"k", &[], 32, 0),
        super::pkt(0x00, &[], &[b'x'; 251], &[], 33, 0),
        super::pkt(0x01, &[0; 4], b"k", b"v", 34, 0),
        super::pkt(0x05, &[0; 8], b"k", &[], 35, 0),
        // memcached reads extras and key before it looks at the lengths (we
        // refuse from the header): send the 5 key bytes the header declares.
        [super::hdr(0x00, 5, 0, 4), b"kkkkk".to_vec()].concat(),
    ] {
        let mut c = mc.connect();
        let (want, inv) = our_refusal(&wire);
        assert!(inv.close);
        c.send(&wire);
        assert_eq!(c.packet().unwrap(), want, "{wire:?}");
        assert!(c.closed(), "{wire:?}");
    }
    // A bad magic after a binary start: closed without a reply.
    let mut c = mc.connect();
    c.send_req(&noop);
    assert!(c.packet().is_some());
    let mut bad = super::pkt(0x0a, &[], &[], &[], 36, 0);
    bad[0] = 0x81;
    assert_eq!(our_refusal_silent(&bad), (None, true));
    c.send(&bad);
    assert!(c.closed());
}

fn our_refusal_silent(wire: &[u8]) -> (Option<BinError>, bool) {
    let BinParse::Invalid(inv) = parse(wire, &Limits::default()) else {
        panic!()
    };
    (inv.reply, inv.close)
}
