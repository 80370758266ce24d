//! Property tests: encode-then-parse round trips for requests and replies;
//! arbitrary bytes never panic, never claim more bytes than given, and the
//! `Incomplete` hint never asks for more than the complete request needs.

use proptest::prelude::*;
use proto::client::{MetaCode, Reply, ReplyParse, parse_reply};
use proto::cmd::{Arith, ArithCmd, Delete, Get, GetKind, Store, StoreCmd, Touch};
use proto::meta::{MgItem, MgOutcome};
use proto::reply::{encode_end, encode_mg, encode_value};
use proto::{Limits, MetaFlag, Parse, Request, client, parse};

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9_:.-]{1,40}".prop_map(String::into_bytes),
        // Anything memcached takes in a key: no space, newline or NUL.
        proptest::collection::vec(
            any::<u8>().prop_filter("sep", |b| !matches!(b, b' ' | b'\n' | 0)),
            1..250
        )
        .prop_filter("trailing cr", |k| k.last() != Some(&b'\r')),
        Just(vec![b'k'; 250]),
    ]
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

/// Encode `req`, parse it back, compare; then check every strict prefix.
fn round_trip(req: &Request<'_>) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    let mut wire = Vec::new();
    req.encode(&mut wire);
    match parse(&wire, &limits) {
        Parse::Complete { request, consumed } => {
            prop_assert_eq!(&request, req);
            prop_assert_eq!(consumed, wire.len());
        }
        other => return Err(TestCaseError::fail(format!("{other:?}"))),
    }
    for cut in 0..wire.len() {
        match parse(&wire[..cut], &limits) {
            Parse::Incomplete { more } => {
                if let Some(m) = more {
                    prop_assert!(m > 0 && cut + m <= wire.len());
                }
            }
            other => return Err(TestCaseError::fail(format!("cut {cut}: {other:?}"))),
        }
    }
    Ok(())
}

fn store_cmd() -> impl Strategy<Value = StoreCmd> {
    prop_oneof![
        Just(StoreCmd::Set),
        Just(StoreCmd::Add),
        Just(StoreCmd::Replace),
        Just(StoreCmd::Append),
        Just(StoreCmd::Prepend),
        Just(StoreCmd::Cas),
    ]
}

/// Meta flags valid for `cmd` ("mg", "ms", "md", "ma"), distinct letters, at
/// most `max` of them, in random order.
fn meta_flags(cmd: &'static str, max: usize) -> impl Strategy<Value = Vec<MetaFlag<'static>>> {
    let modes: &'static [u8] = match cmd {
        "ms" => b"EAPRS",
        "ma" => b"I+D-",
        _ => b"EAPRSID+-x",
    };
    let opaque = "[!-~]{0,31}".prop_map(|s| &*Box::leak(s.into_boxed_str()));
    let hint = "[!-~]{0,10}".prop_map(|s| &*Box::leak(s.into_boxed_str()));
    (
        proptest::collection::vec(any::<bool>(), 24),
        opaque,
        hint,
        any::<(i32, i32, i32, u64, u64, u32)>(),
        (any::<u64>(), any::<u64>(), proptest::sample::select(modes)),
    )
        .prop_map(move |(on, o, h, (t, n, r, e, c, f), (d, j, m))| {
            let all = [
                MetaFlag::ReturnCas,
                MetaFlag::ReturnFlags,
                MetaFlag::ReturnHit,
                MetaFlag::ReturnKey,
                MetaFlag::ReturnLastAccess,
                MetaFlag::Quiet,
                MetaFlag::ReturnSize,
                MetaFlag::ReturnTtl,
                MetaFlag::NoBump,
                MetaFlag::ReturnValue,
                MetaFlag::RemoveValue,
                MetaFlag::Invalidate,
                MetaFlag::Opaque(o.as_bytes()),
                MetaFlag::Ttl(t),
                MetaFlag::Vivify(n),
                MetaFlag::Recache(r),
                MetaFlag::NewCas(e),
                MetaFlag::CompareCas(c),
                MetaFlag::ClientFlags(f),
                MetaFlag::Mode(m),
                MetaFlag::Delta(d),
                MetaFlag::Initial(j),
                MetaFlag::ProxyHint(b'P', h.as_bytes()),
                MetaFlag::ProxyHint(b'L', h.as_bytes()),
            ];
            all.iter()
                .zip(on)
                .filter(|(_, on)| *on)
                .map(|(f, _)| *f)
                .take(max)
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

/// One request of a random pipeline: (kind, keys, data).
type PipelineItem = (u8, Vec<Vec<u8>>, Vec<u8>);

fn pipeline_request() -> impl Strategy<Value = PipelineItem> {
    (0u8..8, proptest::collection::vec(key(), 1..6), data())
}

fn encode_pipeline(items: &[PipelineItem]) -> Vec<u8> {
    let mut wire = Vec::new();
    for (kind, keys, d) in items {
        let k = keys[0].as_slice();
        match kind {
            0 => proto::cmd::get::encode_request(
                &mut wire,
                GetKind::Get,
                0,
                keys.iter().map(Vec::as_slice),
            ),
            1 => proto::cmd::get::encode_request(
                &mut wire,
                GetKind::Gat,
                30,
                keys.iter().take(2).map(Vec::as_slice),
            ),
            2 => Request::Store(Store {
                cmd: StoreCmd::Set,
                key: k,
                flags: 3,
                exptime: 0,
                data: d,
                cas: 0,
                noreply: false,
            })
            .encode(&mut wire),
            3 => Request::Store(Store {
                cmd: StoreCmd::Cas,
                key: k,
                flags: 0,
                exptime: 9,
                data: d,
                cas: 7,
                noreply: true,
            })
            .encode(&mut wire),
            4 => client::ms(&mut wire, k, d, &[MetaFlag::ReturnCas]),
            5 => client::mg(&mut wire, k, &[MetaFlag::ReturnValue]),
            6 => Request::Delete(Delete {
                key: k,
                noreply: false,
            })
            .encode(&mut wire),
            _ => Request::Arith(Arith {
                cmd: ArithCmd::Incr,
                key: k,
                delta: 1,
                noreply: false,
            })
            .encode(&mut wire),
        }
    }
    wire
}

proptest! {
    /// `peek_keys`, the prefetch hint, reports exactly the keys `parse` finds
    /// in a pipeline of well-formed requests, in order, and covers the same bytes.
    #[test]
    fn peek_keys_agrees_with_parse(items in proptest::collection::vec(pipeline_request(), 1..12)) {
        let wire = encode_pipeline(&items);
        let limits = Limits { max_get_line_len: usize::MAX, max_line_len: usize::MAX, ..Limits::default() };
        let mut parsed: Vec<Vec<u8>> = Vec::new();
        let mut pos = 0;
        while pos < wire.len() {
            let Parse::Complete { request, consumed } = parse(&wire[pos..], &limits) else {
                return Err(TestCaseError::fail(format!("pipeline did not parse at {pos}")));
            };
            prop_assert!(request.is_keyed(), "unexpected {:?}", request);
            parsed.extend(request.keys().map(|k| k.raw().to_vec()));
            pos += consumed;
        }
        let mut peeked: Vec<Vec<u8>> = Vec::new();
        let covered = proto::peek_keys(&wire, usize::MAX, |k| peeked.push(k.to_vec()));
        prop_assert_eq!(covered, wire.len());
        prop_assert_eq!(&peeked, &parsed);
        // Cut anywhere: never reads past the cut, reports a prefix of the keys.
        for cut in [wire.len() / 3, wire.len() / 2, wire.len() - 1] {
            let mut some: Vec<Vec<u8>> = Vec::new();
            let n = proto::peek_keys(&wire[..cut], usize::MAX, |k| some.push(k.to_vec()));
            prop_assert!(n <= cut);
            prop_assert!(some.len() <= parsed.len());
        }
    }

    #[test]
    fn store_round_trip(cmd in store_cmd(), k in key(), flags: u32, exptime: i32, d in data(), cas: u64, noreply: bool) {
        let cas = if cmd == StoreCmd::Cas { cas } else { 0 };
        let req = Request::Store(Store { cmd, key: &k, flags, exptime, data: &d, cas, noreply });
        round_trip(&req)?;
    }

    #[test]
    fn get_round_trip(kind in prop_oneof![Just(GetKind::Get), Just(GetKind::Gets), Just(GetKind::Gat), Just(GetKind::Gats)],
                      keys in proptest::collection::vec(key(), 1..30), exptime: i32) {
        let exptime = if kind.touches() { exptime } else { 0 };
        let mut wire = Vec::new();
        proto::cmd::get::encode_request(&mut wire, kind, exptime, keys.iter().map(Vec::as_slice));
        // gat/gats lines are held to the line guard, as in memcached.
        prop_assume!(!kind.touches() || wire.len() <= Limits::default().max_line_len + 2);
        let Parse::Complete { request: Request::Get(Get { kind: k2, exptime: e2, keys: got }), consumed } =
            parse(&wire, &Limits::default()) else { return Err(TestCaseError::fail("get")) };
        prop_assert_eq!((k2, e2, consumed), (kind, exptime, wire.len()));
        prop_assert_eq!(got.collect::<Vec<_>>(), keys.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn keyed_round_trip(k in key(), delta: u64, exptime: i32, noreply: bool, incr: bool) {
        round_trip(&Request::Delete(Delete { key: &k, noreply }))?;
        let cmd = if incr { ArithCmd::Incr } else { ArithCmd::Decr };
        round_trip(&Request::Arith(Arith { cmd, key: &k, delta, noreply }))?;
        round_trip(&Request::Touch(Touch { key: &k, exptime, noreply }))?;
    }

    #[test]
    fn meta_round_trip(k in "[a-zA-Z0-9_]{1,60}", bin in proptest::collection::vec(any::<u8>(), 1..150),
                       b64: bool, d in data(),
                       mg in meta_flags("mg", 16), ms in meta_flags("ms", 15),
                       md in meta_flags("md", 16), ma in meta_flags("ma", 16)) {
        let mut key = k.into_bytes();
        let with_b = |mut f: Vec<MetaFlag<'static>>| {
            if b64 { f.insert(0, MetaFlag::Base64); }
            f
        };
        if b64 {
            key.clear();
            proto::base64::encode(&bin, &mut key);
        }
        let limits = Limits::default();
        for (cmd, flags) in [("mg", with_b(mg)), ("ms", with_b(ms)), ("md", with_b(md)), ("ma", with_b(ma))] {
            let mut wire = Vec::new();
            match cmd {
                "mg" => client::mg(&mut wire, &key, &flags),
                "ms" => client::ms(&mut wire, &key, &d, &flags),
                "md" => client::md(&mut wire, &key, &flags),
                _ => client::ma(&mut wire, &key, &flags),
            }
            let Parse::Complete { request, consumed } = parse(&wire, &limits) else {
                return Err(TestCaseError::fail(format!("{:?}", String::from_utf8_lossy(&wire))));
            };
            prop_assert_eq!(consumed, wire.len());
            let parsed = match &request {
                Request::MetaGet(r) => r.flags,
                Request::MetaSet(r) => { prop_assert_eq!(r.data, &d[..]); r.flags }
                Request::MetaDelete(r) => r.flags,
                Request::MetaArith(r) => r.flags,
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), flags);
            round_trip(&request)?;
        }
    }

    #[test]
    fn arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_total(&buf)?;
    }

    #[test]
    fn command_like_bytes(cmd in proptest::sample::select(vec![
            "get", "gets", "gat", "gats", "set", "add", "cas", "append", "delete", "incr", "decr",
            "touch", "flush_all", "verbosity", "stats", "slabs", "lru", "lru_crawler", "watch",
            "cache_memlimit", "shutdown", "mg", "ms", "md", "ma", "me", "mn", "debugtime"]),
        rest in proptest::collection::vec(prop_oneof![
            Just(b' '), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'1'), Just(b'-'), Just(b'v'),
            Just(b'q'), Just(b'T'), Just(b'b'), Just(b'O'), Just(b'k'), any::<u8>()], 0..120)) {
        let mut buf = cmd.as_bytes().to_vec();
        buf.push(b' ');
        buf.extend_from_slice(&rest);
        check_total(&buf)?;
    }

    #[test]
    fn values_round_trip(items in proptest::collection::vec((key(), any::<u32>(), data(), proptest::option::of(any::<u64>())), 0..10)) {
        let mut wire = Vec::new();
        for (k, f, d, c) in &items {
            encode_value(&mut wire, k, *f, d, *c);
        }
        encode_end(&mut wire);
        let ReplyParse::Complete { reply: Reply::Values(v), consumed } = parse_reply(&wire) else {
            return Err(TestCaseError::fail("values"));
        };
        prop_assert_eq!(consumed, wire.len());
        let got: Vec<_> = v.map(|v| (v.key.to_vec(), v.flags, v.data.to_vec(), v.cas)).collect();
        prop_assert_eq!(got, items);
    }

    #[test]
    fn mg_reply_round_trip(value in data(), cas: u64, flags: u32, ttl in -1i64..100000, la: u64,
                           fetched: bool, won: bool, stale: bool, win_sent: bool, opaque in "[!-~]{1,31}") {
        let line = format!("mg key s v t f c k h l O{opaque}\r\n");
        let Parse::Complete { request: Request::MetaGet(req), .. } = parse(line.as_bytes(), &Limits::default()) else {
            return Err(TestCaseError::fail("mg"));
        };
        let item = MgItem { key: b"key", key_binary: false, client_flags: flags, cas, value: &value,
            ttl, last_access: la, fetched, stale, won, win_sent };
        let mut wire = Vec::new();
        encode_mg(&mut wire, &req, &MgOutcome::Hit(item));
        let ReplyParse::Complete { reply: Reply::Meta(m), consumed } = parse_reply(&wire) else {
            return Err(TestCaseError::fail("reply"));
        };
        prop_assert_eq!(consumed, wire.len());
        prop_assert_eq!(m.code, MetaCode::Va);
        prop_assert_eq!(m.value, Some(&value[..]));
        let f = m.flags;
        prop_assert_eq!((f.size(), f.cas(), f.client_flags(), f.ttl(), f.last_access()),
            (Some(value.len() as u64), Some(cas), Some(flags), Some(ttl), Some(la)));
        prop_assert_eq!((f.hit(), f.key(), f.opaque()), (Some(fetched), Some(&b"key"[..]), Some(opaque.as_bytes())));
        prop_assert_eq!((f.won(), f.stale(), f.win_sent()), (won, stale, win_sent));
    }

    #[test]
    fn arbitrary_replies(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
        match parse_reply(&buf) {
            ReplyParse::Complete { consumed, .. } => prop_assert!(consumed > 0 && consumed <= buf.len()),
            ReplyParse::Incomplete { more: Some(m) } => prop_assert!(m > 0),
            _ => {}
        }
    }
}

/// The invariants every parse keeps, whatever the bytes.
fn check_total(buf: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    match parse(buf, &limits) {
        Parse::Complete { request, consumed } => {
            prop_assert!(consumed > 0 && consumed <= buf.len());
            // What parsed re-encodes to something that parses to the same request.
            let mut wire = Vec::new();
            request.encode(&mut wire);
            let roomy = Limits {
                max_line_len: usize::MAX / 4,
                max_get_line_len: usize::MAX / 4,
                ..limits
            };
            match parse(&wire, &roomy) {
                Parse::Complete {
                    request: r2,
                    consumed,
                } => {
                    prop_assert_eq!(r2, request);
                    prop_assert_eq!(consumed, wire.len());
                }
                other => return Err(TestCaseError::fail(format!("re-parse: {other:?}"))),
            }
        }
        Parse::Incomplete { more } => {
            if let Some(m) = more {
                prop_assert!(m > 0);
            }
        }
        Parse::Invalid(inv) => {
            prop_assert!(inv.consumed > 0 && inv.consumed <= buf.len());
        }
    }
    Ok(())
}
