//! Malicious and careless clients. After each abuse a new connection still
//! gets correct answers and the server's resident memory stays bounded.
//!
//! The bound: RSS may grow by at most [`RSS_SLACK`] over its value after a
//! warm-up. What the server may legitimately hold for a client is small and
//! configured: 4 MiB of pending output per connection (`max_pending_output`),
//! one 64 KiB line guard, and 2 shards x 2048 x 4 KiB receive buffers already
//! touched by the warm-up. Every abuse below pushes or demands at least 10x the
//! slack (2 GB of value, 1.3 GB of replies, ...), so a server that buffers
//! input or output without bound cannot stay under it.

mod common;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Conn, READ_DEADLINE, Server, assert_bytes, show, stat};

const RSS_SLACK_KIB: u64 = 64 << 10;

/// A server for one abuse, warmed up, with its RSS baseline.
struct Target {
    server: Server,
    baseline_kib: u64,
}

impl Target {
    fn start(args: &[&str]) -> Target {
        let server = Server::start(args);
        // Warm-up: traffic through both shards touches the receive buffers
        // and the allocator's arenas the baseline should include.
        let mut c = server.connect();
        let value = vec![b'w'; 100_000];
        for i in 0..50 {
            c.set(&format!("warm:{i}"), &value);
        }
        for i in 0..50 {
            assert_eq!(c.get(&format!("warm:{i}")).map(|v| v.len()), Some(100_000));
        }
        let baseline_kib = server.rss_kib();
        Target {
            server,
            baseline_kib,
        }
    }

    #[track_caller]
    fn assert_rss_bounded(&self, what: &str) {
        let rss = self.server.rss_kib();
        println!("{what}: RSS {rss} KiB (baseline {} KiB)", self.baseline_kib);
        assert!(
            rss <= self.baseline_kib + RSS_SLACK_KIB,
            "{what}: RSS {rss} KiB, baseline {} KiB, bound +{RSS_SLACK_KIB} KiB",
            self.baseline_kib
        );
    }

    /// A new connection gets correct answers, on keys of both shards.
    #[track_caller]
    fn assert_healthy(&mut self, what: &str) {
        assert!(self.server.alive(), "{what}: the server died");
        let mut c = self.server.connect();
        for i in 0..8 {
            let key = format!("health:{}:{i}", what.replace(' ', "_"));
            let value = format!("ok {i} after {what}");
            c.set(&key, value.as_bytes());
            assert_eq!(c.get(&key), Some(value.into_bytes()), "{what}");
        }
        assert!(c.round_trip(b"version\r\n").starts_with(b"VERSION 1.6."));
        self.assert_rss_bounded(what);
    }

    /// Samples RSS for `period` (the server runs ahead of a client that is
    /// not reading), and checks the maximum.
    fn watch_rss_for(&self, what: &str, period: Duration) {
        self.watch_rss_while(what, std::thread::spawn(move || std::thread::sleep(period)));
    }

    /// A connection once the server admits one (closes are seen
    /// asynchronously, so a place freed under `-c` comes back a little later).
    fn connect_when_admitted(&self) -> Conn {
        let deadline = Instant::now() + READ_DEADLINE;
        loop {
            let mut c = self.server.connect();
            c.send(b"version\r\n");
            let line = c.read_line_or_eof();
            if line.starts_with(b"VERSION") {
                return c;
            }
            assert_eq!(show(&line), "ERROR Too many open connections\r\n");
            assert!(Instant::now() < deadline, "no place came free");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Samples RSS while `busy` runs, and checks the maximum.
    fn watch_rss_while<T>(&self, what: &str, busy: JoinHandle<T>) -> T {
        let mut max = 0;
        while !busy.is_finished() {
            max = max.max(self.server.rss_kib());
            std::thread::sleep(Duration::from_millis(20));
        }
        max = max.max(self.server.rss_kib());
        println!(
            "{what}: RSS peak {max} KiB (baseline {} KiB)",
            self.baseline_kib
        );
        assert!(
            max <= self.baseline_kib + RSS_SLACK_KIB,
            "{what}: RSS peaked at {max} KiB, baseline {} KiB",
            self.baseline_kib
        );
        busy.join().expect("writer thread")
    }
}

/// Writes `bytes` on a clone of the stream from another thread, so that the
/// test can read at the same time; write errors (the server closed) end it.
fn spawn_writer(stream: &TcpStream, bytes: Vec<u8>) -> JoinHandle<std::io::Result<()>> {
    let mut s = stream.try_clone().unwrap();
    std::thread::spawn(move || s.write_all(&bytes))
}

#[test]
fn ten_thousand_pipelined_requests_in_one_write() {
    let mut t = Target::start(&["-t", "2"]);
    let mut c = t.server.connect();
    let (mut req, mut want) = (Vec::new(), Vec::new());
    for i in 0..10_000 {
        // Every group of five requests is about one key.
        let k = format!("pipe:{}", (i / 5) % 250);
        match i % 5 {
            0 => {
                req.extend_from_slice(
                    format!("set {k} 0 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
                );
                want.extend_from_slice(b"STORED\r\n");
            }
            1 | 2 => {
                req.extend_from_slice(format!("get {k}\r\n").as_bytes());
                let v = (i - i % 5).to_string();
                want.extend_from_slice(
                    format!("VALUE {k} 0 {}\r\n{v}\r\nEND\r\n", v.len()).as_bytes(),
                );
            }
            3 => {
                req.extend_from_slice(format!("mg {k} v\r\n").as_bytes());
                let v = (i - 3).to_string();
                want.extend_from_slice(format!("VA {}\r\n{v}\r\n", v.len()).as_bytes());
            }
            _ => {
                req.extend_from_slice(format!("get {k} pipe:none {k}\r\n").as_bytes());
                let v = (i - 4).to_string();
                let one = format!("VALUE {k} 0 {}\r\n{v}\r\n", v.len());
                want.extend_from_slice(format!("{one}{one}END\r\n").as_bytes());
            }
        }
    }
    let writer = spawn_writer(&c.stream, req);
    assert_bytes(c.read_n(want.len()), &want, "10,000 pipelined replies");
    writer.join().unwrap().unwrap();
    c.assert_silent(Duration::from_millis(50));
    t.assert_healthy("10,000 pipelined requests");
}

/// A 2 GB value is refused at once and its bytes are discarded as they
/// arrive: the server never holds more than a receive buffer of it.
/// (memcached sends the same error only after the last byte has arrived.)
#[test]
fn a_two_gigabyte_value_is_swallowed_without_buffering() {
    let mut t = Target::start(&["-t", "2"]);
    let mut c = t.server.connect();
    c.set("huge", b"old value");
    const LEN: usize = 2_000_000_000;
    c.send(format!("set huge 0 0 {LEN}\r\n").as_bytes());
    assert_eq!(
        show(&c.read_line()),
        "SERVER_ERROR object too large for cache\r\n"
    );
    let stream = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut s = stream;
        let chunk = vec![b'g'; 1 << 20];
        let mut left = LEN;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n])?;
            left -= n;
        }
        s.write_all(b"\r\n")
    });
    t.watch_rss_while("a 2 GB value", writer).unwrap();
    // The connection is in step again: the old item was unlinked.
    assert_eq!(c.round_trip(b"get huge\r\n"), b"END\r\n");
    c.set("huge", b"new value");
    assert_eq!(c.get("huge").as_deref(), Some(&b"new value"[..]));
    t.assert_healthy("a 2 GB value");
}

#[test]
fn a_line_without_end_is_cut_off_at_the_guard() {
    let mut t = Target::start(&["-t", "2"]);
    // A command line that never ends: closed without a word, as memcached does.
    let mut c = t.server.connect();
    let mut junk = b"set ".to_vec();
    junk.extend(std::iter::repeat_n(b'a', 16 << 20));
    let writer = spawn_writer(&c.stream, junk);
    assert_eq!(show(&c.read_to_eof()), "");
    assert!(
        writer.join().unwrap().is_err(),
        "the server read 16 MiB of one line"
    );
    // A get line of 17 MB (two million keys): read in pieces as memcached
    // reads it, answered when it ends, and never buffered whole. One shard,
    // so that the cross-shard channels (up to 2 x 256 batches of 64 KiB,
    // legitimately in use while pieces cross) are not in the measure.
    let one = Target::start(&["-t", "1"]);
    let rss_before = one.server.rss_kib();
    let mut c = one.server.connect();
    let mut keys = b"get".to_vec();
    for i in 0..2_000_000 {
        keys.extend_from_slice(format!(" k{i}").as_bytes());
    }
    keys.extend_from_slice(b"\r\n");
    let writer = spawn_writer(&c.stream, keys);
    assert_eq!(c.read_line(), b"END\r\n");
    writer
        .join()
        .unwrap()
        .expect("the server read the whole line");
    let grown = one.server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 8 << 10, "RSS grew by {grown} KiB for one get line");
    // A partial line is not an error: the connection waits for the rest.
    let mut c = t.server.connect();
    c.send(b"get par");
    c.assert_silent(Duration::from_millis(100));
    c.send(b"tial\r\n");
    assert_eq!(c.read_line(), b"END\r\n");
    t.assert_healthy("lines without end");
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Random requests built from the protocol's own words, numbers and flags,
/// to reach deeper into the parser than random bytes do.
fn word_noise(seed: u64, requests: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "get",
        "gets",
        "gat",
        "gats",
        "set",
        "add",
        "replace",
        "append",
        "prepend",
        "cas",
        "delete",
        "incr",
        "decr",
        "touch",
        "version",
        "verbosity",
        "stats",
        "mg",
        "ms",
        "md",
        "ma",
        "mn",
        "me",
        "noreply",
        "q",
        "v",
        "k",
        "c",
        "t",
        "f",
        "s",
        "b",
        "O1",
        "T-1",
        "T30",
        "N30",
        "R5",
        "E5",
        "I",
        "x",
        "MZ",
        "MA",
        "MD",
        "D9",
        "J3",
        "C1",
        "0",
        "1",
        "-1",
        "100",
        "4294967297",
        "18446744073709551616",
        "2000000",
        "a",
        "key",
        "bWtleQ==",
        "!!",
        "settings",
        "items",
        "slabs",
        "conns",
        "detail",
        "reset",
        "lru_crawler",
        "cache_memlimit",
        "slabs",
        "watch",
        "\t",
        "\0",
    ];
    let bytes = noise(seed, requests * 8);
    let mut out = Vec::new();
    let mut b = bytes.iter().map(|&x| x as usize);
    for _ in 0..requests {
        let n = 1 + b.next().unwrap() % 7;
        for i in 0..n {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(WORDS[b.next().unwrap() % WORDS.len()].as_bytes());
        }
        out.extend_from_slice(if b.next().unwrap() % 4 == 0 {
            b"\n"
        } else {
            b"\r\n"
        });
    }
    out
}

#[test]
fn random_bytes_and_random_requests() {
    let mut t = Target::start(&["-t", "2"]);
    // A bystander connection opened before the noise keeps working through it.
    let mut bystander = t.server.connect();
    bystander.set("bystander", b"still here");
    let inputs: Vec<Vec<u8>> = (0..16u64)
        .map(|i| {
            if i % 2 == 0 {
                noise(i + 1, 256 << 10)
            } else {
                word_noise(i, 20_000)
            }
        })
        .collect();
    std::thread::scope(|s| {
        for input in &inputs {
            let server = &t.server;
            s.spawn(move || {
                let mut c = server.connect();
                // The server may close at any point (a line over the guard):
                // write errors are expected, a hang is not.
                let writer = spawn_writer(&c.stream, input.clone());
                let _ = writer.join().unwrap();
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
                c.read_to_eof();
            });
        }
    });
    assert_eq!(
        bystander.get("bystander").as_deref(),
        Some(&b"still here"[..])
    );
    t.assert_healthy("random input");
}

#[test]
fn two_thousand_connections_opened_and_dropped() {
    let mut t = Target::start(&["-t", "2"]);
    let mut checker = t.server.connect();
    checker.set("conns", b"v");
    for wave in 0..4 {
        let mut conns: Vec<Conn> = (0..500).map(|_| t.server.connect()).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            match i % 5 {
                // Answered and then dropped.
                0 => assert_eq!(
                    c.round_trip(b"get conns\r\n"),
                    b"VALUE conns 0 1\r\nv\r\nEND\r\n"
                ),
                // Dropped with requests in flight, some of them answered by
                // the other shard, and their replies unread.
                1 => c.send(b"get conns a b c d e f g h\r\nmg a v\r\nmg b v\r\nset x 0 0 1\r\n"),
                // Dropped halfway through a data block.
                2 => c.send(b"set y 0 0 100\r\nabc"),
                // Dropped while every shard is asked for its stats.
                3 => c.send(b"stats\r\nstats items\r\n"),
                _ => {}
            }
        }
        drop(conns);
        assert_eq!(
            checker.get("conns").as_deref(),
            Some(&b"v"[..]),
            "wave {wave}"
        );
    }
    // Every dropped connection is eventually released (polled, bounded).
    let deadline = Instant::now() + READ_DEADLINE;
    loop {
        let s = checker.stats("");
        if stat(&s, "curr_connections") == 1 {
            assert!(stat(&s, "total_connections") >= 2001);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "curr_connections stuck at {}",
            stat(&s, "curr_connections")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t.assert_healthy("2,000 connections");
}

/// Clients that each once stored and fetched a large value, then stay
/// connected and idle: the buffers that value grew (read, reply, send) are
/// given back once they have been quiet a while, so 64 such connections do
/// not hold ~2 MB each (146 MB over the baseline before they did).
#[test]
fn idle_connections_give_back_what_a_large_value_grew() {
    let mut t = Target::start(&["-t", "2", "-m", "256"]);
    let value = vec![b'b'; 1_000_000];
    let mut conns: Vec<Conn> = (0..64).map(|_| t.server.connect()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        // One key per shard's worth of traffic, overwritten: the store holds
        // two values, whatever the connections kept.
        let key = format!("large:{}", i % 2);
        c.set(&key, &value);
        assert_eq!(c.get(&key).map(|v| v.len()), Some(value.len()));
    }
    // Given back once the connections have been quiet for a couple of
    // seconds (the shards look once a second); polled, bounded. The store's
    // two values and their pages fit in far less than this bound; the
    // connections' buffers alone were 130 MB.
    let bound = t.baseline_kib + (32 << 10);
    let deadline = Instant::now() + READ_DEADLINE;
    let mut rss = t.server.rss_kib();
    while rss > bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        rss = t.server.rss_kib();
    }
    assert!(
        rss <= bound,
        "64 idle connections hold {rss} KiB, baseline {} KiB",
        t.baseline_kib
    );
    for c in &mut conns {
        assert!(c.round_trip(b"version\r\n").starts_with(b"VERSION 1.6."));
    }
    t.assert_healthy("idle connections after large values");
}

/// A client that sends gets and never reads the replies: the server stops
/// reading it once 4 MiB of replies wait, so its memory stays bounded and the
/// client's writes eventually block; everyone else is served meanwhile.
#[test]
fn a_client_that_never_reads() {
    let mut t = Target::start(&["-t", "2"]);
    let mut setup = t.server.connect();
    let value = vec![b'r'; 64 << 10];
    setup.set("unread:a", &value);
    setup.set("unread:b", &value);
    let c = t.server.connect();
    c.stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let batch = b"get unread:a\r\nget unread:b unread:a\r\n".repeat(1000);
    let mut stream = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        // At most 256 MiB of requests (about 2 TB of replies): a server that
        // kept reading would never make this write block.
        let mut written = 0usize;
        while written < 256 << 20 {
            match stream.write(&batch) {
                Ok(n) => written += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(written);
                }
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "wrote {written} bytes without blocking"
        )))
    });
    let written = t
        .watch_rss_while("a client that never reads", writer)
        .unwrap();
    assert!(written > 0);
    t.assert_healthy("a client that never reads");
    // The stuck connection is cleaned up when its client goes away.
    drop(c);
    let deadline = Instant::now() + READ_DEADLINE;
    while stat(&setup.stats(""), "curr_connections") != 1 {
        assert!(
            Instant::now() < deadline,
            "the unread connection was never released"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t.assert_healthy("dropping the client that never read");
}

/// One multi-get whose reply would be 1.2 GB (12,000 repeats of a key with a
/// 100 KB value, over both shards' keys): values are copied into replies, so
/// built whole it would take that much memory. Read in 64-key pieces, paused
/// while the client does not read, it stays within the slack, and the reply
/// a slow reader finally takes is whole and in order.
#[test]
#[ignore = "open: about 1 run in 6 the RSS peaks at 170-430 MB (in a single anonymous mapping) \
            with two shards; one shard always stays within 7 MB; cause not found yet (docs/security.md)"]
fn a_multi_get_of_gigabytes_is_answered_in_bounded_memory() {
    let mut t = Target::start(&["-t", "2"]);
    let mut c = t.server.connect();
    let keys = ["huge:a", "huge:b", "huge:c"];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, &vec![b'0' + i as u8; 100_000]);
    }
    let asked: Vec<&str> = (0..12_000).map(|i| keys[i % 3]).collect();
    c.send(format!("get {}\r\n", asked.join(" ")).as_bytes());
    t.watch_rss_for(
        "a multi-get of gigabytes, unread",
        Duration::from_millis(500),
    );
    // Read it all, checking the framing of every value as it passes.
    let mut got = 0usize;
    for (i, k) in asked.iter().enumerate() {
        let header = c.read_line();
        assert_eq!(
            header,
            format!("VALUE {k} 0 100000\r\n").as_bytes(),
            "value {i}"
        );
        let body = c.read_n(100_002);
        assert!(body[..100_000].iter().all(|&b| b == b'0' + (i % 3) as u8));
        got += 1;
    }
    assert_eq!(c.read_line(), b"END\r\n");
    assert_eq!(got, 12_000);
    t.assert_healthy("a multi-get of gigabytes");
}

/// A slow reader: more replies than the output bound, read late, arrive
/// whole and in order (reading pauses and resumes).
#[test]
fn a_slow_reader_gets_every_reply_in_order() {
    let mut t = Target::start(&["-t", "2"]);
    let mut c = t.server.connect();
    let keys: Vec<String> = (0..16).map(|i| format!("slow:{i}")).collect();
    let mut values = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let v = vec![b'a' + i as u8; 100_000 + i];
        c.set(k, &v);
        values.push(v);
    }
    // 300 requests, about 30 MB of replies, 7x the 4 MiB output bound.
    let (mut req, mut want) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let (k, v) = (&keys[i % 16], &values[i % 16]);
        req.extend_from_slice(format!("get {k}\r\n").as_bytes());
        want.extend_from_slice(format!("VALUE {k} 0 {}\r\n", v.len()).as_bytes());
        want.extend_from_slice(v);
        want.extend_from_slice(b"\r\nEND\r\n");
    }
    c.send(&req);
    // Let the server run into the bound before anything is read.
    t.watch_rss_for("a slow reader", Duration::from_millis(300));
    assert_bytes(c.read_n(want.len()), &want, "replies read late");
    t.assert_healthy("a slow reader");
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let mut t = Target::start(&["-t", "2", "-c", "10"]);
    // The warm-up connection is gone once the server has seen it close.
    let deadline = Instant::now() + READ_DEADLINE;
    let mut first = t.server.connect();
    while stat(&first.stats(""), "curr_connections") != 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut conns = vec![first];
    for _ in 0..9 {
        let mut c = t.server.connect();
        assert!(c.round_trip(b"version\r\n").starts_with(b"VERSION"));
        conns.push(c);
    }
    for _ in 0..5 {
        let mut over = t.server.connect();
        assert_eq!(
            show(&over.read_to_eof()),
            "ERROR Too many open connections\r\n"
        );
    }
    // Everyone admitted is still served.
    for (i, c) in conns.iter_mut().enumerate() {
        c.set(&format!("limit:{i}"), b"v");
    }
    assert!(stat(&conns[0].stats(""), "rejected_connections") >= 5);
    // A freed place is given to the next client (once the close is seen).
    drop(conns.pop());
    conns.push(t.connect_when_admitted());
    drop(conns);
    drop(t.connect_when_admitted());
    let _ = t.connect_when_admitted();
    t.assert_healthy("the connection limit");
}
