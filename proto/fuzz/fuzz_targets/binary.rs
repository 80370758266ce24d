//! Feeds arbitrary bytes to the binary request parser as a server would: parse,
//! act on the outcome, move on; and checks the invariants on every step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::Limits;
use proto::binary::{BinParse, HEADER_LEN, parse};

fuzz_target!(|data: &[u8]| {
    // Small limits reach the too-large and key-length paths with short inputs.
    let small = Limits {
        max_item_size: 16,
        max_key_len: 8,
        ..Limits::default()
    };
    for limits in [Limits::default(), small] {
        walk(data, &limits);
    }
});

fn walk(mut buf: &[u8], limits: &Limits) {
    let mut skip = 0usize;
    loop {
        let n = skip.min(buf.len());
        buf = &buf[n..];
        skip -= n;
        if skip > 0 || buf.is_empty() {
            return;
        }
        match parse(buf, limits) {
            BinParse::Complete { request, consumed } => {
                let bodylen = u32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
                assert_eq!(consumed, HEADER_LEN + bodylen);
                assert!(consumed <= buf.len());
                // Round trip: the request re-encodes to the same packet (but for
                // the ignored data type and vbucket), which parses back equal.
                let mut wire = Vec::new();
                request.encode(&mut wire);
                assert_eq!(wire.len(), consumed);
                assert_eq!(&wire[..5], &buf[..5]);
                assert_eq!(&wire[8..], &buf[8..consumed]);
                assert_eq!(parse(&wire, limits), BinParse::Complete { request, consumed });
                // Any prefix is incomplete, with an honest hint.
                let cut = consumed / 2;
                match parse(&buf[..cut], limits) {
                    BinParse::Incomplete { more: Some(m) } => {
                        assert!(m > 0 && cut + m <= consumed)
                    }
                    other => panic!("prefix {cut} of a complete request: {other:?}"),
                }
                buf = &buf[consumed..];
            }
            BinParse::Invalid(inv) => {
                assert!(inv.consumed > 0 && inv.consumed <= buf.len());
                if inv.close {
                    return;
                }
                assert!(inv.reply.is_some(), "a kept connection is told why");
                buf = &buf[inv.consumed..];
                skip = inv.swallow;
            }
            BinParse::Incomplete { more } => {
                assert!(more.is_some_and(|m| m > 0));
                return;
            }
        }
    }
}
