//! Regression: a store refused as too large unlinks the old item, as memcached
//! does. For a key another shard owns, the unlink was forwarded as `md <key> q`
//! and its `NF` (which `q` does not hide) reached the client when there was no
//! old item: one stray line after the `SERVER_ERROR`, which put every later
//! reply on the connection out of step.

mod common;
use common::{Server, show};

#[test]
fn a_refused_store_sends_exactly_one_reply_for_keys_of_every_shard() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let big = vec![b'v'; 2_000_000];
    // Sixteen keys cover both shards, whichever one this connection is on.
    for i in 0..16 {
        for (old, noreply, meta) in [
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, false, true),
        ] {
            let key = format!("refused:{i}");
            if old {
                c.set(&key, b"old");
            }
            let mut req = if meta {
                format!("ms {key} {}\r\n", big.len()).into_bytes()
            } else {
                let nr = if noreply { " noreply" } else { "" };
                format!("set {key} 0 0 {}{nr}\r\n", big.len()).into_bytes()
            };
            req.extend_from_slice(&big);
            req.extend_from_slice(b"\r\n");
            let want: &[u8] = if noreply {
                b""
            } else {
                b"SERVER_ERROR object too large for cache\r\n"
            };
            let got = c.round_trip(&req);
            assert_eq!(
                show(&got),
                show(want),
                "{key} old={old} noreply={noreply} meta={meta}"
            );
            assert_eq!(c.get(&key), None, "{key}: the old item must be unlinked");
        }
    }
}
