//! `--key-owner`: a run keeps to the keys the cluster's ring places on one node,
//! prefill included, checked against a real memcached's item count.

mod common;

use std::process::Command;

use common::{BIN, memcached, run, stats, words};
use loadgen::workload::{KeyOwner, KeySpace};

const PEERS: &str = "a=127.0.0.1:20001,b=127.0.0.1:20002,c=127.0.0.1:20003";

#[test]
fn prefill_and_draws_keep_to_the_owners_keys() {
    let Some(mc) = memcached(false) else { return };
    let r = run(
        mc.addr,
        &words(&format!(
            "--conns 4 --keys 3000 --key-size 8 --prefill --ratio 1:0 --duration 1s --warmup 0s \
             --key-owner b --cluster-peers {PEERS}"
        )),
    );
    let owner = KeyOwner {
        node: "b".into(),
        peers: PEERS.into(),
        ring: "libketama".into(),
    };
    let owned = owner.owned(3000, 8).unwrap();
    assert!(matches!(owned, KeySpace::Subset(_)));
    // Exactly b's keys were set, and every get asked for one of them.
    assert_eq!(stats(mc.addr)["curr_items"], owned.len());
    assert!(r.counters.gets > 1000, "{:?}", r.counters);
    assert_eq!(r.counters.misses, 0, "{:?}", r.counters);
    assert_eq!(r.workload.key_owner, Some(owner));
}

#[test]
fn a_bad_owner_is_refused_with_its_reason() {
    let out = Command::new(BIN)
        .args(words(&format!(
            "run --target 127.0.0.1:1 --key-owner z --cluster-peers {PEERS}"
        )))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--key-owner") && err.contains("`z`"), "{err}");
    let out = Command::new(BIN)
        .args(words("run --target 127.0.0.1:1 --key-owner a"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--cluster-peers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
