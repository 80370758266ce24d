//! The meta protocol: (bytes in, expected) rows for requests, and (outcome,
//! bytes out) rows for replies. Replies and errors were checked against
//! memcached 1.6.18; flags added after 1.6.18 (`E`, `x`) are marked.

mod common;
use common::{ALL, LINE, Want::*, check, pipeline};
use proto::meta::{ArithMode, MaOutcome, MdOutcome, MeInfo, MgItem, MgOutcome, MsOutcome, SetMode};
use proto::reply::{encode_ma, encode_md, encode_me, encode_mg, encode_mn, encode_ms};
use proto::{Limits, MetaFlag, Parse, Request, parse};

const BAD: Option<&[u8]> = Some(b"CLIENT_ERROR bad command line format\r\n");
const ERROR: Option<&[u8]> = Some(b"ERROR\r\n");

fn ce(s: &'static str) -> Option<&'static [u8]> {
    Some(Box::leak(format!("CLIENT_ERROR {s}\r\n").into_boxed_str()).as_bytes())
}

#[test]
fn meta_requests() {
    let rows: &[(&[u8], common::Want)] = &[
        (b"mn\r\n", Ok(b"mn\r\n", ALL)),
        (b"mn foo bar\r\n", Ok(b"mn\r\n", ALL)),
        (b"mg foo\r\n", Ok(b"mg foo\r\n", ALL)),
        (
            b"mg foo s v t f c k O123 h l\r\n",
            Ok(b"mg foo s v t f c k O123 h l\r\n", ALL),
        ),
        (
            b"mg foo c f h k l s t v O1 P L q u T1 N1 R1\r\n",
            Ok(b"mg foo c f h k l s t v O1 P L q u T1 N1 R1\r\n", ALL),
        ),
        // Only the first byte of a bare flag counts (1.6.18 answered `v\tq` with VA).
        (b"mg foo v\tq\r\n", Ok(b"mg foo v\r\n", ALL)),
        (b"mg foo T+5 N-1\r\n", Ok(b"mg foo T5 N-1\r\n", ALL)),
        (b"mg Zm9v b v k\r\n", Ok(b"mg Zm9v b v k\r\n", ALL)),
        (b"mg foo E5\r\n", Ok(b"mg foo E5\r\n", ALL)), // newer than 1.6.18
        (b"mg foo Mx\r\n", Ok(b"mg foo Mx\r\n", ALL)),
        (b"mg\r\n", Err(ERROR, ALL, 0, false)),
        (b"mg \r\n", Err(ERROR, ALL, 0, false)),
        (b"mx foo\r\n", Err(ERROR, ALL, 0, false)),
        (b"mgx foo\r\n", Err(ERROR, ALL, 0, false)),
        (b"m\r\n", Err(ERROR, ALL, 0, false)),
        (b"mg foo zz\r\n", Err(ce("invalid flag"), ALL, 0, false)),
        (b"mg foo !\r\n", Err(ce("invalid flag"), ALL, 0, false)),
        (b"mg foo S1\r\n", Err(ce("invalid flag"), ALL, 0, false)),
        (b"mg foo v v\r\n", Err(ce("duplicate flag"), ALL, 0, false)),
        (b"mg foo \x80\r\n", Err(ce("duplicate flag"), ALL, 0, false)),
        (
            b"mg foo Tabc\r\n",
            Err(ce("bad token in command line format"), ALL, 0, false),
        ),
        (
            b"mg foo T\r\n",
            Err(ce("bad token in command line format"), ALL, 0, false),
        ),
        (
            b"mg foo N\r\n",
            Err(ce("bad token in command line format"), ALL, 0, false),
        ),
        (
            b"mg foo R\r\n",
            Err(ce("bad token in command line format"), ALL, 0, false),
        ),
        (b"mg foo Fabc\r\n", Err(BAD, ALL, 0, false)),
        // A bad value is remembered and parsing goes on; an unknown flag stops it.
        (
            b"mg foo Tabc zz\r\n",
            Err(ce("invalid flag"), ALL, 0, false),
        ),
        (
            b"mg foo Tabc Fabc\r\n",
            Err(ce("bad token in command line format"), ALL, 0, false),
        ),
        (
            b"mg foo MII\r\n",
            Err(ce("incorrect length for M token"), ALL, 0, false),
        ),
        (b"mg foo O\r\n", Ok(b"mg foo O\r\n", ALL)),
        (
            b"mg foo Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            Ok(b"mg foo Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", ALL),
        ),
        (
            b"mg foo Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            Err(ce("opaque token too long"), ALL, 0, false),
        ),
        (
            b"mg foo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n",
            Err(ce("options flags are too long"), ALL, 0, false),
        ),
        (
            b"mg foo a b c d e f g h i j k l m n o p q r s t u v\r\n",
            Err(ce("options flags are too long"), ALL, 0, false),
        ),
        (
            b"mg Zm9v= b v\r\n",
            Err(ce("error decoding key"), ALL, 0, false),
        ),
        (
            b"mg Zm9vYg b v\r\n",
            Err(ce("error decoding key"), ALL, 0, false),
        ),
        (b"ms foo 2\r\nhi\r\n", Ok(b"ms foo 2\r\nhi\r\n", ALL)),
        (
            b"ms foo 2 T90 F1 c k O9 q\r\nhi\r\n",
            Ok(b"ms foo 2 T90 F1 c k O9 q\r\nhi\r\n", ALL),
        ),
        (
            b"ms n 1 MA N30\r\nx\r\n",
            Ok(b"ms n 1 MA N30\r\nx\r\n", ALL),
        ),
        (
            b"ms n 1 F4294967296\r\nx\r\n",
            Ok(b"ms n 1 F0\r\nx\r\n", ALL),
        ),
        (
            b"ms n 1 D1 J1 N1 R1 h l t s f u v\r\nx\r\n",
            Ok(b"ms n 1 D1 J1 N1 R1 h l t s f u v\r\nx\r\n", ALL),
        ),
        (b"ms n 5\r\nhel", More(Some(4))),
        (b"ms n\r\n", Err(BAD, ALL, 0, false)),
        (b"ms n abc\r\n", Err(BAD, ALL, 0, false)),
        (b"ms n -1\r\n", Err(BAD, ALL, 0, false)),
        (
            b"ms n 1 a b c d e f g h i j k l m n o p q r\r\n",
            Err(ce("options flags too long"), ALL, 0, false),
        ),
        // Flag errors after the length is known swallow the block, q or not.
        (
            b"ms n 1 zz\r\nx\r\n",
            Err(ce("invalid flag"), LINE, 3, false),
        ),
        (
            b"ms n 1 v v\r\nx\r\n",
            Err(ce("duplicate flag"), LINE, 3, false),
        ),
        (
            b"ms n 1 Tabc\r\nx\r\n",
            Err(ce("bad token in command line format"), LINE, 3, false),
        ),
        (b"ms n 1 Fabc\r\nx\r\n", Err(BAD, LINE, 3, false)),
        (b"ms n 1 F-1\r\nx\r\n", Err(BAD, LINE, 3, false)),
        (
            b"ms n 1 Cabc\r\nx\r\n",
            Err(ce("bad token in command line format"), LINE, 3, false),
        ),
        (
            b"ms n 1 S1\r\nx\r\n",
            Err(ce("invalid flag"), LINE, 3, false),
        ),
        (
            b"ms n 1 Mx q\r\nx\r\n",
            Err(ce("invalid mode for ms M token"), LINE, 3, false),
        ),
        (
            b"ms n 1 MSS\r\nx\r\n",
            Err(ce("incorrect length for M token"), LINE, 3, false),
        ),
        (
            b"ms n 1 Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n",
            Err(ce("opaque token too long"), LINE, 3, false),
        ),
        // A bad chunk is reported even under q.
        (b"ms n 1\r\nxx\r", Err(ce("bad data chunk"), ALL, 0, false)),
        (
            b"ms n 1 q\r\nxx\r",
            Err(ce("bad data chunk"), ALL, 0, false),
        ),
        (
            b"ms n 2000000 q\r\n",
            Err(
                Some(b"SERVER_ERROR object too large for cache\r\n"),
                ALL,
                2000002,
                false,
            ),
        ),
        (b"md foo\r\n", Ok(b"md foo\r\n", ALL)),
        (
            b"md foo I T30 C5 q k O1\r\n",
            Ok(b"md foo I T30 C5 q k O1\r\n", ALL),
        ),
        (b"md foo v s t\r\n", Ok(b"md foo v s t\r\n", ALL)),
        (b"md foo x\r\n", Ok(b"md foo x\r\n", ALL)), // newer than 1.6.18
        (
            b"md foo zz\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (
            b"md foo Tabc\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (b"md\r\n", Err(ERROR, ALL, 0, false)),
        (b"ma n\r\n", Ok(b"ma n\r\n", ALL)),
        (b"ma n N0 J10 v\r\n", Ok(b"ma n N0 J10 v\r\n", ALL)),
        (b"ma n MD D100 v\r\n", Ok(b"ma n MD D100 v\r\n", ALL)),
        (b"ma n M+ v\r\n", Ok(b"ma n M+ v\r\n", ALL)),
        (
            b"ma n Mx v\r\n",
            Err(ce("invalid mode for ma M token"), ALL, 0, false),
        ),
        (
            b"ma n MII v\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (
            b"ma n M v\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (
            b"ma n Dabc v\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (
            b"ma n D-1 v\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (
            b"ma n D18446744073709551616\r\n",
            Err(ce("invalid or duplicate flag"), ALL, 0, false),
        ),
        (b"me foo\r\n", Ok(b"me foo\r\n", ALL)),
        (b"me foo x y z\r\n", Ok(b"me foo\r\n", ALL)),
        (b"me Zm9v b\r\n", Ok(b"me Zm9v b\r\n", ALL)),
        (b"me foo b\r\n", Err(BAD, ALL, 0, false)),
        (b"me\r\n", Err(BAD, ALL, 0, false)),
    ];
    for (input, want) in rows {
        check(input, *want);
    }
}

#[test]
fn meta_key_length() {
    for cmd in ["mg", "md", "ma", "me"] {
        let ok = format!("{cmd} {}\r\n", "k".repeat(250));
        assert!(matches!(
            parse(ok.as_bytes(), &Limits::default()),
            Parse::Complete { .. }
        ));
        let bad = format!("{cmd} {}\r\n", "k".repeat(251));
        check(bad.as_bytes(), Err(BAD, bad.len(), 0, false));
    }
    // ms: no swallow for a long key (1.6.18 then reads the data line as ERROR).
    let ms = format!("ms {} 1\r\nx\r\nmn\r\n", "k".repeat(251));
    assert_eq!(
        pipeline(ms.as_bytes(), &Limits::default()),
        [
            "CLIENT_ERROR bad command line format\r\n",
            "ERROR\r\n",
            "mn\r\n"
        ]
    );
}

#[test]
fn meta_typed_fields() {
    let l = Limits::default();
    let Parse::Complete {
        request: Request::MetaArith(a),
        ..
    } = parse(b"ma n MD D7 J3 N60 q O9\r\n", &l)
    else {
        panic!()
    };
    assert_eq!((a.mode, a.delta, a.initial), (ArithMode::Decr, 7, 3));
    assert_eq!(a.flags.vivify(), Some(60));
    assert!(a.flags.quiet());
    assert_eq!(a.flags.opaque(), Some(&b"9"[..]));
    let Parse::Complete {
        request: Request::MetaSet(s),
        ..
    } = parse(b"ms Zm9v 2 b ME C12 E99 I T-1 F7\r\nhi\r\n", &l)
    else {
        panic!()
    };
    assert_eq!(s.mode, SetMode::Add);
    let mut kb = [0u8; proto::base64::MAX_DECODED_KEY];
    assert_eq!(s.key.decode(&mut kb), b"foo");
    assert_eq!(s.flags.compare_cas(), Some(12));
    assert_eq!(s.flags.new_cas(), Some(99));
    assert_eq!(s.flags.ttl(), Some(-1));
    assert_eq!(s.flags.client_flags(), Some(7));
    assert!(s.flags.invalidate());
    let got: Vec<MetaFlag> = s.flags.iter().collect();
    assert_eq!(
        got,
        [
            MetaFlag::Base64,
            MetaFlag::Mode(b'E'),
            MetaFlag::CompareCas(12),
            MetaFlag::NewCas(99),
            MetaFlag::Invalidate,
            MetaFlag::Ttl(-1),
            MetaFlag::ClientFlags(7),
        ]
    );
    // A too-large ms unlinks the old item whatever its mode (1.6.18 does).
    let Parse::Invalid(inv) = parse(b"ms Zm9v 2000000 b MA\r\n", &l) else {
        panic!()
    };
    let key = inv.unlink.unwrap();
    assert_eq!(key.decode(&mut kb), b"foo");
}

fn mg_reply(line: &[u8], outcome: MgOutcome) -> String {
    let Parse::Complete {
        request: Request::MetaGet(req),
        ..
    } = parse(line, &Limits::default())
    else {
        panic!("{line:?}")
    };
    let mut out = Vec::new();
    encode_mg(&mut out, &req, &outcome);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn mg_replies() {
    let item = MgItem {
        key: b"foo",
        client_flags: 0,
        cas: 33,
        value: b"hi",
        ttl: -1,
        last_access: 1,
        fetched: true,
        ..MgItem::default()
    };
    let hit = MgOutcome::Hit(item);
    // Each row is what memcached 1.6.18 sent for the same request and item.
    let rows: &[(&[u8], MgOutcome, &str)] = &[
        (b"mg foo\r\n", hit, "HD\r\n"),
        (b"mg foo v\r\n", hit, "VA 2\r\nhi\r\n"),
        (
            b"mg foo s v t f c k O123 h l\r\n",
            hit,
            "VA 2 s2 t-1 f0 c33 kfoo O123 h1 l1\r\nhi\r\n",
        ),
        (b"mg foo q v\r\n", hit, "VA 2\r\nhi\r\n"),
        (b"mg miss\r\n", MgOutcome::Miss, "EN\r\n"),
        (b"mg miss k O2\r\n", MgOutcome::Miss, "EN kmiss O2\r\n"),
        (b"mg miss k O1 q\r\n", MgOutcome::Miss, ""),
        (b"mg AAEC b k v\r\n", MgOutcome::Miss, "EN kAAEC b\r\n"),
        (b"mg miss O\r\n", MgOutcome::Miss, "EN O\r\n"),
    ];
    for (line, outcome, want) in rows {
        assert_eq!(
            mg_reply(line, *outcome),
            *want,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    // Binary keys come back encoded with ` b`; win/stale flags in memcached's order.
    let bin = MgOutcome::Hit(MgItem {
        key: &[0, 1, 2],
        key_binary: true,
        value: b"x",
        won: true,
        stale: true,
        win_sent: false,
        ..MgItem::default()
    });
    assert_eq!(
        mg_reply(b"mg AAEC b k v\r\n", bin),
        "VA 1 kAAEC b X W\r\nx\r\n"
    );
    let z = MgOutcome::Hit(MgItem {
        win_sent: true,
        ttl: 20,
        ..MgItem::default()
    });
    assert_eq!(mg_reply(b"mg k t\r\n", z), "HD t20 Z\r\n");
}

#[test]
fn ms_md_ma_me_mn_replies() {
    let l = Limits::default();
    let ms = |line: &[u8], o: MsOutcome| {
        let Parse::Complete {
            request: Request::MetaSet(r),
            ..
        } = parse(line, &l)
        else {
            panic!()
        };
        let mut out = Vec::new();
        encode_ms(&mut out, &r, &o);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        ms(b"ms n 1\r\nx\r\n", MsOutcome::Stored { cas: 5 }),
        "HD\r\n"
    );
    assert_eq!(ms(b"ms n 1 q c\r\nx\r\n", MsOutcome::Stored { cas: 5 }), "");
    assert_eq!(
        ms(b"ms n 1 c k\r\nx\r\n", MsOutcome::Stored { cas: 5 }),
        "HD c5 kn\r\n"
    );
    // 1.6.18: `ms n5 1 ME q k O9 c` on an existing key.
    assert_eq!(
        ms(b"ms n5 1 ME q k O9 c\r\nx\r\n", MsOutcome::NotStored),
        "NS kn5 O9 c0\r\n"
    );
    assert_eq!(ms(b"ms n 1 C1\r\nx\r\n", MsOutcome::Exists), "EX\r\n");
    assert_eq!(ms(b"ms n 1 C1\r\nx\r\n", MsOutcome::NotFound), "NF\r\n");
    assert_eq!(
        ms(b"ms AAEC 1 b k\r\nx\r\n", MsOutcome::Stored { cas: 1 }),
        "HD kAAEC b\r\n"
    );

    let md = |line: &[u8], o: MdOutcome| {
        let Parse::Complete {
            request: Request::MetaDelete(r),
            ..
        } = parse(line, &l)
        else {
            panic!()
        };
        let mut out = Vec::new();
        encode_md(&mut out, &r, o);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(md(b"md d1\r\n", MdOutcome::Deleted), "HD\r\n");
    assert_eq!(md(b"md d1 q\r\n", MdOutcome::Deleted), "");
    // 1.6.18 still sends NF and EX under q.
    assert_eq!(md(b"md miss q\r\n", MdOutcome::NotFound), "NF\r\n");
    assert_eq!(md(b"md d1 C1 q\r\n", MdOutcome::Exists), "EX\r\n");
    assert_eq!(
        md(b"md AAEC b k\r\n", MdOutcome::NotFound),
        "NF kAAEC b\r\n"
    );

    let ma = |line: &[u8], o: MaOutcome| {
        let Parse::Complete {
            request: Request::MetaArith(r),
            ..
        } = parse(line, &l)
        else {
            panic!()
        };
        let mut out = Vec::new();
        encode_ma(&mut out, &r, &o);
        String::from_utf8(out).unwrap()
    };
    let done = |value, created| MaOutcome::Done {
        value,
        cas: 7,
        ttl: -1,
        created,
    };
    assert_eq!(ma(b"ma n1 q\r\n", done(6, false)), "");
    assert_eq!(ma(b"ma n1 v q\r\n", done(7, false)), "");
    assert_eq!(ma(b"ma n1 v\r\n", done(8, false)), "VA 1\r\n8\r\n");
    assert_eq!(ma(b"ma n3 N0 J10 v\r\n", done(10, true)), "VA 2\r\n10\r\n");
    // 1.6.18 sends a vivified value even under q.
    assert_eq!(
        ma(b"ma n4 N0 J10 v q\r\n", done(10, true)),
        "VA 2\r\n10\r\n"
    );
    assert_eq!(
        ma(b"ma n c t O5 k\r\n", done(1, false)),
        "HD c7 t-1 O5 kn\r\n"
    );
    assert_eq!(ma(b"ma miss q\r\n", MaOutcome::NotFound), "NF\r\n");
    assert_eq!(ma(b"ma n1 C1 q\r\n", MaOutcome::Exists), "EX\r\n");
    assert_eq!(
        ma(b"ma AAEC b k\r\n", MaOutcome::NotFound),
        "NF kAAEC b\r\n"
    );
    assert_eq!(ma(b"ma n N0\r\n", MaOutcome::NotStored), "NS\r\n");

    let mut out = Vec::new();
    let info = MeInfo {
        key: b"foo",
        exp: -1,
        last_access: 0,
        cas: 53,
        fetched: false,
        class: 1,
        size: 64,
        ..MeInfo::default()
    };
    encode_me(&mut out, Some(&info));
    encode_me(&mut out, None);
    encode_mn(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ME foo exp=-1 la=0 cas=53 fetch=no cls=1 size=64\r\nEN\r\nMN\r\n"
    );
}

#[test]
fn meta_pipeline_with_quiet_gets() {
    // The usual quiet pipeline: several mg q then mn as end marker.
    let buf = b"mg a v q O1\r\nmg b v q O2\r\nmg c v q O3\r\nmn\r\n";
    assert_eq!(
        pipeline(buf, &Limits::default()),
        [
            "mg a v q O1\r\n",
            "mg b v q O2\r\n",
            "mg c v q O3\r\n",
            "mn\r\n"
        ]
    );
}
