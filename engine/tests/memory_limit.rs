//! A full cache: by default the oldest items are evicted and every store
//! succeeds; with -M stores are refused with memcached's error and the
//! connection stays usable. Keys of both shards, so remote refusals too.

mod common;
use common::{Server, stat};

#[test]
fn a_full_cache_evicts_and_keeps_answering() {
    let server = Server::start(&["-t", "2", "-m", "8"]);
    let mut c = server.connect();
    let value = |i: usize| vec![b'a' + (i % 26) as u8; 50_000];
    // 20 MB into 8 MB.
    for i in 0..400 {
        c.set(&format!("full:{i}"), &value(i));
    }
    let s = c.stats("");
    assert!(stat(&s, "evictions") > 0, "no evictions");
    assert!(stat(&s, "curr_items") < 400);
    assert!(stat(&s, "bytes") <= stat(&s, "limit_maxbytes"));
    // The newest items are all there, byte-exact.
    for i in 380..400 {
        assert_eq!(c.get(&format!("full:{i}")), Some(value(i)), "full:{i}");
    }
}

/// -M with each eviction policy: stores are refused once memory is full,
/// nothing stored is lost, and deleting makes room again.
fn refuses_stores_when_full(policy: &str) {
    let server = Server::start(&["-t", "2", "-m", "8", "-M", "--eviction", policy]);
    let mut c = server.connect();
    let value = vec![b'm'; 50_000];
    let mut stored = Vec::new();
    let mut refused = 0;
    for i in 0..400 {
        let key = format!("nomem:{i}");
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        match c.round_trip(&req).as_slice() {
            b"STORED\r\n" => stored.push(key),
            b"SERVER_ERROR out of memory storing object\r\n" => refused += 1,
            other => panic!("{key}: {:?}", String::from_utf8_lossy(other)),
        }
    }
    assert!(
        refused > 0 && !stored.is_empty(),
        "stored {} refused {refused}",
        stored.len()
    );
    let s = c.stats("");
    assert_eq!(stat(&s, "evictions"), 0);
    assert_eq!(stat(&s, "curr_items"), stored.len() as u64);
    // Nothing stored was lost.
    for k in &stored {
        assert_eq!(c.get(k).as_deref(), Some(&value[..]), "{k}");
    }
    // Deleting makes room again (on both shards).
    for k in &stored {
        assert_eq!(
            c.round_trip(format!("delete {k}\r\n").as_bytes()),
            b"DELETED\r\n"
        );
    }
    for i in 0..20 {
        c.set(&format!("again:{i}"), &value);
    }
}

#[test]
fn with_dash_capital_m_a_full_cache_refuses_stores() {
    for policy in ["lru", "clock", "lfu", "fifo", "random"] {
        refuses_stores_when_full(policy);
    }
}

/// Regression: under -M the allocator used to ask S3-FIFO for a victim and
/// then decline it; the victim search had already popped it from the small
/// queue, the queue's count drifted, and a later delete panicked the shard.
/// S3-FIFO is the default policy.
#[test]
fn with_dash_capital_m_s3fifo_refuses_stores() {
    refuses_stores_when_full("s3fifo");
}
