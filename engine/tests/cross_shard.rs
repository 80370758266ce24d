//! Cross-shard routing with two shards: a key lives on the shard that
//! `shard_of` names, connections land wherever the kernel puts them, and every
//! connection sees every key byte-exact, with replies in request order.

mod common;
use std::collections::HashMap;

use common::{Conn, Server, assert_bytes, parse_values, stat};
use engine::shard::route::shard_of;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` keys owned by shard `shard` of 2.
fn keys_of(shard: usize, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| shard_of(k.as_bytes(), 2) == shard)
        .take(n)
        .collect()
}

/// Which shard a connection is on: a get of a key shard 0 owns is forwarded
/// (and counted) only from shard 1.
fn shard_of_conn(c: &mut Conn, probe: &str) -> usize {
    let before = stat(&c.stats(""), "cross_shard_requests");
    c.get(probe);
    let after = stat(&c.stats(""), "cross_shard_requests");
    usize::from(after > before)
}

fn value_for(rng: &mut Rng, i: usize) -> Vec<u8> {
    let len = match i % 5 {
        0 => 0,
        1 => rng.below(16) as usize,
        2 => rng.below(4096) as usize,
        3 => 4090 + rng.below(20) as usize, // around a receive buffer
        _ => 20_000 + rng.below(80_000) as usize,
    };
    (0..len).map(|_| rng.next() as u8).collect()
}

fn get_reply(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(format!("VALUE {k} 0 {}\r\n", v.len()).as_bytes());
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"END\r\n");
    out
}

#[test]
fn keys_written_on_one_connection_read_back_byte_exact_on_every_other() {
    let server = Server::start(&["-t", "2"]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut keys = keys_of(0, 60, "x");
    keys.extend(keys_of(1, 60, "x"));
    let values: Vec<Vec<u8>> = (0..keys.len()).map(|i| value_for(&mut rng, i)).collect();

    let mut writer = server.connect();
    let mut batch = Vec::new();
    for (k, v) in keys.iter().zip(&values) {
        batch.extend_from_slice(format!("set {k} 0 0 {}\r\n", v.len()).as_bytes());
        batch.extend_from_slice(v);
        batch.extend_from_slice(b"\r\n");
    }
    writer.send(&batch);
    assert_bytes(
        writer.read_n(keys.len() * 8),
        b"STORED\r\n".repeat(keys.len()),
        "pipelined sets",
    );

    let mut one_by_one = Vec::new();
    let mut want = Vec::new();
    for (k, v) in keys.iter().zip(&values) {
        one_by_one.extend_from_slice(format!("get {k}\r\n").as_bytes());
        want.extend_from_slice(&get_reply(&[(k, v)]));
    }
    let pairs: Vec<(&str, &[u8])> = keys
        .iter()
        .map(String::as_str)
        .zip(values.iter().map(Vec::as_slice))
        .collect();
    let multi = format!("get {}\r\n", keys.join(" "));
    let want_multi = get_reply(&pairs);

    // Which shard each reader landed on, found one at a time (the counter
    // the probe reads is server-wide).
    let probe = &keys_of(0, 1, "probe")[0];
    let mut readers: Vec<Conn> = (0..16).map(|_| server.connect()).collect();
    let mut seen = [0usize; 2];
    for c in &mut readers {
        seen[shard_of_conn(c, probe)] += 1;
    }
    // Readers on threads, so that both shards serve at the same time.
    std::thread::scope(|s| {
        for mut c in readers {
            let (one_by_one, want, multi, want_multi) = (&one_by_one, &want, &multi, &want_multi);
            s.spawn(move || {
                c.send(one_by_one);
                assert_bytes(c.read_n(want.len()), want, "gets one by one");
                c.send(multi.as_bytes());
                assert_bytes(c.read_n(want_multi.len()), want_multi, "one multi-get");
            });
        }
    });
    // 16 connections all on one shard: a 1 in 32768 chance with a fair kernel.
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "connections per shard: {seen:?}"
    );
}

#[test]
fn multi_get_spanning_both_shards_keeps_request_order() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let a = keys_of(0, 8, "m");
    let b = keys_of(1, 8, "m");
    for k in a.iter().chain(&b) {
        c.set(k, format!("<{k}>").as_bytes());
    }
    let miss = keys_of(0, 1, "miss")[0].clone();
    let miss1 = keys_of(1, 1, "miss")[0].clone();
    // Runs of one shard's keys of every length, misses and repeats between.
    let order: Vec<&String> = vec![
        &a[0], &b[0], &a[1], &a[2], &b[1], &b[2], &b[3], &miss, &a[3], &a[0], &miss1, &b[4], &a[4],
        &a[5], &a[6], &a[7], &b[5], &b[6], &b[7], &b[0], &miss, &miss1,
    ];
    let line: Vec<&str> = order.iter().map(|k| k.as_str()).collect();
    let hits: Vec<(&str, String)> = order
        .iter()
        .filter(|k| **k != &miss && **k != &miss1)
        .map(|k| (k.as_str(), format!("<{k}>")))
        .collect();
    let pairs: Vec<(&str, &[u8])> = hits.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let want = get_reply(&pairs);
    for cmd in ["get", "gat 0"] {
        c.send(format!("{cmd} {}\r\n", line.join(" ")).as_bytes());
        assert_bytes(c.read_through(b"END\r\n"), &want, cmd);
    }
    // gets: same order, with CAS values.
    c.send(format!("gets {}\r\n", line.join(" ")).as_bytes());
    let reply = c.read_through(b"END\r\n");
    let got: Vec<(Vec<u8>, Vec<u8>)> = parse_values(&reply);
    let want: Vec<(Vec<u8>, Vec<u8>)> = hits
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
    // Several multi-gets in one write, each answered whole and in turn.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..8 {
        req.extend_from_slice(format!("get {} {} {}\r\n", b[i], a[i], b[(i + 1) % 8]).as_bytes());
        let (x, y, z) = (
            format!("<{}>", b[i]),
            format!("<{}>", a[i]),
            format!("<{}>", b[(i + 1) % 8]),
        );
        want.extend_from_slice(&get_reply(&[
            (&b[i], x.as_bytes()),
            (&a[i], y.as_bytes()),
            (&b[(i + 1) % 8], z.as_bytes()),
        ]));
    }
    c.send(&req);
    assert_bytes(c.read_n(want.len()), want, "pipelined multi-gets");
    assert!(stat(&c.stats(""), "cross_shard_requests") > 0);
}

/// What the server should hold: a model to compute expected replies.
#[derive(Default)]
/// What the server holds: each key's value as stored. incr/decr/ma write a
/// result no longer than the old value in place, padded with spaces (as
/// memcached does when it can update in place), and a longer one exactly.
struct Model(HashMap<String, String>);

fn counter_after(old: &str, n: u64) -> String {
    let text = n.to_string();
    if text.len() <= old.len() {
        format!("{text:<width$}", width = old.len())
    } else {
        text
    }
}

impl Model {
    /// Appends one random request to `req` and its reply to `want`.
    fn step(&mut self, rng: &mut Rng, keys: &[String], req: &mut Vec<u8>, want: &mut Vec<u8>) {
        let k = &keys[rng.below(keys.len() as u64) as usize];
        let cur = self.0.get(k).cloned();
        let number = |v: &str| {
            v.trim_end()
                .parse::<u64>()
                .expect("the model stores numbers")
        };
        let mut w = |s: String| want.extend_from_slice(s.as_bytes());
        match rng.below(12) {
            0 | 1 => {
                let v = rng.below(1000).to_string();
                req.extend_from_slice(format!("set {k} 0 0 {}\r\n{v}\r\n", v.len()).as_bytes());
                self.0.insert(k.clone(), v);
                w("STORED\r\n".into());
            }
            2 | 3 => {
                req.extend_from_slice(format!("get {k}\r\n").as_bytes());
                if let Some(v) = cur {
                    w(format!("VALUE {k} 0 {}\r\n{v}\r\n", v.len()));
                }
                w("END\r\n".into());
            }
            4 | 5 => {
                let incr = rng.below(2) == 0;
                let d = rng.below(50);
                let cmd = if incr { "incr" } else { "decr" };
                req.extend_from_slice(format!("{cmd} {k} {d}\r\n").as_bytes());
                match cur {
                    Some(v) => {
                        let n = if incr {
                            number(&v) + d
                        } else {
                            number(&v).saturating_sub(d)
                        };
                        self.0.insert(k.clone(), counter_after(&v, n));
                        w(format!("{n}\r\n"));
                    }
                    None => w("NOT_FOUND\r\n".into()),
                }
            }
            6 => {
                req.extend_from_slice(format!("delete {k}\r\n").as_bytes());
                w(if self.0.remove(k).is_some() {
                    "DELETED\r\n"
                } else {
                    "NOT_FOUND\r\n"
                }
                .into());
            }
            7 => {
                req.extend_from_slice(format!("mg {k} v k\r\n").as_bytes());
                match cur {
                    Some(v) => w(format!("VA {} k{k}\r\n{v}\r\n", v.len())),
                    None => w(format!("EN k{k}\r\n")),
                }
            }
            8 => {
                let v = rng.below(1000).to_string();
                req.extend_from_slice(format!("ms {k} {} q\r\n{v}\r\n", v.len()).as_bytes());
                self.0.insert(k.clone(), v);
            }
            9 => {
                req.extend_from_slice(format!("ma {k} N0 J7 v\r\n").as_bytes());
                let (n, stored) = match &cur {
                    Some(v) => (number(v) + 1, counter_after(v, number(v) + 1)),
                    None => (7, "7".to_string()),
                };
                self.0.insert(k.clone(), stored);
                w(format!("VA {}\r\n{n}\r\n", n.to_string().len()));
            }
            10 => {
                req.extend_from_slice(format!("md {k} q\r\n").as_bytes());
                if self.0.remove(k).is_none() {
                    w("NF\r\n".into());
                }
            }
            _ => {
                let k2 = &keys[rng.below(keys.len() as u64) as usize];
                req.extend_from_slice(format!("get {k} {k2}\r\nmn\r\n").as_bytes());
                for key in [k, k2] {
                    if let Some(v) = self.0.get(key) {
                        w(format!("VALUE {key} 0 {}\r\n{v}\r\n", v.len()));
                    }
                }
                w("END\r\nMN\r\n".into());
            }
        }
    }
}

#[test]
fn pipelined_local_and_remote_requests_keep_reply_order() {
    let server = Server::start(&["-t", "2"]);
    let mut keys = keys_of(0, 6, "p");
    keys.extend(keys_of(1, 6, "p"));
    let mut rng = Rng(42);
    let mut model = Model::default();
    for round in 0..5 {
        let mut c = server.connect();
        let (mut req, mut want) = (Vec::new(), Vec::new());
        for _ in 0..2000 {
            model.step(&mut rng, &keys, &mut req, &mut want);
        }
        // A closing mn proves nothing else was sent.
        req.extend_from_slice(b"mn\r\n");
        want.extend_from_slice(b"MN\r\n");
        c.send(&req);
        assert_bytes(c.read_n(want.len()), &want, &format!("round {round}"));
        c.assert_silent(std::time::Duration::from_millis(50));
    }
}

#[test]
fn stats_flush_and_reset_cover_every_shard() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let mut keys = keys_of(0, 40, "s");
    keys.extend(keys_of(1, 60, "s"));
    for k in &keys {
        c.set(k, b"0123456789");
    }
    for k in &keys {
        assert!(c.get(k).is_some());
    }
    for i in 0..50 {
        assert!(c.get(&format!("absent:{i}")).is_none());
    }
    // A few more connections, each seen by the server before stats is asked.
    let mut others: Vec<Conn> = (0..5).map(|_| server.connect()).collect();
    for o in &mut others {
        assert!(o.round_trip(b"version\r\n").len() > 8);
    }
    let s = c.stats("");
    assert_eq!(stat(&s, "curr_items"), 100);
    assert_eq!(stat(&s, "total_items"), 100);
    assert_eq!(stat(&s, "cmd_set"), 100);
    assert_eq!(stat(&s, "get_hits"), 100);
    assert_eq!(stat(&s, "get_misses"), 50);
    assert_eq!(stat(&s, "cmd_get"), 150);
    assert_eq!(stat(&s, "curr_connections"), 6);
    assert!(stat(&s, "total_connections") >= 6);
    assert_eq!(stat(&s, "threads"), 2);
    assert_eq!(stat(&s, "pid"), u64::from(server.pid()));
    assert!(stat(&s, "bytes") >= 100 * 10);
    let limit = stat(&s, "limit_maxbytes");
    assert!(
        (60 << 20..=64 << 20).contains(&limit),
        "limit_maxbytes {limit}"
    );
    // stats items and slabs add up to the same items.
    let items = c.stats("items");
    let number: u64 = items
        .iter()
        .filter(|(k, _)| k.ends_with(":number"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(number, 100, "{items:?}");
    let slabs = c.stats("slabs");
    let used: u64 = slabs
        .iter()
        .filter(|(k, _)| k.ends_with(":used_chunks"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(used, 100, "{slabs:?}");
    // Every shard resets its counters; gauges stay.
    assert_eq!(c.round_trip(b"stats reset\r\n"), b"RESET\r\n");
    let s = c.stats("");
    assert_eq!(stat(&s, "get_hits"), 0);
    assert_eq!(stat(&s, "cmd_get"), 0);
    assert_eq!(stat(&s, "curr_items"), 100);
    // Every shard flushes.
    assert_eq!(c.round_trip(b"flush_all\r\n"), b"OK\r\n");
    for o in &mut others {
        for k in &keys {
            assert_eq!(o.get(k), None, "{k} after flush_all");
        }
    }
    drop(others);
    // Closed connections leave the count (asynchronously: poll, bounded).
    let deadline = std::time::Instant::now() + common::READ_DEADLINE;
    while stat(&c.stats(""), "curr_connections") != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "curr_connections stuck"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `quit`, or the client's EOF, right behind requests other shards answer:
/// every reply owed is sent before the connection closes.
#[test]
fn quit_and_eof_wait_for_replies_from_the_other_shard() {
    let server = Server::start(&["-t", "2"]);
    let mut keys = keys_of(0, 20, "q");
    keys.extend(keys_of(1, 20, "q"));
    let mut c = server.connect();
    for k in &keys {
        c.set(k, k.as_bytes());
    }
    let (mut req, mut want) = (Vec::new(), Vec::new());
    for k in &keys {
        req.extend_from_slice(format!("get {k}\r\nmg {k} v\r\n").as_bytes());
        want.extend_from_slice(&get_reply(&[(k, k.as_bytes())]));
        want.extend_from_slice(format!("VA {}\r\n{k}\r\n", k.len()).as_bytes());
    }
    req.extend_from_slice(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let pairs: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), k.as_bytes())).collect();
    want.extend_from_slice(&get_reply(&pairs));
    for ending in ["quit", "eof"] {
        for _ in 0..10 {
            let mut c = server.connect();
            if ending == "quit" {
                c.send(&[&req[..], b"quit\r\nget never\r\n"].concat());
            } else {
                c.send(&req);
                c.shutdown_write();
            }
            assert_bytes(c.read_to_eof(), &want, ending);
        }
    }
}

/// Keyless commands that gather from every shard (stats) or reach every
/// shard (flush_all, stats reset) keep their place among remote requests.
#[test]
fn keyless_commands_keep_their_place_among_remote_requests() {
    let server = Server::start(&["-t", "2"]);
    let a = &keys_of(0, 1, "k")[0];
    let b = &keys_of(1, 1, "k")[0];
    let mut c = server.connect();
    c.set(a, b"A");
    c.set(b, b"B");
    for _ in 0..20 {
        c.send(format!("get {a} {b}\r\nstats\r\nget {b}\r\nversion\r\nmg {a} v\r\n").as_bytes());
        assert_bytes(
            c.read_through(b"END\r\n"),
            get_reply(&[(a, b"A"), (b, b"B")]),
            "get",
        );
        let stats = c.read_through(b"END\r\n");
        assert!(
            stats.starts_with(b"STAT pid "),
            "{}",
            String::from_utf8_lossy(&stats)
        );
        assert_bytes(
            c.read_through(b"END\r\n"),
            get_reply(&[(b, b"B")]),
            "get after stats",
        );
        assert!(c.read_line().starts_with(b"VERSION "));
        assert_bytes(c.read_n(9), b"VA 1\r\nA\r\n", "mg");
    }
    c.send(format!("set {a} 0 0 1\r\nX\r\nset {b} 0 0 1\r\nY\r\nflush_all\r\nget {a} {b}\r\nset {b} 0 0 1\r\nZ\r\nget {a} {b}\r\n").as_bytes());
    let want = [
        &b"STORED\r\nSTORED\r\nOK\r\nEND\r\nSTORED\r\n"[..],
        &get_reply(&[(b, b"Z")]),
    ]
    .concat();
    assert_bytes(
        c.read_n(want.len()),
        want,
        "flush_all among remote requests",
    );
}

/// After one connection's `flush_all` is answered `OK`, no connection sees
/// an item it flushed, whichever shard owns the key or accepted the reader:
/// the `OK` leaves only once every shard has applied the flush.
#[test]
fn after_flush_all_answers_ok_no_connection_sees_a_flushed_item() {
    let server = Server::start(&["-t", "2"]);
    let mut flusher = server.connect();
    let mut readers: Vec<Conn> = (0..4).map(|_| server.connect()).collect();
    let keys = [keys_of(0, 4, "f"), keys_of(1, 4, "f")].concat();
    for round in 0..200 {
        for k in &keys {
            flusher.set(k, b"v");
        }
        assert_eq!(flusher.round_trip(b"flush_all\r\n"), b"OK\r\n");
        // Every reader asks for every key in one pipelined multi-get, at
        // once, right after the OK.
        let line = format!("get {}\r\n", keys.join(" "));
        for r in &mut readers {
            r.send(line.as_bytes());
        }
        for (i, r) in readers.iter_mut().enumerate() {
            assert_eq!(
                r.read_through(b"END\r\n"),
                b"END\r\n",
                "round {round}: reader {i} saw flushed items"
            );
        }
    }
}
