//! Feeds arbitrary bytes to the client-side reply parser: it must never panic,
//! never claim more than it was given, and iterate what it accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::client::{Reply, ReplyParse, parse_reply};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    while let ReplyParse::Complete { reply, consumed } = parse_reply(buf) {
        assert!(consumed > 0 && consumed <= buf.len());
        match reply {
            Reply::Values(v) => v.for_each(|v| assert!(v.data.len() <= consumed)),
            Reply::Stats(s) => s.for_each(|(n, _)| assert!(!n.is_empty())),
            Reply::Meta(m) => {
                let _ = (m.flags.cas(), m.flags.ttl(), m.flags.key(), m.value);
            }
            _ => {}
        }
        buf = &buf[consumed..];
    }
});
