//! The index under growth, deletes and incremental migration.

use super::super::StoreOutcome;
use super::*;

fn k(i: u32) -> Vec<u8> {
    format!("index-key-{i}").into_bytes()
}

#[test]
fn grows_incrementally_and_finds_every_key() {
    let mut s = store(64 << 20, Policy::Clock);
    let mut saw_migration = false;
    for i in 0..200_000u32 {
        assert!(matches!(
            s.set(hk(&k(i)), &i.to_le_bytes(), 0, 0),
            StoreOutcome::Stored { .. }
        ));
        saw_migration |= s.stats().hash_is_expanding;
        if i % 20_000 == 0 {
            // Keys inserted before and during a migration stay visible.
            for j in (0..=i).step_by(997) {
                assert_eq!(
                    s.get(hk(&k(j))).unwrap().value,
                    j.to_le_bytes(),
                    "key {j} at {i}"
                );
            }
        }
    }
    assert!(saw_migration);
    for i in (0..200_000u32).step_by(2) {
        assert_eq!(s.delete(hk(&k(i))), super::super::DeleteOutcome::Deleted);
    }
    while s.crawl(4096).index_migrating {}
    assert!(!s.stats().hash_is_expanding);
    for i in 0..200_000u32 {
        let got = s.get(hk(&k(i))).map(|v| v.value.to_vec());
        if i % 2 == 0 {
            assert!(got.is_none(), "deleted key {i} still found");
        } else {
            assert_eq!(got.unwrap(), i.to_le_bytes());
        }
    }
    assert_eq!(s.len(), 100_000);
    // The table does not shrink (as memcached's); against the peak of 200k keys it holds
    // between 1 / 0.85 and 1.25 / 0.85 slots per key.
    let per_key = s.stats().hash_bytes as f64 / 4.0 / 200_000.0;
    assert!((1.17..1.5).contains(&per_key), "{per_key}");
}

#[test]
fn churn_of_deletes_and_inserts_keeps_lookups_working() {
    // Tombstones from constant churn are purged by same-size rebuilds.
    let mut s = store(16 << 20, Policy::Clock);
    for round in 0..40u32 {
        for i in 0..5_000u32 {
            s.set(hk(&k(round * 5_000 + i)), b"v", 0, 0);
        }
        if round > 0 {
            for i in 0..5_000u32 {
                s.delete(hk(&k((round - 1) * 5_000 + i)));
            }
        }
    }
    assert_eq!(s.len(), 5_000);
    for i in 0..5_000u32 {
        assert!(s.get(hk(&k(39 * 5_000 + i))).is_some());
    }
    assert!(
        s.stats().hash_bytes < 5_000 * 4 * 8,
        "{}",
        s.stats().hash_bytes
    );
}

/// The shards route a key by the top bits of its hash, so every key of one shard of
/// two shares its top bit: the home slot must not depend on it, or half the table
/// holds every key and lookups walk long runs (this made a 2-shard server 80x slower
/// at 300k items).
#[test]
fn keys_of_one_shard_spread_over_the_whole_table() {
    use super::super::index::Index;
    let mix = |i: u64| {
        let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 29;
        x.wrapping_mul(0xbf58_476d_1ce4_e5b9)
    };
    // Shard 0 of 2 (top bit clear), and shard 3 of 4.
    for (mask, set) in [(!(1u64 << 63), 0u64), (!(3u64 << 62), 3u64 << 62)] {
        let shard_hash = |i: u64| (mix(i) & mask) | set;
        let n = 300_000u32;
        let hashes: Vec<u64> = (0..n as u64).map(shard_hash).collect();
        let mut index = Index::new(4 * n + 2);
        for (i, &h) in hashes.iter().enumerate() {
            index.insert(h, i as u32 + 2, |x| hashes[x as usize - 2]);
        }
        while index.migrate(1 << 20, |x| hashes[x as usize - 2]) {}
        let probes: usize = (0..10_000u64)
            .map(|i| index.miss_probe_len(shard_hash(i + 1_000_000)))
            .sum();
        let mean = probes as f64 / 10_000.0;
        // Linear probing at load <= 0.85 misses in (1 + 1/(1-a)^2)/2 <= 22.7 slots.
        assert!(mean < 23.0, "a miss reads {mean} slots on average");
    }
}
