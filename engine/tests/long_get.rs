//! `get`/`gets` lines of any length: memcached reads them in pieces and so
//! does corecache, where a line over 64 KiB used to be refused (`CLIENT_ERROR
//! line too long`). Differential against memcached where it is installed:
//! the same bytes in, the same bytes out (CAS values aside).

mod common;

use std::time::Duration;

use common::{Conn, Memcached, Server};

/// `n` keys of `width` bytes, spread over both shards of a 2-shard server.
fn keys(n: usize, width: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:0>width$}")).collect()
}

fn store_all(c: &mut Conn, keys: &[String]) {
    let mut wire = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        // Every third key is left missing.
        if i % 3 != 2 {
            let v = format!("value-{i}");
            wire.extend_from_slice(format!("set {k} {i} 0 {}\r\n{v}\r\n", v.len()).as_bytes());
        }
    }
    c.send(&wire);
    for (i, _) in keys.iter().enumerate() {
        if i % 3 != 2 {
            assert_eq!(c.read_line(), b"STORED\r\n");
        }
    }
}

/// The line `verb k1 k2 ...\r\n`, written in `chunk`-byte writes, and what came back.
fn long_get(c: &mut Conn, verb: &str, keys: &[String], chunk: usize) -> Vec<u8> {
    let line = format!("{verb} {}\r\n", keys.join(" "));
    for part in line.as_bytes().chunks(chunk) {
        c.send(part);
        if chunk < line.len() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    c.read_through(b"END\r\n")
}

/// The expected VALUE blocks, in key order, without CAS.
fn expected(keys: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 2 {
            let v = format!("value-{i}");
            out.extend_from_slice(format!("VALUE {k} {i} {}\r\n{v}\r\n", v.len()).as_bytes());
        }
    }
    out.extend_from_slice(b"END\r\n");
    out
}

/// `gets` replies with each CAS value replaced by `C`.
fn without_cas(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply);
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        match line.strip_prefix("VALUE ") {
            Some(rest) => {
                let mut t: Vec<&str> = rest.trim_end().split(' ').collect();
                if t.len() == 4 {
                    t[3] = "C";
                }
                out.push_str(&format!("VALUE {}\r\n", t.join(" ")));
            }
            None => out.push_str(line),
        }
    }
    out.into_bytes()
}

#[test]
fn a_1000_key_get_of_100_byte_keys_is_answered_whole() {
    let server = Server::start(&["-t", "2"]);
    let ks = keys(1000, 100);
    let mut c = server.connect();
    store_all(&mut c, &ks);
    // 101 KB of line, in one write and in 1000-byte writes that cut keys.
    let want = expected(&ks);
    assert_eq!(long_get(&mut c, "get", &ks, usize::MAX), want);
    assert_eq!(long_get(&mut c, "get", &ks, 1000), want);
    // The connection is in step afterwards.
    c.send(b"get 0\r\nversion\r\n");
    assert_eq!(c.read_through(b"END\r\n"), b"END\r\n");
    assert!(c.read_line().starts_with(b"VERSION "));
}

#[test]
fn long_gets_lines_match_memcached() {
    let ks = keys(18_000, 9); // memcached's getset.t sends 18,725 such keys
    let server = Server::start(&["-t", "2"]);
    let mut ours = server.connect();
    store_all(&mut ours, &ks);
    let got = without_cas(&long_get(&mut ours, "gets", &ks, 7_000));
    let Some(mc) = Memcached::start("long_gets_lines_match_memcached") else {
        // `gets` lines carry a CAS; `expected` is the `get` form.
        let gets_form = String::from_utf8(expected(&ks))
            .unwrap()
            .split_inclusive("\r\n")
            .map(|l| match l.strip_prefix("VALUE ") {
                Some(rest) => format!("VALUE {} 0\r\n", rest.trim_end()),
                None => l.to_string(),
            })
            .collect::<String>();
        assert_eq!(got, without_cas(gets_form.as_bytes()));
        return;
    };
    let mut theirs = mc.connect();
    store_all(&mut theirs, &ks);
    let want = without_cas(&long_get(&mut theirs, "gets", &ks, 7_000));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "corecache and memcached differ");
}

/// memcached answers a key over 250 bytes inside a long get line with
/// `CLIENT_ERROR bad command line format`, drops the rest of the line and
/// reads the next one.
#[test]
fn a_key_longer_than_memcacheds_limit_inside_a_long_line_is_refused() {
    let server = Server::start(&["-t", "2"]);
    let mut ks = keys(3000, 10);
    ks[2500] = "k".repeat(251);
    for mut c in [server.connect(), server.connect()] {
        let line = format!("get {}\r\nversion\r\n", ks.join(" "));
        c.send(line.as_bytes());
        assert_eq!(c.read_line(), b"CLIENT_ERROR bad command line format\r\n");
        assert!(c.read_line().starts_with(b"VERSION "));
    }
    // A 20 KiB "key": the same.
    let mut c = server.connect();
    c.send(format!("get a b {} c\r\nversion\r\n", "k".repeat(20 << 10)).as_bytes());
    assert_eq!(c.read_line(), b"CLIENT_ERROR bad command line format\r\n");
    assert!(c.read_line().starts_with(b"VERSION "));
}
