//! The binary protocol in a cluster: a binary request sent to any node is
//! served by its key's owner (the entry node translates it into a meta
//! request on the memcached path and the meta reply back into a packet), and
//! a binary write is replicated, so it is read back through a survivor once
//! the owner is killed. Quiet opcodes answer nothing on success and a noop
//! still comes after every earlier reply. The cluster harness is
//! `common::cluster`.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::cluster::{Cluster, get, text};
use common::{Conn, READ_DEADLINE};
use proto::binary::{
    Arith, ArithMode, BinOp, BinRequest, NO_CREATE, Opcode, ResponseParse, Status, StoreMode,
    parse_response,
};
use proto::udp::UdpHeader;

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
    c.send(&with_noop(requests));
    let mut out = responses(&c.read_binary_through(Opcode::Noop as u8, MARK));
    let noop = out.pop().expect("the noop's response");
    assert_eq!((noop.opcode, noop.opaque), (Opcode::Noop as u8, MARK));
    out
}

/// `requests` then a noop, on the wire.
fn with_noop(requests: &[BinRequest<'_>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for r in requests {
        r.encode(&mut wire);
    }
    BinRequest::new(BinOp::Noop, false, MARK, 0).encode(&mut wire);
    wire
}

/// The response packets of `bytes`, which must be whole ones.
fn responses(bytes: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut rest = bytes;
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
    out
}

/// [`call`] over UDP: one datagram of `requests` and a noop to `to`, whose
/// reply must fit one datagram.
fn call_udp(to: SocketAddr, request_id: u16, requests: &[BinRequest<'_>]) -> Vec<Resp> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    let header = UdpHeader {
        request_id,
        sequence: 0,
        total: 1,
        reserved: 0,
    };
    let datagram = [&header.encode()[..], &with_noop(requests)].concat();
    socket.send_to(&datagram, to).unwrap();
    let mut buf = vec![0u8; 65536];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no reply datagram within {READ_DEADLINE:?}: {e}"));
    let (h, payload) = UdpHeader::decode(&buf[..n]).expect("a frame header");
    assert_eq!((h.request_id, h.sequence, h.total), (request_id, 0, 1));
    let mut out = responses(payload);
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

/// Binary over UDP in a cluster takes the same way as over TCP: the entry
/// node forwards each request of the datagram to its key's owner and answers
/// the datagram, in order, once every reply is in. Before, the entry node
/// served them from its own store (the set below landed on n0, not on n1).
#[test]
fn a_binary_datagram_is_served_by_its_keys_owners() {
    let cluster = Cluster::start_each(3, false, &|i, port| {
        let mut args = vec!["-p".to_string(), port.to_string()];
        if i == 0 {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            args.extend(["-U".into(), udp.local_addr().unwrap().port().to_string()]);
        }
        args
    });
    let udp = cluster.nodes[0]
        .server
        .as_ref()
        .unwrap()
        .udp
        .expect("n0 has UDP");
    let (on1, on2) = (cluster.key_on(1, "udp1"), cluster.key_on(2, "udp2"));
    let stored = call_udp(udp, 7, &[set(&on1, "hello", false, 1)]);
    assert_eq!(statuses(&stored), [(0, 1)], "{stored:?}");
    let cas = stored[0].cas;
    same_text(&mut cluster.connect(1), &on1, "hello");
    // A quiet miss on n2, a hit on n1, a quiet set on n2 and a hit of it:
    // answers in order, none for the quiet ones that succeeded.
    let got = call_udp(
        udp,
        8,
        &[
            getk(&on2, true, 2),
            getk(&on1, false, 3),
            set(&on2, "there", true, 4),
            getk(&on2, false, 5),
        ],
    );
    assert_eq!(statuses(&got), [(0, 3), (0, 5)], "{got:?}");
    assert_hit(&got[0], &on1, "hello", cas, "n1's key through n0 over UDP");
    assert_eq!(text(&got[1].value), "there");
    same_text(&mut cluster.connect(2), &on2, "there");
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
