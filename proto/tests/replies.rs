//! Server-side encoders and the client-side reply parser, as (bytes, expected)
//! rows; the byte strings are what memcached 1.6.18 sent for the same cases.

use proto::client::{MetaCode, Reply, ReplyError, ReplyParse, parse_reply};
use proto::reply::{
    AdminReply, ErrorReply, Status, encode_end, encode_number, encode_stat, encode_stat_fmt,
    encode_stat_u64, encode_value, encode_version,
};
use proto::{ClientError, ErrorMessage, ServerError};

#[test]
fn encoders() {
    let mut out = Vec::new();
    encode_value(&mut out, b"foo", 0, b"hi", None);
    encode_value(&mut out, b"n", 0, b"2", Some(60));
    encode_end(&mut out);
    assert_eq!(
        out,
        b"VALUE foo 0 2\r\nhi\r\nVALUE n 0 1 60\r\n2\r\nEND\r\n"
    );
    out.clear();
    for s in Status::ALL {
        s.encode(&mut out);
    }
    assert_eq!(
        out,
        b"STORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\nDELETED\r\nTOUCHED\r\nOK\r\nEND\r\nRESET\r\n"
    );
    out.clear();
    encode_number(&mut out, 18446744073709551615);
    encode_version(&mut out, "1.6.18");
    encode_stat(&mut out, b"version", b"1.6.18");
    encode_stat_u64(&mut out, b"curr_items", 3);
    encode_stat_fmt(&mut out, b"rusage_user", format_args!("{}.{:06}", 0, 1234));
    assert_eq!(
        out,
        b"18446744073709551615\r\nVERSION 1.6.18\r\nSTAT version 1.6.18\r\nSTAT curr_items 3\r\nSTAT rusage_user 0.001234\r\n"
    );
    out.clear();
    let errors = [
        (ErrorReply::Error, "ERROR\r\n"),
        (
            ClientError::BadDataChunk.into(),
            "CLIENT_ERROR bad data chunk\r\n",
        ),
        (
            ServerError::ObjectTooLarge.into(),
            "SERVER_ERROR object too large for cache\r\n",
        ),
        (
            ServerError::OutOfMemoryStoring.into(),
            "SERVER_ERROR out of memory storing object\r\n",
        ),
        (
            ClientError::NonNumericValue.into(),
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (
            ErrorMessage::ShutdownNotEnabled.into(),
            "ERROR: shutdown not enabled\r\n",
        ),
    ];
    for (e, want) in errors {
        out.clear();
        e.encode(&mut out);
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
    out.clear();
    AdminReply::ReassignNoSpare.encode(&mut out);
    AdminReply::MemlimitTooSmall.encode(&mut out);
    assert_eq!(
        out,
        b"NOSPARE source class has no spare pages\r\nMEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    );
}

#[test]
fn every_error_text_is_one_line() {
    for c in ClientError::ALL {
        assert!(!c.reason().contains(['\r', '\n']));
    }
    for s in ServerError::ALL {
        assert!(!s.reason().contains(['\r', '\n']));
    }
    for m in ErrorMessage::ALL {
        assert!(m.line().starts_with("ERROR"));
    }
}

fn whole(buf: &[u8]) -> Reply<'_> {
    match parse_reply(buf) {
        ReplyParse::Complete { reply, consumed } => {
            assert_eq!(consumed, buf.len(), "{:?}", String::from_utf8_lossy(buf));
            reply
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn parse_values() {
    let Reply::Values(v) = whole(b"VALUE foo 0 2\r\nhi\r\nVALUE n 5 1 60\r\n\n\r\nEND\r\n") else {
        panic!()
    };
    let v: Vec<_> = v.collect();
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0].key, v[0].flags, v[0].data, v[0].cas),
        (&b"foo"[..], 0, &b"hi"[..], None)
    );
    assert_eq!(
        (v[1].key, v[1].flags, v[1].data, v[1].cas),
        (&b"n"[..], 5, &b"\n"[..], Some(60))
    );
    let Reply::Values(v) = whole(b"END\r\n") else {
        panic!()
    };
    assert_eq!(v.count(), 0);
    // Incomplete at every cut, with an exact hint inside a data block.
    let full = b"VALUE foo 0 5\r\nhello\r\nEND\r\n";
    for cut in 0..full.len() {
        match parse_reply(&full[..cut]) {
            ReplyParse::Incomplete { more } => {
                if let Some(m) = more {
                    assert!(cut + m <= full.len());
                }
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    assert_eq!(
        parse_reply(b"VALUE foo 0 5\r\nhe"),
        ReplyParse::Incomplete { more: Some(5) }
    );
}

#[test]
fn parse_lines() {
    let rows: &[(&[u8], Reply)] = &[
        (b"STORED\r\n", Reply::Status(Status::Stored)),
        (b"NOT_FOUND\r\n", Reply::Status(Status::NotFound)),
        (b"RESET\r\n", Reply::Status(Status::Reset)),
        (b"42\r\n", Reply::Number(42)),
        (b"VERSION 1.6.18\r\n", Reply::Version(b"1.6.18")),
        (b"ERROR\r\n", Reply::Error),
        (
            b"CLIENT_ERROR bad data chunk\r\n",
            Reply::ClientError(b"bad data chunk"),
        ),
        (
            b"SERVER_ERROR out of memory\r\n",
            Reply::ServerError(b"out of memory"),
        ),
        (
            b"ERROR: shutdown not enabled\r\n",
            Reply::Other(b"ERROR: shutdown not enabled"),
        ),
        (
            b"BUSY currently processing reassign request\r\n",
            Reply::Other(b"BUSY currently processing reassign request"),
        ),
    ];
    for (buf, want) in rows {
        assert_eq!(&whole(buf), want);
    }
    let Reply::Stats(s) = whole(b"STAT pid 1\r\nSTAT version 1.6.18\r\nEND\r\n") else {
        panic!()
    };
    assert_eq!(
        s.collect::<Vec<_>>(),
        [(&b"pid"[..], &b"1"[..]), (b"version", b"1.6.18")]
    );
}

#[test]
fn parse_meta() {
    let Reply::Meta(m) = whole(b"VA 2 s2 t-1 f0 c33 kfoo O123 h1 l1\r\nhi\r\n") else {
        panic!()
    };
    assert_eq!(m.code, MetaCode::Va);
    assert_eq!(m.value, Some(&b"hi"[..]));
    let f = m.flags;
    assert_eq!(
        (f.size(), f.ttl(), f.client_flags(), f.cas()),
        (Some(2), Some(-1), Some(0), Some(33))
    );
    assert_eq!(
        (f.key(), f.opaque(), f.hit(), f.last_access()),
        (Some(&b"foo"[..]), Some(&b"123"[..]), Some(true), Some(1))
    );
    let Reply::Meta(m) = whole(b"VA 1 kAAEC b X W\r\nx\r\n") else {
        panic!()
    };
    assert!(m.flags.base64() && m.flags.stale() && m.flags.won() && !m.flags.win_sent());
    for (buf, code) in [
        (&b"HD\r\n"[..], MetaCode::Hd),
        (b"EN\r\n", MetaCode::En),
        (b"NF kAAEC b\r\n", MetaCode::Nf),
        (b"NS kn5 O9 c0\r\n", MetaCode::Ns),
        (b"EX\r\n", MetaCode::Ex),
        (b"MN\r\n", MetaCode::Mn),
        (
            b"ME foo exp=-1 la=0 cas=53 fetch=no cls=1 size=64\r\n",
            MetaCode::Me,
        ),
    ] {
        let Reply::Meta(m) = whole(buf) else { panic!() };
        assert_eq!(m.code, code);
        assert_eq!(m.value, None);
    }
}

#[test]
fn parse_errors() {
    let rows: &[(&[u8], ReplyError)] = &[
        (b"VALUE foo x 2\r\nhi\r\nEND\r\n", ReplyError::BadLine),
        (b"VALUE foo 0\r\n", ReplyError::BadLine),
        (b"VALUE foo 0 2 1 1\r\nhi\r\n", ReplyError::BadLine),
        (
            b"VALUE foo 0 2\r\nhiXXEND\r\n",
            ReplyError::BadDataTerminator,
        ),
        (b"VALUE foo 0 2\r\nhi\r\nSTORED\r\n", ReplyError::Unexpected),
        (b"STAT pid 1\r\nVALUE\r\n", ReplyError::Unexpected),
        (b"STAT pid\r\nEND\r\n", ReplyError::BadLine),
        (b"STORED\n", ReplyError::BareNewline),
        (b"VA x\r\n", ReplyError::BadLine),
        (b"VA 2 9\r\nhi\r\n", ReplyError::BadLine),
        (b"MN x\r\n", ReplyError::BadLine),
        (b"VA 2\r\nhiXX", ReplyError::BadDataTerminator),
        (b"VA 99999999999999999999999\r\n", ReplyError::BadLine),
    ];
    for (buf, e) in rows {
        assert_eq!(
            parse_reply(buf),
            ReplyParse::Invalid(*e),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
    let long = vec![b'x'; proto::client::MAX_REPLY_LINE + 2];
    assert_eq!(
        parse_reply(&long),
        ReplyParse::Invalid(ReplyError::LineTooLong)
    );
}
