//! The CAS word on demand, through the server: a text-protocol `set` stores an item
//! without its 8-byte CAS (`stats` `bytes` counts the item's own bytes), the first
//! `gets` gives it one that a `cas` then matches, binary replies carry a CAS that
//! works, and `memory.cas_on_demand = false` gives every item the word when stored.

mod common;

use common::{Conn, Server};
use proto::binary::{BinOp, BinRequest, StoreMode};

const KEY: &str = "cas-on-demand:0123456789abcdefgh"; // 32 bytes
const HEADER: u64 = 8;
const CAS_WORD: u64 = 8;

fn bytes(c: &mut Conn) -> u64 {
    c.stats("")
        .into_iter()
        .find(|(k, _)| k == "bytes")
        .map(|(_, v)| v.parse().unwrap())
        .expect("bytes in stats")
}

/// The CAS of a `gets` reply for `key`.
fn gets(c: &mut Conn, key: &str) -> u64 {
    let reply = c.round_trip(format!("gets {key}\r\n").as_bytes());
    let line = String::from_utf8_lossy(&reply);
    let first = line.lines().next().unwrap_or_default().to_string();
    let cas = first
        .split(' ')
        .nth(4)
        .unwrap_or_else(|| panic!("{line:?}"));
    cas.parse().unwrap()
}

#[test]
fn a_set_pays_for_its_cas_only_once_a_client_reads_it() {
    let server = Server::start(&["-t", "1"]);
    let mut c = server.connect();
    c.set(KEY, &[b'v'; 100]);
    let item = HEADER + 32 + 100;
    assert_eq!(bytes(&mut c), item, "no CAS word after a text set");
    assert_eq!(c.get(KEY).unwrap(), vec![b'v'; 100]);
    assert_eq!(bytes(&mut c), item, "nor after a get");

    let cas = gets(&mut c, KEY);
    assert_ne!(cas, 0);
    assert_eq!(bytes(&mut c), item + CAS_WORD, "gets gave it the word");
    assert_eq!(gets(&mut c, KEY), cas, "stable while unchanged");
    let stale = cas;
    let cmd = format!("cas {KEY} 0 0 1 {cas}\r\nw\r\n");
    assert_eq!(c.round_trip(cmd.as_bytes()), b"STORED\r\n");
    assert_eq!(
        bytes(&mut c),
        HEADER + 32 + 1,
        "the new version has no word again"
    );
    let cmd = format!("cas {KEY} 0 0 1 {stale}\r\nx\r\n");
    assert_eq!(c.round_trip(cmd.as_bytes()), b"EXISTS\r\n");
    assert!(gets(&mut c, KEY) > stale);

    // mg c and ms c print a CAS that a compare then matches.
    c.set("m", b"1");
    let reply = c.round_trip(b"mg m c\r\n");
    let line = String::from_utf8_lossy(&reply).trim_end().to_string();
    let cas: u64 = line
        .strip_prefix("HD c")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    let cmd = format!("ms m 1 C{cas} c\r\n2\r\n");
    let reply = String::from_utf8_lossy(&c.round_trip(cmd.as_bytes())).to_string();
    let new: u64 = reply
        .trim_end()
        .strip_prefix("HD c")
        .unwrap_or_else(|| panic!("{reply}"))
        .parse()
        .unwrap();
    assert!(new > cas);
    let cmd = format!("md m C{new}\r\n");
    assert_eq!(c.round_trip(cmd.as_bytes()), b"HD\r\n");
}

#[test]
fn binary_replies_carry_a_cas_that_a_compare_matches() {
    let server = Server::start(&["-t", "1"]);
    // A connection speaks one protocol: text on `t`, binary on `c`.
    let mut t = server.connect();
    t.set("b", b"1");
    let mut c = server.connect();
    let get = BinOp::Get {
        key: b"b",
        with_key: false,
    };
    let (status, cas) = c.binary(BinRequest::new(get, false, 1, 0));
    assert_eq!(status, 0);
    assert_ne!(cas, 0);
    let set = |cas| {
        let op = BinOp::Store {
            mode: StoreMode::Set,
            key: b"b",
            flags: 0,
            exptime: 0,
            value: b"2",
        };
        BinRequest::new(op, false, 2, cas)
    };
    let (status, new) = c.binary(set(cas));
    assert_eq!(status, 0, "the CAS from the GET matched");
    assert!(new > cas);
    assert_eq!(gets(&mut t, "b"), new, "the SET's reply CAS is the item's");
    assert_eq!(c.binary(set(cas)).0, 0x0002, "an older CAS: key exists");
}

#[test]
fn cas_on_demand_off_gives_every_item_the_word_when_stored() {
    let toml = std::env::temp_dir().join(format!(
        "corecache-cas-on-demand-{}.toml",
        std::process::id()
    ));
    std::fs::write(&toml, "[memory]\ncas_on_demand = false\n").unwrap();
    let toml = toml.to_string_lossy().into_owned();
    let server = Server::start(&["--config", &toml, "-t", "1"]);
    let _ = std::fs::remove_file(&toml);
    let mut c = server.connect();
    let on = c
        .stats("settings")
        .into_iter()
        .find(|(k, _)| k == "cas_on_demand")
        .map(|(_, v)| v);
    assert_eq!(on.as_deref(), Some("no"));
    c.set(KEY, &[b'v'; 100]);
    assert_eq!(bytes(&mut c), HEADER + CAS_WORD + 32 + 100);
    let cas = gets(&mut c, KEY);
    assert_eq!(bytes(&mut c), HEADER + CAS_WORD + 32 + 100, "nothing moved");
    let cmd = format!("cas {KEY} 0 0 1 {cas}\r\nw\r\n");
    assert_eq!(c.round_trip(cmd.as_bytes()), b"STORED\r\n");
}
