//! The binary protocol, differentially: the same request pipelines sent to
//! memcached 1.6.18 and to a 2-shard corecache (so keys of both shards, and
//! replies that cross the mesh), the responses compared field by field. CAS
//! values differ between servers by nature and are compared as "zero or
//! not"; everything else (opcode, status, opaque, extras, key, value, and
//! which responses are sent at all) must be memcached's.

mod common;

use common::{Conn, Memcached, Server};
use proto::binary::{
    Arith, ArithMode, BinOp, BinRequest, ConcatMode, NO_CREATE, Opcode, ResponseParse, StoreMode,
    parse_response,
};

/// One response, with its CAS reduced to whether it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    opcode: u8,
    status: u16,
    opaque: u32,
    has_cas: bool,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// A connection that sends pipelines of binary requests, each ended by a noop.
struct Bin {
    conn: Conn,
    /// The real CAS of the last response that carried one.
    last_cas: u64,
}

const MARK: u32 = 0xfeed_f00d;

impl Bin {
    fn new(addr: std::net::SocketAddr) -> Bin {
        Bin {
            conn: Conn::connect(addr),
            last_cas: 0,
        }
    }

    /// Sends `requests` then a noop; returns every response before the noop's.
    fn call(&mut self, requests: &[BinRequest<'_>]) -> Vec<Resp> {
        let mut wire = Vec::new();
        for r in requests {
            r.encode(&mut wire);
        }
        BinRequest::new(BinOp::Noop, false, MARK, 0).encode(&mut wire);
        self.conn.send(&wire);
        let bytes = self.conn.read_binary_through(Opcode::Noop as u8, MARK);
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let ResponseParse::Complete { response, consumed } = parse_response(rest) else {
                panic!("not a binary response: {rest:?}");
            };
            if response.cas != 0 {
                self.last_cas = response.cas;
            }
            out.push(Resp {
                opcode: response.opcode,
                status: response.status,
                opaque: response.opaque,
                has_cas: response.cas != 0,
                extras: response.extras.to_vec(),
                key: response.key.to_vec(),
                value: response.value.to_vec(),
            });
            rest = &rest[consumed..];
        }
        let noop = out.pop().expect("the noop's response");
        assert_eq!((noop.opcode, noop.status), (Opcode::Noop as u8, 0));
        out
    }
}

fn get(key: &[u8], with_key: bool, quiet: bool, opaque: u32) -> BinRequest<'_> {
    BinRequest::new(BinOp::Get { key, with_key }, quiet, opaque, 0)
}

fn set<'a>(
    mode: StoreMode,
    key: &'a [u8],
    value: &'a [u8],
    quiet: bool,
    cas: u64,
) -> BinRequest<'a> {
    let op = BinOp::Store {
        mode,
        key,
        flags: 0xdead_beef,
        exptime: 0,
        value,
    };
    BinRequest::new(op, quiet, 1, cas)
}

fn arith(mode: ArithMode, key: &[u8], delta: u64, initial: u64, exptime: u32) -> BinRequest<'_> {
    let op = BinOp::Arith(Arith {
        mode,
        key,
        delta,
        initial,
        exptime,
    });
    BinRequest::new(op, false, 2, 0)
}

/// Runs `script` against memcached (when installed) and corecache and
/// compares what each step answered.
fn differential(test: &str, script: impl Fn(&mut Bin) -> Vec<Vec<Resp>>) {
    let server = Server::start(&["-t", "2"]);
    let ours = script(&mut Bin::new(server.addr));
    let Some(mc) = Memcached::start(test) else {
        return;
    };
    let theirs = script(&mut Bin::new(mc.addr));
    assert_eq!(ours.len(), theirs.len());
    for (step, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            o, t,
            "step {step}: corecache (left) and memcached (right) differ"
        );
    }
}

/// Keys over both shards of a 2-shard server.
fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("bk:{i}").into_bytes()).collect()
}

#[test]
fn quiet_gets_in_a_pipeline_answer_hits_only_in_order() {
    let ks = keys(40);
    differential("binary_quiet_gets", |c| {
        let sets: Vec<_> = ks
            .iter()
            .step_by(2)
            .map(|k| set(StoreMode::Set, k, k, true, 0))
            .collect();
        let mut steps = vec![c.call(&sets)];
        let gets: Vec<_> = ks
            .iter()
            .enumerate()
            .map(|(i, k)| get(k, i % 3 == 0, true, i as u32))
            .collect();
        steps.push(c.call(&gets));
        let loud: Vec<_> = ks
            .iter()
            .enumerate()
            .map(|(i, k)| get(k, i % 2 == 0, false, i as u32))
            .collect();
        steps.push(c.call(&loud));
        steps
    });
}

#[test]
fn stores_refuse_as_memcached_does() {
    differential("binary_stores", |c| {
        let mut steps = vec![c.call(&[
            set(StoreMode::Add, b"s:a", b"one", false, 0),
            set(StoreMode::Add, b"s:a", b"two", false, 0),
            set(StoreMode::Replace, b"s:missing", b"x", false, 0),
            set(StoreMode::Replace, b"s:a", b"three", false, 0),
            BinRequest::new(
                BinOp::Concat {
                    mode: ConcatMode::Append,
                    key: b"s:missing",
                    value: b"x",
                },
                false,
                3,
                0,
            ),
            BinRequest::new(
                BinOp::Concat {
                    mode: ConcatMode::Prepend,
                    key: b"s:a",
                    value: b"<",
                },
                false,
                4,
                0,
            ),
            get(b"s:a", true, false, 5),
            set(StoreMode::Set, b"s:missing", b"x", false, 12345),
        ])];
        let cas = c.last_cas;
        steps.push(c.call(&[
            set(StoreMode::Set, b"s:a", b"stale", false, cas.wrapping_add(1)),
            set(StoreMode::Set, b"s:a", b"fresh", false, cas),
            set(StoreMode::Set, b"s:a", b"replay", false, cas),
            get(b"s:a", false, false, 6),
        ]));
        let cas = c.last_cas;
        steps.push(c.call(&[
            BinRequest::new(BinOp::Delete { key: b"s:a" }, false, 7, cas.wrapping_add(1)),
            BinRequest::new(BinOp::Delete { key: b"s:a" }, false, 8, cas),
            BinRequest::new(BinOp::Delete { key: b"s:a" }, false, 9, 0),
            BinRequest::new(BinOp::Delete { key: b"s:a" }, true, 10, 0),
        ]));
        steps
    });
}

#[test]
fn counters_create_floor_and_refuse_text() {
    differential("binary_counters", |c| {
        vec![c.call(&[
            arith(ArithMode::Increment, b"n:a", 5, 100, 0),
            arith(ArithMode::Increment, b"n:a", 5, 100, 0),
            arith(ArithMode::Decrement, b"n:a", 1000, 0, 0),
            arith(ArithMode::Increment, b"n:none", 1, 1, NO_CREATE),
            set(StoreMode::Set, b"n:text", b"hello", false, 0),
            arith(ArithMode::Increment, b"n:text", 1, 0, 0),
            set(StoreMode::Set, b"n:max", b"18446744073709551615", false, 0),
            arith(ArithMode::Increment, b"n:max", 2, 0, 0),
            get(b"n:a", false, false, 11),
        ])]
    });
}

#[test]
fn touch_and_gat_answer_flags_and_value_as_memcached() {
    let touch = |key, opaque| BinRequest::new(BinOp::Touch { key, exptime: 100 }, false, opaque, 0);
    let gat = |key, with_key, quiet, opaque| {
        let op = BinOp::Gat {
            key,
            exptime: 100,
            with_key,
        };
        BinRequest::new(op, quiet, opaque, 0)
    };
    differential("binary_touch", |c| {
        vec![c.call(&[
            set(StoreMode::Set, b"t:a", b"value", false, 0),
            touch(b"t:a", 1),
            touch(b"t:none", 2),
            gat(b"t:a", true, false, 3),
            gat(b"t:none", true, false, 4),
            gat(b"t:none", false, true, 5),
        ])]
    });
}

#[test]
fn too_large_unknown_opcodes_and_flush() {
    let big = vec![b'x'; (1 << 20) + 1];
    differential("binary_errors", |c| {
        let mut steps = vec![c.call(&[
            set(StoreMode::Set, b"e:big", b"small", false, 0),
            set(StoreMode::Set, b"e:big", &big, false, 0),
            get(b"e:big", false, false, 1),
            BinRequest::new(
                BinOp::Stat {
                    key: Some(b"nonsense"),
                },
                false,
                2,
                0,
            ),
        ])];
        // An opcode memcached does not know, with no body: answered, then on.
        let mut unknown = vec![0x80, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        unknown.extend_from_slice(&[0; 8]);
        c.conn.send(&unknown);
        steps.push(c.call(&[]));
        steps.push(c.call(&[
            set(StoreMode::Set, b"e:f", b"v", false, 0),
            BinRequest::new(BinOp::Flush { delay: None }, false, 4, 0),
            get(b"e:f", false, false, 5),
            BinRequest::new(BinOp::Flush { delay: Some(0) }, true, 6, 0),
        ]));
        steps
    });
}

#[test]
fn stats_reset_and_detail_end_with_one_empty_stat() {
    differential("binary_stats", |c| {
        vec![c.call(&[
            BinRequest::new(
                BinOp::Stat {
                    key: Some(b"reset"),
                },
                false,
                1,
                0,
            ),
            BinRequest::new(
                BinOp::Stat {
                    key: Some(b"detail on"),
                },
                false,
                2,
                0,
            ),
            BinRequest::new(
                BinOp::Stat {
                    key: Some(b"detail off"),
                },
                false,
                3,
                0,
            ),
        ])]
    });
    // The general stats carry memcached's names; values differ.
    let server = Server::start(&["-t", "2"]);
    let mut c = Bin::new(server.addr);
    let stats = c.call(&[BinRequest::new(BinOp::Stat { key: None }, false, 7, 0)]);
    let names: Vec<&[u8]> = stats.iter().map(|r| &r.key[..]).collect();
    for want in [
        &b"pid"[..],
        b"uptime",
        b"curr_items",
        b"get_hits",
        b"cmd_get",
    ] {
        assert!(names.contains(&want), "{:?}", String::from_utf8_lossy(want));
    }
    assert_eq!(
        stats.last().map(|r| r.key.len()),
        Some(0),
        "ends with an empty stat"
    );
}

/// memcached 1.6.18 answers verbosity (0x1b) "Unknown command" and then
/// skips its 4 bytes of extras a second time, eating the start of the next
/// request; corecache answers the same and stays in step.
#[test]
fn verbosity_is_unknown_and_the_stream_stays_in_step() {
    let server = Server::start(&["-t", "2"]);
    let mut c = Bin::new(server.addr);
    let replies = c.call(&[
        BinRequest::new(BinOp::Verbosity { level: 1 }, false, 3, 0),
        get(b"v:none", false, false, 4),
    ]);
    let got: Vec<(u8, u16, u32)> = replies
        .iter()
        .map(|r| (r.opcode, r.status, r.opaque))
        .collect();
    assert_eq!(got, [(0x1b, 0x81, 3), (0x00, 0x01, 4)]);
}

#[test]
fn quit_closes_and_a_bad_magic_hangs_up() {
    let server = Server::start(&["-t", "2"]);
    let mut c = Conn::connect(server.addr);
    let mut wire = Vec::new();
    BinRequest::new(BinOp::Quit, true, 1, 0).encode(&mut wire);
    c.send(&wire);
    assert_eq!(c.read_to_eof(), b"");
    // -B binary: a text command is a bad magic byte.
    let binary_only = Server::start(&["-B", "binary"]);
    let mut c = Conn::connect(binary_only.addr);
    c.send(b"get foo\r\n");
    assert_eq!(c.read_to_eof(), b"");
    // The default reads text on a connection that starts with text.
    let mut c = Conn::connect(server.addr);
    c.send(b"version\r\n");
    assert!(c.read_line().starts_with(b"VERSION 1.6."));
}
