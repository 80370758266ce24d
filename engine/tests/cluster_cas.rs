//! CAS values are unique across the nodes of a cluster: they carry the node's
//! index as well as the shard's, so two nodes that both take a write of one
//! key (forwarding off here; a partition or an owner change in production)
//! never give two versions one CAS, and a `cas` never succeeds against a
//! version its `gets` did not see. Until 2026-12-04 every node's shard k made
//! the same values (`counter << 10 | k`); both tests fail on that code.

mod common;

use std::collections::HashMap;

use common::Conn;
use common::cluster::{Cluster, text};

/// Sends `set`s of `keys` in one pipeline and checks every reply.
fn set_all(c: &mut Conn, keys: &[String]) {
    let mut batch = Vec::new();
    for k in keys {
        batch.extend_from_slice(format!("set {k} 0 0 1\r\nv\r\n").as_bytes());
    }
    c.send(&batch);
    for k in keys {
        assert_eq!(text(&c.read_line()), "STORED\r\n", "set {k}");
    }
}

/// The CAS of each of `keys` (which must all be there), by `gets` of 50 at a time.
fn cas_of(c: &mut Conn, keys: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    for chunk in keys.chunks(50) {
        c.send(format!("gets {}\r\n", chunk.join(" ")).as_bytes());
        let reply = text(&c.read_through(b"END\r\n"));
        let cas: Vec<u64> = reply
            .lines()
            .filter_map(|l| l.strip_prefix("VALUE "))
            .map(|h| {
                h.split(' ')
                    .nth(3)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or_else(|| panic!("no cas in {h:?}"))
            })
            .collect();
        assert_eq!(cas.len(), chunk.len(), "{reply}");
        out.extend(cas);
    }
    out
}

#[test]
fn cas_values_made_by_different_nodes_never_collide() {
    let cluster = Cluster::start(3, &["--cluster-forward", "off"]);
    let mut made: HashMap<u64, String> = HashMap::new();
    for node in 0..3 {
        let keys: Vec<String> = (0..300).map(|i| format!("n{node}:k{i}")).collect();
        let mut c = cluster.connect(node);
        set_all(&mut c, &keys);
        for (cas, key) in cas_of(&mut c, &keys).into_iter().zip(keys) {
            if let Some(other) = made.insert(cas, key.clone()) {
                panic!("CAS {cas} given to {other} and to {key} (node n{node})");
            }
        }
    }
    assert_eq!(made.len(), 900);
}

#[test]
fn a_cas_from_one_node_does_not_match_another_nodes_version_of_the_key() {
    // Both nodes take a write of the key as their first write, so their
    // counters are in step: only the node's bits tell the versions apart.
    let cluster = Cluster::start(2, &["--cluster-forward", "off"]);
    let (mut a, mut b) = (cluster.connect(0), cluster.connect(1));
    let key = vec!["split".to_string()];
    set_all(&mut a, &key);
    let seen_on_a = cas_of(&mut a, &key)[0];
    b.send(b"set split 0 0 5\r\nother\r\n");
    assert_eq!(text(&b.read_line()), "STORED\r\n");
    assert_ne!(cas_of(&mut b, &key)[0], seen_on_a);
    // The client saw a's version; b's is another one: the cas must fail.
    b.send(format!("cas split 0 0 3 {seen_on_a}\r\nnew\r\n").as_bytes());
    assert_eq!(text(&b.read_line()), "EXISTS\r\n");
    b.send(b"get split\r\n");
    assert_eq!(
        text(&b.read_through(b"END\r\n")),
        "VALUE split 0 5\r\nother\r\nEND\r\n"
    );
}
