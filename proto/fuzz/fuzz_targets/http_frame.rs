//! Feeds arbitrary bytes to the HTTP port's request framing
//! (engine/src/shard/http/frame.rs, compiled here by path: it depends on httparse
//! alone, and pulling in the whole engine would build io_uring and the store under
//! libFuzzer for nothing) as a connection would: frame, consume, go on.
//!
//! Invariants: never panics; a complete request consumes at most what was given,
//! at least its head, and exactly head + Content-Length (its body is the last
//! `body.len()` bytes of what it consumed, and no more than the body bound); every
//! prefix of a complete request is incomplete or, only for a head that is not yet
//! whole, refused the same way; an incomplete answer's `need` is either unknown (0)
//! or more than was given and within the bounds; a refusal is one of the documented
//! statuses.
#![no_main]

#[allow(dead_code)]
#[path = "../../../engine/src/shard/http/frame.rs"]
mod frame;

use frame::{Frame, FrameLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let small = FrameLimits {
        max_header: 64,
        max_body: 8,
    };
    let default = FrameLimits {
        max_header: 8 << 10,
        max_body: 2 << 20,
    };
    for limits in [default, small] {
        walk(data, limits);
    }
});

fn walk(mut buf: &[u8], limits: FrameLimits) {
    while !buf.is_empty() {
        match frame::frame(buf, limits) {
            Frame::Complete { request, consumed } => {
                assert!(consumed <= buf.len(), "over-consumed");
                assert!(consumed > request.body.len(), "a request has a head");
                assert!(request.body.len() <= limits.max_body);
                assert_eq!(
                    request.body,
                    &buf[consumed - request.body.len()..consumed],
                    "the body is the end of what was consumed"
                );
                assert!(request.path.starts_with('/'));
                assert!(consumed - request.body.len() <= limits.max_header);
                for cut in [consumed - 1, consumed - request.body.len(), 1] {
                    if cut == 0 || cut >= consumed {
                        continue;
                    }
                    match frame::frame(&buf[..cut], limits) {
                        Frame::Incomplete { need } => {
                            assert!(need == 0 || need == consumed, "need {need} != {consumed}")
                        }
                        other => panic!("a prefix of a complete request gave {other:?}"),
                    }
                }
                buf = &buf[consumed..];
            }
            Frame::Incomplete { need } => {
                assert!(
                    need == 0 || need > buf.len(),
                    "need {need} <= {}",
                    buf.len()
                );
                return;
            }
            Frame::Refused(r) => {
                assert!(
                    matches!(r.status, 400 | 411 | 413 | 431),
                    "status {}",
                    r.status
                );
                return; // the connection closes
            }
        }
    }
}
