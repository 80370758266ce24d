//! memcached's -C ("disable use of CAS"), as memcached 1.6.18 does it: items
//! carry CAS 0 (`gets`, `mg … c`, binary headers), so `cas` and `ms … C`
//! never match, `ms` append ignores its C, `md`/`ma` match only C0, `E` is
//! ignored, a binary store's header CAS is not read, `stats settings` says
//! `cas_enabled no`, and `flush_all` cuts by whole seconds: an item stored in
//! the flush's own second goes with it (memcached's flush-all.t, last part).
//! Refused with replicas, which are ordered by CAS.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Server, show};
use proto::binary::{BinOp, BinRequest, StoreMode};

fn setting(c: &mut Conn, name: &str) -> String {
    c.stats("settings")
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in stats settings"))
}

#[test]
fn without_cas_items_show_cas_0_and_no_compare_matches() {
    // Two shards: the keys below land on both, some through the mesh.
    let server = Server::start(&["-t", "2", "-C"]);
    let mut c = server.connect();
    assert_eq!(setting(&mut c, "cas_enabled"), "no");
    for key in ["a", "b", "c", "d"] {
        let k = key.as_bytes();
        let line = |s: &str| s.replace("KEY", key).into_bytes();
        let rows: Vec<(Vec<u8>, String)> = vec![
            (line("set KEY 0 0 3\r\nnew\r\n"), "STORED\r\n".into()),
            (
                line("gets KEY\r\n"),
                format!("VALUE {key} 0 3 0\r\nnew\r\nEND\r\n"),
            ),
            (line("mg KEY c v\r\n"), "VA 3 c0\r\nnew\r\n".into()),
            // The item's CAS reads back 0, which is "none": no value matches.
            (line("cas KEY 0 0 1 0\r\nx\r\n"), "EXISTS\r\n".into()),
            (line("cas KEY 0 0 1 1\r\nx\r\n"), "EXISTS\r\n".into()),
            (
                line("cas KEY-gone 0 0 1 1\r\nx\r\n"),
                "NOT_FOUND\r\n".into(),
            ),
            (line("ms KEY 1 C0\r\ny\r\n"), "EX\r\n".into()),
            // Append compares only a CAS the new item kept: none here.
            (line("ms KEY 1 MA C7 c\r\nz\r\n"), "HD c0\r\n".into()),
            (
                line("get KEY\r\n"),
                format!("VALUE {key} 0 4\r\nnewz\r\nEND\r\n"),
            ),
            // E has nowhere to go.
            (line("ms KEY 1 E99 c\r\n5\r\n"), "HD c0\r\n".into()),
            (line("ma KEY C3\r\n"), "EX\r\n".into()),
            (line("ma KEY C0 v c\r\n"), "VA 1 c0\r\n6\r\n".into()),
            (line("incr KEY 10\r\n"), "16\r\n".into()),
            (line("md KEY C3\r\n"), "EX\r\n".into()),
            (line("md KEY C0\r\n"), "HD\r\n".into()),
        ];
        for (sent, want) in &rows {
            let got = c.round_trip(sent);
            assert_eq!(show(&got), *want, "key {}: sent {}", show(k), show(sent));
        }
    }
    // The default keeps CAS: the same first rows differ.
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    assert_eq!(setting(&mut c, "cas_enabled"), "yes");
    c.set("a", b"new");
    assert_ne!(show(&c.round_trip(b"mg a c\r\n")), "HD c0\r\n");
}

#[test]
fn without_cas_binary_headers_carry_0_and_a_store_ignores_the_cas_it_is_sent() {
    let server = Server::start(&["-t", "2", "-C"]);
    let mut c = server.connect();
    let set = |key: &'static [u8], value: &'static [u8], cas| {
        BinRequest::new(
            BinOp::Store {
                mode: StoreMode::Set,
                key,
                flags: 0,
                exptime: 0,
                value,
            },
            false,
            1,
            cas,
        )
    };
    for key in [&b"a"[..], b"b", b"c"] {
        assert_eq!(c.binary(set(key, b"v1", 0)), (0, 0), "set");
        // memcached reads the header's CAS into an item that cannot keep it,
        // so the set is not a compare-and-swap: it stores.
        assert_eq!(c.binary(set(key, b"v2", 12345)), (0, 0), "set with cas");
        let get = BinRequest::new(
            BinOp::Get {
                key,
                with_key: false,
            },
            false,
            2,
            0,
        );
        assert_eq!(c.binary(get), (0, 0), "get");
        // A delete compares with the item's 0: a CAS given never matches.
        let del = |cas| BinRequest::new(BinOp::Delete { key }, false, 3, cas);
        assert_eq!(c.binary(del(7)), (0x0002, 0), "delete with cas: key exists");
        assert_eq!(c.binary(del(0)), (0, 0), "delete");
    }
}

#[test]
fn without_cas_flush_all_also_takes_items_stored_in_its_second() {
    // One shard: the flush, the set and the get of one write run in one
    // loop turn, so on one second of the store's clock.
    let round = b"flush_all 0\r\nset foo 0 0 3\r\nnew\r\nget foo\r\n";
    let server = Server::start(&["-t", "1", "-C"]);
    let mut c = server.connect();
    for _ in 0..5 {
        assert_eq!(show(&c.round_trip(round)), "OK\r\nSTORED\r\nEND\r\n");
    }
    // Only that second: once the store's clock has moved on (polled: the
    // wait is the feature, a second boundary), a set stays.
    let started = Instant::now();
    c.round_trip(b"flush_all 0\r\n");
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the set never stayed"
        );
        c.set("foo", b"new");
        if c.get("foo").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // With CAS the cliff is exact: the same write keeps the item.
    let server = Server::start(&["-t", "1"]);
    let mut c = server.connect();
    for _ in 0..5 {
        assert_eq!(
            show(&c.round_trip(round)),
            "OK\r\nSTORED\r\nVALUE foo 0 3\r\nnew\r\nEND\r\n"
        );
    }
}

#[test]
fn disable_cas_with_replicas_is_refused_at_start_up() {
    let (code, _, err) = common::run_to_exit(&[
        "-C",
        "-p",
        "0",
        "--cluster-node",
        "a",
        "--cluster-peers",
        "a=127.0.0.1:1,b=127.0.0.1:2",
        "--replicas",
        "2",
    ]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains(
            "invalid setting server.disable_cas: -C cannot be used with cluster.replicas = 2"
        ),
        "{err}"
    );
}
