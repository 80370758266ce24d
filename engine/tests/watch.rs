//! `watch`: a connection turned log watcher sees one line per event of the
//! kinds it asked for, from every shard; a watcher that does not read costs
//! bounded memory and slows nobody, and is told `skipped=N` when it reads
//! again; a watcher going away or a graceful stop with one attached
//! disturbs nothing.

mod common;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Conn, Server, assert_bytes};
use engine::shard::route::shard_of;

/// A watcher's end: lines end with `\n` alone, as memcached's do.
struct Watcher {
    reader: BufReader<TcpStream>,
}

impl Watcher {
    /// Connects and sends `watch <kinds>`; returns once `OK` is read.
    fn start(addr: SocketAddr, kinds: &str) -> Watcher {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(format!("watch {kinds}\r\n").as_bytes())
            .unwrap();
        let mut w = Watcher {
            reader: BufReader::new(stream),
        };
        assert_eq!(w.line(), "OK\r\n");
        w
    }

    /// The next line, within 10 s.
    fn line(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut line = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no log line within 10 s; have {line:?}");
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("watcher closed; have {line:?}"),
                Ok(_) if line.ends_with('\n') => return line,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read error: {e}"),
            }
        }
    }

    /// The next line, or `None` when none comes within `wait`.
    fn try_line(&mut self, wait: Duration) -> Option<String> {
        let mut line = String::new();
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("watcher closed; have {line:?}"),
                Ok(_) if line.ends_with('\n') => return Some(line),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if line.is_empty() {
                        return None;
                    }
                    // A line cut in two: its end follows at once.
                    self.reader
                        .get_ref()
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                }
                Err(e) => panic!("read error: {e}"),
            }
        }
    }

    /// Lines until one contains `needle`; panics after `max` lines.
    fn until(&mut self, needle: &str, max: usize) -> String {
        for _ in 0..max {
            let l = self.line();
            if l.contains(needle) {
                return l;
            }
        }
        panic!("no line with {needle:?} within {max} lines");
    }
}

/// The value of `name=` in a log line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

/// A key of `shard` (of 2).
fn key_of(shard: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| shard_of(k.as_bytes(), 2) == shard)
        .unwrap()
}

#[test]
fn a_watcher_sees_fetches_and_mutations_of_keys_of_both_shards() {
    let server = Server::start(&["-t", "2"]);
    let mut w = Watcher::start(server.addr, "fetchers mutations");
    let mut c = server.connect();
    for shard in 0..2 {
        let key = key_of(shard, "k,");
        c.set(&key, b"abc");
        assert_eq!(c.get(&key).as_deref(), Some(&b"abc"[..]));
        assert_eq!(c.get(&format!("{key}-none")), None);
        let encoded = key.replace(',', "%2C");

        // memcached's lookup before the store is a fetch too.
        let lookup = w.until(&format!("key={encoded} "), 100);
        assert_eq!(field(&lookup, "type"), "item_get", "{lookup}");
        assert_eq!(field(&lookup, "status"), "not_found");
        let store = w.line();
        assert!(store.starts_with("ts="), "{store}");
        let (secs, micros) = field(&store, "ts").split_once('.').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000 && micros.len() == 6);
        field(&store, "gid").parse::<u64>().unwrap();
        assert_eq!(field(&store, "type"), "item_store", "{store}");
        assert_eq!(field(&store, "status"), "stored");
        assert_eq!(field(&store, "cmd"), "set");
        assert_eq!(field(&store, "ttl"), "0");
        assert!(field(&store, "clsid").parse::<u32>().unwrap() >= 1);
        field(&store, "cfd").parse::<i32>().unwrap();
        assert_eq!(field(&store, "size"), "3");

        let hit = w.line();
        assert_eq!(field(&hit, "type"), "item_get", "{hit}");
        assert_eq!(field(&hit, "key"), encoded);
        assert_eq!(field(&hit, "status"), "found");
        assert_eq!(field(&hit, "size"), "3");
        assert_eq!(field(&hit, "clsid"), field(&store, "clsid"));
        assert!(field(&hit, "gid").parse::<u64>().unwrap() > field(&store, "gid").parse().unwrap());

        let miss = w.line();
        assert_eq!(field(&miss, "type"), "item_get", "{miss}");
        assert_eq!(field(&miss, "key"), format!("{encoded}-none"));
        assert_eq!(field(&miss, "status"), "not_found");
        assert_eq!((field(&miss, "clsid"), field(&miss, "size")), ("0", "0"));
    }
    // A mutations-only watcher sees no fetches; meta commands are logged too.
    let mut m = Watcher::start(server.addr, "mutations");
    let key = key_of(1, "meta");
    assert_bytes(
        c.round_trip(format!("mg {key} v\r\nms {key} 2 T60\r\nhi\r\n").as_bytes()),
        "EN\r\nHD\r\n",
        "mg then ms",
    );
    let l = m.line();
    assert_eq!(field(&l, "type"), "item_store", "{l}");
    assert_eq!(field(&l, "key"), key);
    let ttl: u32 = field(&l, "ttl").parse().unwrap();
    assert!((59..=60).contains(&ttl), "{l}");
}

#[test]
fn connection_events_are_logged_with_their_reason() {
    let server = Server::start(&["-t", "2"]);
    let mut w = Watcher::start(server.addr, "connevents");
    let mut c = server.connect();
    let local = c.stream.local_addr().unwrap();
    assert_bytes(
        c.round_trip(b"version\r\n")
            .split(|&b| b == b' ')
            .next()
            .unwrap(),
        "VERSION",
        "version",
    );
    c.send(b"quit\r\n");
    let new = w.until("type=conn_new", 10);
    assert_eq!(field(&new, "rport"), local.port().to_string(), "{new}");
    assert_eq!(field(&new, "transport"), "tcp");
    let close = w.until("type=conn_close", 10);
    assert_eq!(field(&close, "rport"), local.port().to_string(), "{close}");
    assert_eq!(field(&close, "reason"), "normal");
    assert_eq!(field(&close, "cfd"), field(&new, "cfd"));
}

#[test]
fn a_slow_watcher_is_bounded_does_not_slow_clients_and_is_told_what_it_skipped() {
    let server = Server::start(&["-t", "2", "-o", "watcher_logbuf_size=8"]);
    let mut w = Watcher::start(server.addr, "fetchers");
    let mut c = server.connect();
    let rss_before = server.rss_kib();
    // ~40 MB of log lines (200-byte keys, URI-encoded as they are) while the
    // watcher reads nothing: the clients are answered all along.
    let spacer = "X".repeat(180);
    let mut batch = Vec::new();
    for round in 0..100 {
        batch.clear();
        for i in 0..1000 {
            batch.extend_from_slice(format!("get foo{round}:{i}{spacer}\r\n").as_bytes());
        }
        c.send(&batch);
        for _ in 0..1000 {
            assert_eq!(c.read_line(), b"END\r\n");
        }
    }
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 16 << 10,
        "RSS grew by {grown} KiB for a watcher that reads nothing"
    );
    // Reading again: every line is either read or counted in a `skipped=N`
    // line before a later one (lines dropped by a shard whose batch was
    // full included). New events bring the counts out: one `get endmark…`
    // every 100 lines read, until the books balance at one of them.
    let (mut generated, mut delivered, mut skipped, mut skip_lines) = (100_000u64, 0u64, 0u64, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut marks, mut since_mark) = (0, 100);
    loop {
        assert!(
            Instant::now() < deadline,
            "generated {generated}, read {delivered}, skipped {skipped}"
        );
        // A mark every 100 lines, and whenever the stream is quiet (the last
        // line did not fit, or a count waits for a line to ride on).
        let line = if since_mark >= 100 {
            None
        } else {
            w.try_line(Duration::from_millis(200))
        };
        let Some(l) = line else {
            marks += 1;
            c.get(&format!("endmark{marks}"));
            generated += 1;
            since_mark = 0;
            continue;
        };
        since_mark += 1;
        if let Some(v) = l.strip_prefix("skipped=") {
            skipped += v.trim().parse::<u64>().unwrap();
            skip_lines += 1;
            continue;
        }
        assert_eq!(field(&l, "type"), "item_get", "{l}");
        delivered += 1;
        if field(&l, "key").starts_with("endmark") && delivered + skipped == generated {
            break;
        }
    }
    eprintln!(
        "generated {generated}, read {delivered}, skipped {skipped} in {skip_lines} lines, RSS +{grown} KiB"
    );
    assert!(
        skip_lines > 0 && skipped > 1000,
        "skipped {skipped} in {skip_lines} lines"
    );
    let stats = c.stats("");
    assert_eq!(common::stat(&stats, "log_watchers"), 1);
    assert!(
        common::stat(&stats, "log_watcher_skipped") + common::stat(&stats, "log_worker_dropped")
            > 0
    );
}

#[test]
fn a_watcher_closing_does_not_disturb_the_server() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    for round in 0..3 {
        let w = Watcher::start(server.addr, "fetchers mutations");
        let key = key_of(round % 2, "gone");
        c.set(&key, b"v");
        drop(w);
        for i in 0..200 {
            c.set(&format!("{key}{i}"), b"value");
        }
        assert_eq!(c.get(&key).as_deref(), Some(&b"v"[..]));
    }
    // Other connections and a new watcher still work.
    let mut w = Watcher::start(server.addr, "fetchers");
    let mut d = Conn::connect(server.addr);
    assert_eq!(d.get("never-set"), None);
    let l = w.until("key=never-set ", 10);
    assert_eq!(field(&l, "status"), "not_found");
}

#[test]
fn graceful_stop_with_a_watcher_attached_exits_0() {
    let server = Server::start(&["-t", "2"]);
    let mut w = Watcher::start(server.addr, "fetchers mutations");
    let mut c = server.connect();
    c.set("before-stop", b"x");
    w.until("type=item_store key=before-stop ", 10);
    drop(c);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    // The stop closed the watcher: EOF after whatever was still on its way.
    w.reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = String::new();
    while w.reader.read_line(&mut rest).expect("EOF, not a timeout") > 0 {}
}

#[test]
fn watch_is_refused_with_minus_w_and_after_pipelined_replies() {
    let server = Server::start(&["-W"]);
    let mut c = server.connect();
    assert_bytes(
        c.round_trip(b"watch mutations\r\n"),
        "CLIENT_ERROR watch commands not allowed\r\n",
        "-W",
    );
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_bytes(
        c.round_trip(b"watch bogus\r\n"),
        "ERROR\r\n",
        "unknown kind",
    );
    // memcached's rule: not with replies of earlier requests still owed.
    assert_bytes(
        c.round_trip(b"set a 0 0 1\r\nx\r\nwatch\r\n"),
        "STORED\r\nERROR cannot pipeline other commands before watch\r\n",
        "pipelined",
    );
    // The connection is still an ordinary one.
    assert_eq!(c.get("a").as_deref(), Some(&b"x"[..]));
}
