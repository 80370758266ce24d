//! The binary protocol in a cluster: a binary request sent to any node is
//! served by its key's owner (the entry node translates it into a meta
//! request on the memcached path and the meta reply back into a packet), and
//! a binary write is replicated, so it is read back through a survivor once
//! the owner is killed. Quiet opcodes answer nothing on success and a noop
//! still comes after every earlier reply. The cluster harness is
//! `common::cluster`.

mod common;

use std::time::Duration;

use common::Conn;
use common::cluster::{Cluster, get, text};
use proto::binary::{
    Arith, ArithMode, BinOp, BinRequest, NO_CREATE, Opcode, ResponseParse, Status, StoreMode,
    parse_response,
};

const CONVERGE_WITHIN: Duration = Duration::from_secs(10);
const DETECT_WITHIN: Duration = Duration::from_secs(4);
const MARK: u32 = 0xfeed_f00d;
const FLAGS: u32 = 0xdead_beef;

/// One response packet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// Sends `requests` then a noop on `c`; returns every response before the
/// noop's.
fn call(c: &mut Conn, requests: &[BinRequest<'_>]) -> Vec<Resp> {
    let mut wire = Vec::new();
    for r in requests {
        r.encode(&mut wire);
    }
    BinRequest::new(BinOp::Noop, false, MARK, 0).encode(&mut wire);
    c.send(&wire);
    let bytes = c.read_binary_through(Opcode::Noop as u8, MARK);
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let ResponseParse::Complete { response, consumed } = parse_response(rest) else {
            panic!("not a binary response: {rest:?}");
        };
        out.push(Resp {
            opcode: response.opcode,
            status: response.status,
            opaque: response.opaque,
            cas: response.cas,
            extras: response.extras.to_vec(),
            key: response.key.to_vec(),
            value: response.value.to_vec(),
        });
        rest = &rest[consumed..];
    }
    let noop = out.pop().expect("the noop's response");
    assert_eq!((noop.opcode, noop.opaque), (Opcode::Noop as u8, MARK));
    out
}

fn set<'a>(key: &'a str, value: &'a str, quiet: bool, opaque: u32) -> BinRequest<'a> {
    let op = BinOp::Store {
        mode: StoreMode::Set,
        key: key.as_bytes(),
        flags: FLAGS,
        exptime: 0,
        value: value.as_bytes(),
    };
    BinRequest::new(op, quiet, opaque, 0)
}

fn getk(key: &str, quiet: bool, opaque: u32) -> BinRequest<'_> {
    let op = BinOp::Get {
        key: key.as_bytes(),
        with_key: true,
    };
    BinRequest::new(op, quiet, opaque, 0)
}

fn arith(mode: ArithMode, key: &str, delta: u64, exptime: u32, quiet: bool) -> BinRequest<'_> {
    let op = BinOp::Arith(Arith {
        mode,
        key: key.as_bytes(),
        delta,
        initial: 10,
        exptime,
    });
    BinRequest::new(op, quiet, 3, 0)
}

fn delete(key: &str, quiet: bool, cas: u64) -> BinRequest<'_> {
    BinRequest::new(
        BinOp::Delete {
            key: key.as_bytes(),
        },
        quiet,
        4,
        cas,
    )
}

/// (status, opaque) of each response.
fn statuses(resps: &[Resp]) -> Vec<(u16, u32)> {
    resps.iter().map(|r| (r.status, r.opaque)).collect()
}

/// A getk hit for `key`: flags, CAS, key and value.
fn assert_hit(r: &Resp, key: &str, value: &str, cas: u64, context: &str) {
    assert_eq!(r.status, 0, "{context}: {r:?}");
    assert_eq!(r.extras, FLAGS.to_be_bytes(), "{context}: flags");
    assert_eq!(r.key, key.as_bytes(), "{context}: key");
    assert_eq!(text(&r.value), value, "{context}: value");
    assert_eq!(r.cas, cas, "{context}: CAS");
}

#[test]
fn a_binary_request_is_served_by_its_keys_owner_through_any_node() {
    let cluster = Cluster::start(3, &[]);
    let key = cluster.key_on(1, "bin");
    let mut entry = cluster.connect(0);
    let stored = call(&mut entry, &[set(&key, "hello", false, 1)]);
    assert_eq!(statuses(&stored), [(0, 1)], "{stored:?}");
    let cas = stored[0].cas;
    assert_ne!(cas, 0);
    // It is on the owner: text there sees it.
    same_text(&mut cluster.connect(1), &key, "hello");
    for node in [1, 2, 0] {
        let got = call(&mut cluster.connect(node), &[getk(&key, false, 2)]);
        assert_eq!(got.len(), 1, "through n{node}: {got:?}");
        assert_hit(&got[0], &key, "hello", cas, &format!("through n{node}"));
    }
}

fn same_text(c: &mut Conn, key: &str, value: &str) {
    let want = format!("VALUE {key} {FLAGS} {}\r\n{value}\r\nEND\r\n", value.len());
    assert_eq!(get(c, key), want);
}

#[test]
fn quiet_binary_ops_answer_only_failures_and_hits_in_order_across_nodes() {
    let cluster = Cluster::start(3, &[]);
    let (a, b) = (cluster.key_on(1, "qa"), cluster.key_on(2, "qb"));
    let (missing, counter) = (cluster.key_on(2, "qm"), cluster.key_on(1, "qn"));
    let mut c = cluster.connect(0);
    let version = BinRequest::new(BinOp::Version, false, 9, 0);
    let got = call(
        &mut c,
        &[
            set(&a, "va", true, 10),
            set(&b, "vb", true, 11),
            getk(&missing, true, 12),
            getk(&a, true, 13),
            version,
            delete(&b, true, 0),
            getk(&b, true, 14),
            delete(&b, true, 0),
            getk(&b, false, 15),
        ],
    );
    let not_found = Status::NotFound.code();
    assert_eq!(
        statuses(&got),
        [(0, 13), (0, 9), (not_found, 4), (not_found, 15)],
        "{got:?}"
    );
    assert_eq!(text(&got[0].value), "va");
    assert_eq!(got[3].key, b.as_bytes(), "a getk miss carries the key");
    same_text(&mut cluster.connect(1), &a, "va");

    // A key of odd bytes too long for base64 in a meta key is refused as
    // invalid, and the stream stays in step.
    let odd = format!("x {}", "y".repeat(200));
    let refused = call(&mut c, &[getk(&odd, false, 16), getk(&a, false, 17)]);
    assert_eq!(
        statuses(&refused),
        [(Status::InvalidArguments.code(), 16), (0, 17)],
        "{refused:?}"
    );

    // Counters: created with the initial value, floored at 0, not created
    // with exptime 0xffffffff; the quiet one answers nothing.
    let counters = call(
        &mut c,
        &[
            arith(ArithMode::Increment, &missing, 1, NO_CREATE, false),
            arith(ArithMode::Increment, &counter, 5, 0, false),
            arith(ArithMode::Increment, &counter, 5, 0, false),
            arith(ArithMode::Decrement, &counter, 100, 0, false),
            arith(ArithMode::Increment, &counter, 7, 0, true),
        ],
    );
    let values: Vec<(u16, Vec<u8>)> = counters
        .iter()
        .map(|r| (r.status, r.value.clone()))
        .collect();
    assert_eq!(
        values,
        [
            (not_found, b"Not found".to_vec()),
            (0, 10u64.to_be_bytes().to_vec()),
            (0, 15u64.to_be_bytes().to_vec()),
            (0, 0u64.to_be_bytes().to_vec()),
        ],
        "{counters:?}"
    );
    let mut owner = cluster.connect(1);
    // As memcached, a shorter number is written in place, space-padded.
    let want = format!("VALUE {counter} 0 2\r\n7 \r\nEND\r\n");
    assert_eq!(get(&mut owner, &counter), want);

    // A delete with the wrong CAS is refused; with the right one it goes.
    let cas = call(&mut c, &[getk(&a, false, 1)])[0].cas;
    let refused = call(
        &mut c,
        &[delete(&a, false, cas + 1), delete(&a, false, cas)],
    );
    assert_eq!(
        statuses(&refused),
        [(Status::KeyExists.code(), 4), (0, 4)],
        "{refused:?}"
    );
    assert_eq!(get(&mut owner, &a), "END\r\n");
}

#[test]
fn a_binary_write_survives_its_owner_through_the_replica() {
    let mut cluster = Cluster::start_gossip(3, &["--replicas", "2", "--replication-ack", "all"]);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let key = cluster.key_on(1, "rb");
    let stored = call(&mut cluster.connect(0), &[set(&key, "kept", false, 1)]);
    assert_eq!(statuses(&stored), [(0, 1)], "{stored:?}");
    let cas = stored[0].cas;
    cluster.kill(1);
    for i in [0, 2] {
        cluster.until_states(i, &[("n1", "down")], DETECT_WITHIN);
    }
    for node in [0, 2] {
        let got = call(&mut cluster.connect(node), &[getk(&key, false, 2)]);
        assert_eq!(got.len(), 1, "through n{node}: {got:?}");
        assert_hit(&got[0], &key, "kept", cas, &format!("through n{node}"));
    }
}
