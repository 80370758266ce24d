//! Parser and encoder micro-benchmarks (criterion). Run pinned to one core:
//! `taskset -c 1 cargo bench -p proto --bench codec`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proto::meta::{MgItem, MgOutcome};
use proto::reply::{encode_mg, encode_value};
use proto::{Limits, Parse, Request, parse};
use std::hint::black_box;

const KEY32: &[u8] = b"user:0000000000000000000000042:x"; // 32 bytes

fn set_100() -> Vec<u8> {
    let mut v = b"set ".to_vec();
    v.extend_from_slice(KEY32);
    v.extend_from_slice(b" 0 0 100\r\n");
    v.extend(std::iter::repeat_n(b'v', 100));
    v.extend_from_slice(b"\r\n");
    v
}

/// 100 requests: 70 get, 20 set (100-byte values), 5 mg, 3 incr, 2 delete, in a
/// fixed interleaving (deterministic, no RNG needed).
fn pipeline_100() -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..100u32 {
        let key = format!("key:{i:028}");
        match i % 20 {
            0..=13 => buf.extend_from_slice(format!("get {key}\r\n").as_bytes()),
            14..=17 => {
                buf.extend_from_slice(format!("set {key} 0 0 100\r\n").as_bytes());
                buf.extend(std::iter::repeat_n(b'v', 100));
                buf.extend_from_slice(b"\r\n");
            }
            18 => buf.extend_from_slice(format!("mg {key} v k t\r\n").as_bytes()),
            _ if i % 40 == 19 => buf.extend_from_slice(format!("incr {key} 1\r\n").as_bytes()),
            _ => buf.extend_from_slice(format!("delete {key}\r\n").as_bytes()),
        }
    }
    buf
}

fn parse_benches(c: &mut Criterion) {
    let limits = Limits::default();
    let mut get = b"get ".to_vec();
    get.extend_from_slice(KEY32);
    get.extend_from_slice(b"\r\n");
    let set = set_100();
    let mut mg = b"mg ".to_vec();
    mg.extend_from_slice(KEY32);
    mg.extend_from_slice(b" v k t f c O123\r\n");

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_32b_key", |b| {
        b.iter(|| match parse(black_box(&get), &limits) {
            Parse::Complete {
                request: Request::Get(g),
                consumed,
            } => (g.keys.len(), consumed),
            _ => unreachable!(),
        })
    });
    g.bench_function("set_100b_value", |b| {
        b.iter(|| match parse(black_box(&set), &limits) {
            Parse::Complete {
                request: Request::Store(s),
                consumed,
            } => (s.data.len(), consumed),
            _ => unreachable!(),
        })
    });
    g.bench_function("mg_6_flags", |b| {
        b.iter(|| match parse(black_box(&mg), &limits) {
            Parse::Complete { consumed, .. } => consumed,
            _ => unreachable!(),
        })
    });
    g.finish();

    let batch = pipeline_100();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_mixed", |b| {
        b.iter(|| {
            let mut buf = black_box(&batch[..]);
            let mut n = 0;
            while let Parse::Complete { consumed, .. } = parse(buf, &limits) {
                buf = &buf[consumed..];
                n += 1;
            }
            assert_eq!(n, 100);
            n
        })
    });
    g.finish();

    // The prefetch hint walks the same batch without parsing it.
    let mut g = c.benchmark_group("peek");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_mixed", |b| {
        b.iter(|| {
            let mut keys = 0;
            let covered = proto::peek_keys(black_box(&batch[..]), usize::MAX, |_| keys += 1);
            assert_eq!((keys, covered), (100, batch.len()));
            keys
        })
    });
    g.finish();
}

fn encode_benches(c: &mut Criterion) {
    let value = vec![b'v'; 100];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("value_100b", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(4096),
            |out| {
                out.clear();
                encode_value(out, black_box(KEY32), 0, black_box(&value), Some(12345));
            },
            BatchSize::SmallInput,
        )
    });
    let limits = Limits::default();
    let line = b"mg user:0000000000000000000000042:x v k t f c O123\r\n";
    let Parse::Complete {
        request: Request::MetaGet(req),
        ..
    } = parse(line, &limits)
    else {
        unreachable!()
    };
    let hit = MgOutcome::Hit(MgItem {
        key: KEY32,
        value: &value,
        cas: 987654321,
        ttl: 3600,
        client_flags: 7,
        ..MgItem::default()
    });
    g.bench_function("mg_hit_100b", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(4096),
            |out| {
                out.clear();
                encode_mg(out, black_box(&req), black_box(&hit));
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("get_request", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(4096),
            |out| {
                out.clear();
                proto::client::get(out, [black_box(KEY32)]);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The binary protocol: parse a get and a set of the same shapes as the text cases.
fn binary_benches(c: &mut Criterion) {
    use proto::binary::{self, BinOp, BinParse, BinRequest, StoreMode};
    let limits = Limits::default();
    let value = vec![b'v'; 100];
    let mut get = Vec::new();
    let op = BinOp::Get {
        key: KEY32,
        with_key: false,
    };
    BinRequest::new(op, false, 1, 0).encode(&mut get);
    let mut set = Vec::new();
    let op = BinOp::Store {
        mode: StoreMode::Set,
        key: KEY32,
        flags: 0,
        exptime: 0,
        value: &value,
    };
    BinRequest::new(op, false, 2, 0).encode(&mut set);
    let mut g = c.benchmark_group("binary_parse");
    g.throughput(Throughput::Elements(1));
    for (name, wire) in [("get_32b_key", &get), ("set_100b_value", &set)] {
        g.bench_function(name, |b| {
            b.iter(|| match binary::parse(black_box(wire), &limits) {
                BinParse::Complete { request, consumed } => (request.opaque, consumed),
                _ => unreachable!(),
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse_benches, encode_benches);
criterion_group!(binary, binary_benches);
criterion_main!(benches, binary);
