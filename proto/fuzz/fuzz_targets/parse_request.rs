//! Feeds arbitrary bytes to the request parser as a server would: parse, act on
//! the outcome, move on; and checks the invariants on every step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{Limits, Parse, parse};

fuzz_target!(|data: &[u8]| {
    // Small limits reach the guards and the too-large path with short inputs.
    let small = Limits {
        max_item_size: 64,
        max_line_len: 128,
        max_get_line_len: 512,
        ..Limits::default()
    };
    for limits in [Limits::default(), small] {
        walk(data, &limits);
    }
});

fn walk(mut buf: &[u8], limits: &Limits) {
    let roomy = Limits {
        max_line_len: usize::MAX / 4,
        max_get_line_len: usize::MAX / 4,
        max_item_size: usize::MAX / 4,
        ..*limits
    };
    let mut skip = 0usize;
    loop {
        if skip > 0 {
            let n = skip.min(buf.len());
            buf = &buf[n..];
            skip -= n;
            if skip > 0 {
                return;
            }
        }
        match parse(buf, limits) {
            Parse::Complete { request, consumed } => {
                assert!(consumed > 0 && consumed <= buf.len());
                // Round trip: what parsed re-encodes to bytes that parse back to
                // the same request, and whose encoding is stable.
                let mut wire = Vec::new();
                request.encode(&mut wire);
                match parse(&wire, &roomy) {
                    Parse::Complete { request: again, consumed } => {
                        assert_eq!(again, request);
                        assert_eq!(consumed, wire.len());
                        let mut wire2 = Vec::new();
                        again.encode(&mut wire2);
                        assert_eq!(wire, wire2);
                    }
                    other => panic!("re-parse of {wire:?}: {other:?}"),
                }
                // Split anywhere before the end: incomplete, with an honest hint.
                let cut = consumed / 2;
                match parse(&buf[..cut], limits) {
                    Parse::Incomplete { more } => {
                        assert!(more.is_none_or(|m| m > 0 && cut + m <= consumed));
                    }
                    other => panic!("prefix {cut} of a complete request: {other:?}"),
                }
                buf = &buf[consumed..];
            }
            Parse::Invalid(inv) => {
                assert!(inv.consumed > 0 && inv.consumed <= buf.len());
                if inv.close {
                    return;
                }
                buf = &buf[inv.consumed..];
                skip = inv.swallow;
            }
            Parse::Incomplete { more } => {
                if let Some(m) = more {
                    assert!(m > 0);
                }
                return;
            }
        }
    }
}
