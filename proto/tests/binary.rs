//! The binary protocol codec: tables of (bytes in, parsed request) and (bytes
//! in, refusal and reply bytes) for every opcode and error path, each row also
//! fed split at every byte; pipelines; property tests; and a differential check
//! against a real memcached 1.6.18 (`scripts/install-test-deps.sh`), skipped
//! with a message when it is absent.

use proptest::prelude::*;
use proto::Limits;
use proto::binary::admin::{encode_stat, encode_stats_end, encode_version};
use proto::binary::arith::encode_counter;
use proto::binary::get::{encode_hit, encode_miss, encode_touched};
use proto::binary::response::{encode_ok, encode_status};
use proto::binary::{
    Arith, ArithMode, BinError, BinInvalid, BinOp, BinParse, BinRequest, ConcatMode, HEADER_LEN,
    NO_CREATE, Opcode, ReplyTo, ResponseParse, Status, StoreMode, parse, parse_response,
};

/// A request packet built by hand, independent of the codec's encoder.
fn pkt(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut v = vec![0x80, opcode];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(body as u32).to_be_bytes());
    v.extend_from_slice(&opaque.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

/// A header with lengths of our choosing (they need not agree with the bytes).
fn hdr(opcode: u8, keylen: u16, extlen: u8, bodylen: u32) -> Vec<u8> {
    let mut v = vec![0x80, opcode];
    v.extend_from_slice(&keylen.to_be_bytes());
    v.extend_from_slice(&[extlen, 0, 0, 0]);
    v.extend_from_slice(&bodylen.to_be_bytes());
    v.extend_from_slice(&9u32.to_be_bytes());
    v.extend_from_slice(&[0; 8]);
    v
}

fn req(opcode: Opcode, opaque: u32, cas: u64, op: BinOp<'_>) -> BinRequest<'_> {
    BinRequest {
        opcode,
        opaque,
        cas,
        quiet: opcode.is_quiet(),
        op,
    }
}

/// Every prefix of `input` shorter than `decided` is Incomplete, asking for no
/// more than the rest and at least one byte.
fn check_prefixes(input: &[u8], decided: usize, limits: &Limits) {
    for cut in 0..decided {
        match parse(&input[..cut], limits) {
            BinParse::Incomplete { more: Some(m) } => {
                assert!(
                    m > 0 && cut + m <= decided,
                    "cut {cut}: more {m} of {decided}"
                )
            }
            other => panic!("prefix {cut} of {input:?}: {other:?}"),
        }
    }
}

fn check_ok(input: &[u8], want: BinRequest<'_>, limits: &Limits) {
    match parse(input, limits) {
        BinParse::Complete { request, consumed } => {
            assert_eq!(request, want, "{input:?}");
            assert_eq!(consumed, input.len());
        }
        other => panic!("{input:?}: {other:?}"),
    }
    // The canonical encoding is what was sent.
    let mut out = Vec::new();
    want.encode(&mut out);
    assert_eq!(out, input, "encoding of {want:?}");
    check_prefixes(input, input.len(), limits);
}

#[test]
fn every_opcode_parses() {
    let l = Limits::default();
    let exp = 300u32.to_be_bytes();
    let set_x = [&7u32.to_be_bytes()[..], &exp].concat();
    let incr_x = [&5u64.to_be_bytes()[..], &10u64.to_be_bytes(), &exp].concat();
    let no_create = [
        &1u64.to_be_bytes()[..],
        &0u64.to_be_bytes(),
        &NO_CREATE.to_be_bytes(),
    ]
    .concat();
    let get = |with_key| BinOp::Get {
        key: b"k",
        with_key,
    };
    let gat = |with_key| BinOp::Gat {
        key: b"k",
        exptime: 300,
        with_key,
    };
    let store = |mode| BinOp::Store {
        mode,
        key: b"k",
        flags: 7,
        exptime: 300,
        value: b"val",
    };
    let concat = |mode| BinOp::Concat {
        mode,
        key: b"k",
        value: b"val",
    };
    let arith = |mode| {
        BinOp::Arith(Arith {
            mode,
            key: b"k",
            delta: 5,
            initial: 10,
            exptime: 300,
        })
    };
    use Opcode::*;
    #[rustfmt::skip]
    let rows: Vec<(Vec<u8>, BinRequest<'_>)> = vec![
        (pkt(0x00, &[], b"k", &[], 1, 0), req(Get, 1, 0, get(false))),
        (pkt(0x09, &[], b"k", &[], 2, 0), req(GetQ, 2, 0, get(false))),
        (pkt(0x0c, &[], b"k", &[], 3, 0), req(GetK, 3, 0, get(true))),
        (pkt(0x0d, &[], b"k", &[], 4, 0), req(GetKQ, 4, 0, get(true))),
        (pkt(0x1d, &exp, b"k", &[], 5, 0), req(Gat, 5, 0, gat(false))),
        (pkt(0x1e, &exp, b"k", &[], 5, 0), req(GatQ, 5, 0, gat(false))),
        (pkt(0x23, &exp, b"k", &[], 5, 0), req(GatK, 5, 0, gat(true))),
        (pkt(0x24, &exp, b"k", &[], 5, 0), req(GatKQ, 5, 0, gat(true))),
        (pkt(0x1c, &exp, b"k", &[], 6, 0), req(Touch, 6, 0, BinOp::Touch { key: b"k", exptime: 300 })),
        (pkt(0x01, &set_x, b"k", b"val", 7, 0), req(Set, 7, 0, store(StoreMode::Set))),
        (pkt(0x11, &set_x, b"k", b"val", 7, 55), req(SetQ, 7, 55, store(StoreMode::Set))),
        (pkt(0x02, &set_x, b"k", b"val", 7, 0), req(Add, 7, 0, store(StoreMode::Add))),
        (pkt(0x12, &set_x, b"k", b"val", 7, 0), req(AddQ, 7, 0, store(StoreMode::Add))),
        (pkt(0x03, &set_x, b"k", b"val", 7, 0), req(Replace, 7, 0, store(StoreMode::Replace))),
        (pkt(0x13, &set_x, b"k", b"val", 7, 0), req(ReplaceQ, 7, 0, store(StoreMode::Replace))),
        // An empty value is a value.
        (pkt(0x01, &set_x, b"k", &[], 7, 0), req(Set, 7, 0, BinOp::Store { mode: StoreMode::Set, key: b"k", flags: 7, exptime: 300, value: b"" })),
        (pkt(0x0e, &[], b"k", b"val", 8, 0), req(Append, 8, 0, concat(ConcatMode::Append))),
        (pkt(0x19, &[], b"k", b"val", 8, 3), req(AppendQ, 8, 3, concat(ConcatMode::Append))),
        (pkt(0x0f, &[], b"k", b"val", 8, 0), req(Prepend, 8, 0, concat(ConcatMode::Prepend))),
        (pkt(0x1a, &[], b"k", b"val", 8, 0), req(PrependQ, 8, 0, concat(ConcatMode::Prepend))),
        (pkt(0x04, &[], b"k", &[], 9, 12), req(Delete, 9, 12, BinOp::Delete { key: b"k" })),
        (pkt(0x14, &[], b"k", &[], 9, 0), req(DeleteQ, 9, 0, BinOp::Delete { key: b"k" })),
        (pkt(0x05, &incr_x, b"k", &[], 10, 0), req(Increment, 10, 0, arith(ArithMode::Increment))),
        (pkt(0x15, &incr_x, b"k", &[], 10, 0), req(IncrementQ, 10, 0, arith(ArithMode::Increment))),
        (pkt(0x06, &incr_x, b"k", &[], 10, 0), req(Decrement, 10, 0, arith(ArithMode::Decrement))),
        (pkt(0x16, &incr_x, b"k", &[], 10, 0), req(DecrementQ, 10, 0, arith(ArithMode::Decrement))),
        (pkt(0x05, &no_create, b"k", &[], 10, 0), req(Increment, 10, 0, BinOp::Arith(Arith { mode: ArithMode::Increment, key: b"k", delta: 1, initial: 0, exptime: NO_CREATE }))),
        (pkt(0x07, &[], &[], &[], 11, 0), req(Quit, 11, 0, BinOp::Quit)),
        (pkt(0x17, &[], &[], &[], 11, 0), req(QuitQ, 11, 0, BinOp::Quit)),
        (pkt(0x08, &[], &[], &[], 12, 0), req(Flush, 12, 0, BinOp::Flush { delay: None })),
        (pkt(0x08, &exp, &[], &[], 12, 0), req(Flush, 12, 0, BinOp::Flush { delay: Some(300) })),
        (pkt(0x18, &[0; 4], &[], &[], 12, 0), req(FlushQ, 12, 0, BinOp::Flush { delay: Some(0) })),
        (pkt(0x0a, &[], &[], &[], 13, 0), req(Noop, 13, 0, BinOp::Noop)),
        (pkt(0x0b, &[], &[], &[], 14, 0), req(Version, 14, 0, BinOp::Version)),
        (pkt(0x10, &[], &[], &[], 15, 0), req(Stat, 15, 0, BinOp::Stat { key: None })),
        (pkt(0x10, &[], b"settings", &[], 15, 0), req(Stat, 15, 0, BinOp::Stat { key: Some(b"settings") })),
        (pkt(0x1b, &[0, 0, 0, 2], &[], &[], 16, 0), req(Verbosity, 16, 0, BinOp::Verbosity { level: 2 })),
        (pkt(0x20, &[], &[], &[], 17, 0), req(SaslListMechs, 17, 0, BinOp::SaslListMechs)),
        (pkt(0x21, &[], b"PLAIN", b"\0u\0p", 18, 0), req(SaslAuth, 18, 0, BinOp::SaslAuth { mech: b"PLAIN", data: b"\0u\0p" })),
        (pkt(0x22, &[], b"PLAIN", b"", 19, 0), req(SaslStep, 19, 0, BinOp::SaslStep { mech: b"PLAIN", data: b"" })),
        // Binary keys are bytes: spaces, newlines and NULs included (memcached stores them).
        (pkt(0x00, &[], b"a b\r\n\0", &[], 1, 0), req(Get, 1, 0, BinOp::Get { key: b"a b\r\n\0", with_key: false })),
        (pkt(0x00, &[], &[b'x'; 250], &[], 1, 0), req(Get, 1, 0, BinOp::Get { key: &[b'x'; 250], with_key: false })),
    ];
    let mut seen: Vec<Opcode> = rows.iter().map(|(_, r)| r.opcode).collect();
    seen.sort_by_key(|o| *o as u8);
    seen.dedup();
    assert_eq!(seen, Opcode::ALL, "a row for every opcode");
    for (input, want) in &rows {
        check_ok(input, *want, &l);
        // The request's own view of itself.
        assert_eq!(
            BinRequest::new(want.op, want.quiet, want.opaque, want.cas),
            *want
        );
    }
}

/// What a refusal row expects: status (None: no reply), consumed, swallow, close.
type Refusal = (Option<Status>, usize, usize, bool);

fn check_refused(input: &[u8], (status, consumed, swallow, close): Refusal, limits: &Limits) {
    let got = parse(input, limits);
    let BinParse::Invalid(inv) = got else {
        panic!("{input:?}: {got:?}")
    };
    let reply = inv.reply.map(|e| {
        assert_eq!(e.to.opcode, input[1], "reply carries the opcode as sent");
        assert_eq!(
            e.to.opaque,
            u32::from_be_bytes(input[12..16].try_into().unwrap())
        );
        let mut out = Vec::new();
        e.encode(&mut out);
        // Status, message body, CAS 0.
        assert_eq!(&out[6..8], &e.status.code().to_be_bytes());
        assert_eq!(&out[HEADER_LEN..], e.status.message().as_bytes());
        assert_eq!(&out[16..24], &[0; 8]);
        e.status
    });
    assert_eq!(
        (reply, inv.consumed, inv.swallow, inv.close),
        (status, consumed, swallow, close),
        "{input:?}"
    );
    assert!(inv.consumed >= 1 && inv.consumed <= input.len());
    if input[0] == 0x80 && input.len() >= HEADER_LEN {
        check_prefixes(input, inv.consumed.max(HEADER_LEN), limits);
    }
}

#[test]
fn refusals() {
    let l = Limits::default();
    let einval = (Some(Status::InvalidArguments), HEADER_LEN, 0, true);
    let set_x = [0u8; 8];
    let incr_x = [0u8; 20];
    let rows: Vec<(Vec<u8>, Refusal)> = vec![
        // Bad magic: memcached closes without a word.
        (b"get k\r\n".to_vec(), (None, 1, 0, true)),
        ([&[0x81u8][..], &[0; 23]].concat(), (None, 1, 0, true)),
        // Extras and key longer than the body: unknown command, then close.
        (
            hdr(0x00, 5, 0, 4),
            (Some(Status::UnknownCommand), HEADER_LEN, 0, true),
        ),
        (
            hdr(0x01, 1, 8, 8),
            (Some(Status::UnknownCommand), HEADER_LEN, 0, true),
        ),
        // A key over 250 bytes, whatever the opcode (unknown ones too).
        (pkt(0x00, &[], &[b'x'; 251], &[], 1, 0), einval),
        (hdr(0x50, 300, 0, 300), einval),
        // Lengths each opcode refuses.
        (pkt(0x00, &[0; 4], b"k", &[], 1, 0), einval),
        (pkt(0x00, &[], &[], &[], 1, 0), einval),
        (pkt(0x09, &[], b"k", b"v", 1, 0), einval),
        (pkt(0x1c, &[], b"k", &[], 1, 0), einval),
        (pkt(0x1d, &[0; 4], &[], &[], 1, 0), einval),
        (pkt(0x23, &[0; 4], b"k", b"v", 1, 0), einval),
        (pkt(0x01, &[0; 4], b"k", b"v", 1, 0), einval),
        (pkt(0x02, &set_x, &[], b"v", 1, 0), einval),
        (pkt(0x0e, &[0; 4], b"k", b"v", 1, 0), einval),
        (pkt(0x0f, &[], &[], b"v", 1, 0), einval),
        (pkt(0x04, &[0; 4], b"k", &[], 1, 0), einval),
        (pkt(0x14, &[], b"k", b"v", 1, 0), einval),
        (pkt(0x05, &[0; 8], b"k", &[], 1, 0), einval),
        (pkt(0x06, &incr_x, &[], &[], 1, 0), einval),
        (pkt(0x15, &incr_x, b"k", b"v", 1, 0), einval),
        (pkt(0x07, &[], &[], b"v", 1, 0), einval),
        (pkt(0x08, &[0; 8], &[], &[], 1, 0), einval),
        (pkt(0x08, &[], b"k", &[], 1, 0), einval),
        (pkt(0x18, &[0; 4], &[], b"v", 1, 0), einval),
        (pkt(0x0a, &[], &[], b"v", 1, 0), einval),
        (pkt(0x0b, &[], b"k", &[], 1, 0), einval),
        (pkt(0x10, &[0; 4], &[], &[], 1, 0), einval),
        (pkt(0x10, &[], b"k", b"v", 1, 0), einval),
        (pkt(0x1b, &[], &[], &[], 1, 0), einval),
        (pkt(0x20, &[], b"k", &[], 1, 0), einval),
        (pkt(0x21, &[], &[], b"v", 1, 0), einval),
        (pkt(0x22, &[0; 4], b"PLAIN", b"v", 1, 0), einval),
        // Unknown opcodes: answered, the body skipped exactly, connection kept.
        (
            pkt(0x50, &[], &[], &[], 1, 0),
            (Some(Status::UnknownCommand), HEADER_LEN, 0, false),
        ),
        (
            pkt(0x19 + 0x30, &[1, 2], b"key", b"value", 1, 0),
            (Some(Status::UnknownCommand), HEADER_LEN, 10, false),
        ),
        (
            pkt(0xff, &[], &[], b"", 1, 0),
            (Some(Status::UnknownCommand), HEADER_LEN, 0, false),
        ),
    ];
    for (input, want) in &rows {
        check_refused(input, *want, &l);
    }
}

#[test]
fn too_large_is_answered_without_the_value() {
    let l = Limits {
        max_item_size: 100,
        ..Limits::default()
    };
    // Declares 2 GB of value: refused once header, extras and key are in.
    let mut set = hdr(0x01, 3, 8, 8 + 3 + 2_000_000_000);
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(b"big");
    set.extend_from_slice(b"some of the value");
    let head = HEADER_LEN + 11;
    let BinParse::Invalid(inv) = parse(&set, &l) else {
        panic!()
    };
    assert_eq!(
        inv,
        BinInvalid {
            reply: Some(BinError {
                to: ReplyTo {
                    opcode: 0x01,
                    opaque: 9
                },
                status: Status::TooLarge
            }),
            consumed: head,
            swallow: 2_000_000_000,
            close: false,
            unlink: Some(b"big"),
        }
    );
    check_prefixes(&set, head, &l);
    // setq unlinks too; add, replace and append do not.
    for (op, extras, unlink) in [
        (0x11, 8, true),
        (0x02, 8, false),
        (0x13, 8, false),
        (0x0e, 0, false),
        (0x1a, 0, false),
    ] {
        let mut p = hdr(op, 1, extras, u32::from(extras) + 1 + 101);
        p.extend(std::iter::repeat_n(0, usize::from(extras)));
        p.push(b'k');
        let BinParse::Invalid(inv) = parse(&p, &l) else {
            panic!("{op}")
        };
        assert_eq!(inv.reply.unwrap().status, Status::TooLarge);
        assert_eq!(
            (inv.swallow, inv.consumed, inv.unlink.is_some()),
            (101, p.len(), unlink)
        );
    }
    // SASL data too large to hold: memcached's out of memory.
    let mut auth = hdr(0x21, 5, 0, 5 + 101);
    auth.extend_from_slice(b"PLAIN");
    let BinParse::Invalid(inv) = parse(&auth, &l) else {
        panic!()
    };
    assert_eq!(
        (inv.reply.unwrap().status, inv.swallow),
        (Status::OutOfMemory, 101)
    );
    // At the limit it waits for the value.
    let mut fits = hdr(0x01, 1, 8, 8 + 1 + 100);
    fits.extend_from_slice(&[0; 9]);
    assert_eq!(parse(&fits, &l), BinParse::Incomplete { more: Some(100) });
}

#[test]
fn control_keys_when_asked() {
    let strict = Limits {
        reject_control_keys: true,
        ..Limits::default()
    };
    let p = pkt(0x00, &[], b"a\x01", &[], 1, 0);
    assert!(matches!(
        parse(&p, &Limits::default()),
        BinParse::Complete { .. }
    ));
    check_refused(
        &p,
        (Some(Status::InvalidArguments), p.len(), 0, true),
        &strict,
    );
}

#[test]
fn quiet_gets_pipelined_and_ended_by_noop() {
    let mut wire = Vec::new();
    for (i, key) in [&b"a"[..], b"bb", b"ccc"].iter().enumerate() {
        let op = BinOp::Get {
            key,
            with_key: i % 2 == 1,
        };
        BinRequest::new(op, true, i as u32, 0).encode(&mut wire);
    }
    BinRequest::new(BinOp::Noop, false, 99, 0).encode(&mut wire);
    let mut at = 0;
    let mut got = Vec::new();
    while at < wire.len() {
        let BinParse::Complete { request, consumed } = parse(&wire[at..], &Limits::default())
        else {
            panic!("at {at}")
        };
        got.push((
            request.opcode,
            request.quiet,
            request.key(),
            request.returns_key(),
        ));
        at += consumed;
    }
    assert_eq!(
        got,
        [
            (Opcode::GetQ, true, Some(&b"a"[..]), false),
            (Opcode::GetKQ, true, Some(&b"bb"[..]), true),
            (Opcode::GetQ, true, Some(&b"ccc"[..]), false),
            (Opcode::Noop, false, None, false),
        ]
    );
}

#[test]
fn new_clears_quiet_where_there_is_no_quiet_twin() {
    let r = BinRequest::new(BinOp::Version, true, 0, 0);
    assert_eq!((r.opcode, r.quiet), (Opcode::Version, false));
    let r = BinRequest::new(BinOp::Flush { delay: None }, true, 0, 0);
    assert_eq!((r.opcode, r.quiet), (Opcode::FlushQ, true));
}

// ---------------------------------------------------------------------------
// Properties

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..=250)
}

/// An owned description of a valid operation (proptest values cannot borrow).
#[derive(Debug, Clone)]
enum OpSpec {
    Get(Vec<u8>, bool),
    Gat(Vec<u8>, u32, bool),
    Touch(Vec<u8>, u32),
    Store(u8, Vec<u8>, u32, u32, Vec<u8>),
    Concat(bool, Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Arith(bool, Vec<u8>, u64, u64, u32),
    Flush(Option<u32>),
    Stat(Option<Vec<u8>>),
    Verbosity(u32),
    Sasl(u8, Vec<u8>, Vec<u8>),
    Bare(u8),
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        (key(), any::<bool>()).prop_map(|(k, w)| OpSpec::Get(k, w)),
        (key(), any::<u32>(), any::<bool>()).prop_map(|(k, e, w)| OpSpec::Gat(k, e, w)),
        (key(), any::<u32>()).prop_map(|(k, e)| OpSpec::Touch(k, e)),
        (0u8..3, key(), any::<u32>(), any::<u32>(), bytes(300))
            .prop_map(|(m, k, f, e, v)| OpSpec::Store(m, k, f, e, v)),
        (any::<bool>(), key(), bytes(300)).prop_map(|(a, k, v)| OpSpec::Concat(a, k, v)),
        key().prop_map(OpSpec::Delete),
        (
            any::<bool>(),
            key(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>()
        )
            .prop_map(|(i, k, d, n, e)| OpSpec::Arith(i, k, d, n, e)),
        proptest::option::of(any::<u32>()).prop_map(OpSpec::Flush),
        proptest::option::of(key()).prop_map(OpSpec::Stat),
        any::<u32>().prop_map(OpSpec::Verbosity),
        (
            0u8..2,
            proptest::collection::vec(any::<u8>(), 1..40),
            bytes(100)
        )
            .prop_map(|(s, m, d)| OpSpec::Sasl(s, m, d)),
        (0u8..4).prop_map(OpSpec::Bare),
    ]
}

fn op_of(s: &OpSpec) -> BinOp<'_> {
    match s {
        OpSpec::Get(k, w) => BinOp::Get {
            key: k,
            with_key: *w,
        },
        OpSpec::Gat(k, e, w) => BinOp::Gat {
            key: k,
            exptime: *e,
            with_key: *w,
        },
        OpSpec::Touch(k, e) => BinOp::Touch {
            key: k,
            exptime: *e,
        },
        OpSpec::Store(m, k, f, e, v) => BinOp::Store {
            mode: [StoreMode::Set, StoreMode::Add, StoreMode::Replace][*m as usize],
            key: k,
            flags: *f,
            exptime: *e,
            value: v,
        },
        OpSpec::Concat(a, k, v) => BinOp::Concat {
            mode: if *a {
                ConcatMode::Append
            } else {
                ConcatMode::Prepend
            },
            key: k,
            value: v,
        },
        OpSpec::Delete(k) => BinOp::Delete { key: k },
        OpSpec::Arith(i, k, d, n, e) => BinOp::Arith(Arith {
            mode: if *i {
                ArithMode::Increment
            } else {
                ArithMode::Decrement
            },
            key: k,
            delta: *d,
            initial: *n,
            exptime: *e,
        }),
        OpSpec::Flush(d) => BinOp::Flush { delay: *d },
        OpSpec::Stat(k) => BinOp::Stat { key: k.as_deref() },
        OpSpec::Verbosity(v) => BinOp::Verbosity { level: *v },
        OpSpec::Sasl(0, m, d) => BinOp::SaslAuth { mech: m, data: d },
        OpSpec::Sasl(_, m, d) => BinOp::SaslStep { mech: m, data: d },
        OpSpec::Bare(n) => [
            BinOp::Quit,
            BinOp::Noop,
            BinOp::Version,
            BinOp::SaslListMechs,
        ][*n as usize],
    }
}

/// Walks `buf` as a server connection would, checking the parser's bounds.
fn walk(mut buf: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    let mut skip = 0usize;
    loop {
        let n = skip.min(buf.len());
        buf = &buf[n..];
        skip -= n;
        if skip > 0 || buf.is_empty() {
            return Ok(());
        }
        match parse(buf, limits) {
            BinParse::Complete { request, consumed } => {
                let bodylen = u32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
                prop_assert_eq!(consumed, HEADER_LEN + bodylen);
                prop_assert!(consumed <= buf.len());
                let mut wire = Vec::new();
                request.encode(&mut wire);
                // The canonical form keeps everything but the data type and vbucket.
                prop_assert_eq!(&wire[..5], &buf[..5]);
                prop_assert_eq!(&wire[8..consumed], &buf[8..consumed]);
                let again = parse(&wire, limits);
                prop_assert_eq!(again, BinParse::Complete { request, consumed });
                buf = &buf[consumed..];
            }
            BinParse::Invalid(inv) => {
                prop_assert!(inv.consumed >= 1 && inv.consumed <= buf.len());
                if inv.close {
                    return Ok(());
                }
                buf = &buf[inv.consumed..];
                skip = inv.swallow;
            }
            BinParse::Incomplete { more } => {
                prop_assert!(more.is_some_and(|m| m > 0));
                return Ok(());
            }
        }
    }
}

proptest! {
    #[test]
    fn encode_parse_round_trip(spec in op_spec(), quiet: bool, opaque: u32, cas: u64) {
        let op = op_of(&spec);
        let want = BinRequest::new(op, quiet, opaque, cas);
        let mut wire = Vec::new();
        want.encode(&mut wire);
        prop_assert_eq!(parse(&wire, &Limits::default()), BinParse::Complete { request: want, consumed: wire.len() });
        // Split anywhere: incomplete, asking for no more than the rest.
        let cut = wire.len() / 2;
        match parse(&wire[..cut], &Limits::default()) {
            BinParse::Incomplete { more: Some(m) } => prop_assert!(m > 0 && cut + m <= wire.len()),
            other => prop_assert!(false, "prefix: {:?}", other),
        }
    }

    #[test]
    fn arbitrary_bytes_keep_the_bounds(data in bytes(600)) {
        walk(&data, &Limits::default())?;
        walk(&data, &Limits { max_item_size: 16, max_key_len: 8, ..Limits::default() })?;
    }

    // Arbitrary bytes rarely start with the magic and a sane header: build those.
    #[test]
    fn arbitrary_headers_keep_the_bounds(opcode in prop_oneof![0u8..0x25, any::<u8>()], keylen in 0u16..20,
                                         extlen in 0u8..24, extra in 0u32..40, cut in 0usize..120,
                                         tail in bytes(100)) {
        let body = u32::from(keylen) + u32::from(extlen) + extra;
        let mut p = hdr(opcode, keylen, extlen, body);
        p.extend(std::iter::repeat_n(b'x', body as usize));
        p.truncate(p.len().min(HEADER_LEN + cut));
        p.extend_from_slice(&tail);
        walk(&p, &Limits::default())?;
        walk(&p, &Limits { max_item_size: 4, ..Limits::default() })?;
    }
}

// ---------------------------------------------------------------------------
// Replies: (outcome, bytes) rows

#[test]
fn reply_rows() {
    let to = |opcode: u8| ReplyTo {
        opcode,
        opaque: 0x0a0b_0c0d,
    };
    let head = |opcode: u8, keylen: u16, extlen: u8, status: u16, body: u32, cas: u64| {
        let mut v = vec![0x81, opcode];
        v.extend_from_slice(&keylen.to_be_bytes());
        v.extend_from_slice(&[extlen, 0]);
        v.extend_from_slice(&status.to_be_bytes());
        v.extend_from_slice(&body.to_be_bytes());
        v.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
        v.extend_from_slice(&cas.to_be_bytes());
        v
    };
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut enc = |f: &dyn Fn(&mut Vec<u8>), want: Vec<u8>| {
        let mut out = Vec::new();
        f(&mut out);
        rows.push((out, want));
    };
    enc(
        &|o| encode_hit(o, to(0), 5, 7, None, b"hi"),
        [head(0, 0, 4, 0, 6, 7), vec![0, 0, 0, 5], b"hi".to_vec()].concat(),
    );
    enc(
        &|o| encode_hit(o, to(0x0c), 5, 7, Some(b"k"), b"hi"),
        [head(0x0c, 1, 4, 0, 7, 7), vec![0, 0, 0, 5], b"khi".to_vec()].concat(),
    );
    enc(
        &|o| encode_miss(o, to(0), None),
        [head(0, 0, 0, 1, 9, 0), b"Not found".to_vec()].concat(),
    );
    enc(
        &|o| encode_miss(o, to(0x0c), Some(b"k")),
        [head(0x0c, 1, 0, 1, 1, 0), b"k".to_vec()].concat(),
    );
    enc(
        &|o| encode_touched(o, to(0x1c), 5, 7),
        [head(0x1c, 0, 4, 0, 4, 7), vec![0, 0, 0, 5]].concat(),
    );
    enc(&|o| encode_ok(o, to(1), 33), head(1, 0, 0, 0, 0, 33));
    enc(
        &|o| encode_counter(o, to(5), 15, 34),
        [head(5, 0, 0, 0, 8, 34), 15u64.to_be_bytes().to_vec()].concat(),
    );
    enc(
        &|o| encode_version(o, to(0x0b), "1.6.18"),
        [head(0x0b, 0, 0, 0, 6, 0), b"1.6.18".to_vec()].concat(),
    );
    enc(
        &|o| encode_stat(o, 0x0a0b_0c0d, b"pid", b"1"),
        [head(0x10, 3, 0, 0, 4, 0), b"pid1".to_vec()].concat(),
    );
    enc(
        &|o| encode_stats_end(o, 0x0a0b_0c0d),
        head(0x10, 0, 0, 0, 0, 0),
    );
    for s in Status::ALL.iter().filter(|s| !s.message().is_empty()) {
        let m = s.message();
        enc(
            &|o| encode_status(o, to(2), *s),
            [
                head(2, 0, 0, s.code(), m.len() as u32, 0),
                m.as_bytes().to_vec(),
            ]
            .concat(),
        );
    }
    for (got, want) in rows {
        assert_eq!(got, want);
        let ResponseParse::Complete { response, consumed } = parse_response(&got) else {
            panic!()
        };
        assert_eq!(consumed, got.len());
        let mut again = Vec::new();
        response.encode(&mut again);
        assert_eq!(again, got);
    }
}

#[path = "binary/memcached.rs"]
mod memcached;
