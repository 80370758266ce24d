//! `run --cluster ketama` over several `--target`s: every key goes to the server
//! the ketama ring names, checked against three real memcached servers' item
//! counts; and the flag combinations it refuses.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use cluster::{Ring, RingKind};
use common::{BIN, memcached, stats, words};
use loadgen::workload::write_key;

/// How many of keys `0..keys` the ring over `servers` (in order) places on each.
fn expected(servers: &[SocketAddr], keys: u64, key_size: usize) -> Vec<u64> {
    let ring = Ring::new(&loadgen::client::ring_members(servers), RingKind::Libketama).unwrap();
    let mut counts = vec![0; servers.len()];
    let mut k = Vec::new();
    for i in 0..keys {
        k.clear();
        write_key(&mut k, i, key_size);
        counts[ring.node_of(&k)] += 1;
    }
    counts
}

#[test]
fn every_key_goes_to_its_ketama_owner() {
    let servers: Vec<_> = (0..3).filter_map(|_| memcached(false)).collect();
    if servers.len() < 3 {
        return;
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let mut args = vec!["run".to_string()];
    for a in &addrs {
        args.extend(["--target".to_string(), a.to_string()]);
    }
    args.extend(
        words(
            "--cluster ketama --no-progress --no-pin --conns 6 --depth 4 --keys 3000 --key-size 8 \
             --prefill --ratio 1:0 --duration 1s --warmup 0s",
        )
        .iter()
        .map(|s| s.to_string()),
    );
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    // Every get hit: each key was read where it was prefilled.
    assert!(
        table.contains("hit ratio 100.0%") && table.contains("errors: none"),
        "{table}"
    );
    let want = expected(&addrs, 3000, 8);
    let got: Vec<u64> = addrs.iter().map(|&a| stats(a)["curr_items"]).collect();
    assert_eq!(got, want);
    assert!(want.iter().all(|&n| n > 500), "{want:?}");
    // Gets spread over all three (cmd_get counts each server's share).
    for a in &addrs {
        assert!(stats(*a)["cmd_get"] > 100, "{a}");
    }
}

#[test]
fn cluster_flag_combinations_that_cannot_work_are_refused() {
    let refused = |args: &str, says: &str| {
        let out = Command::new(BIN).args(words(args)).output().unwrap();
        assert!(!out.status.success(), "{args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args}: {err}");
    };
    refused(
        "run --target 127.0.0.1:1 --target 127.0.0.1:2",
        "--cluster ketama",
    );
    refused(
        "run --target 127.0.0.1:1 --target 127.0.0.1:2 --cluster ketama --mget 2",
        "--mget",
    );
    refused(
        "run --target 127.0.0.1:1 --target 127.0.0.1:2 --cluster ketama --conns 3 --cores 0,1",
        "one per target",
    );
    refused(
        "run --target 127.0.0.1:1 --target 127.0.0.1:2 --cluster ketama --server-stats",
        "--stats-addr",
    );
}
