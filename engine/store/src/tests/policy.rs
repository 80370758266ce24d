//! Eviction order of each policy, on one size class of 64 KiB pages with 7 chunks each.

use super::super::StoreOutcome;
use super::*;

const VAL: usize = 8000;

fn policy_store(policy: Policy, pages: usize) -> Store {
    let mut cfg = config(pages * (64 << 10), policy);
    cfg.slab_page_size = 64 << 10;
    cfg.max_item_size = 64 << 10;
    Store::new(cfg).unwrap()
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

/// Fills the store's only class to capacity without evicting; returns the item count.
fn fill(s: &mut Store) -> usize {
    s.set(hk(&key(0)), &[0; VAL], 0, 0);
    let cap = s.slab_stats()[0].chunks_per_page as usize * s.page_count();
    for i in 1..cap {
        assert!(matches!(
            s.set(hk(&key(i)), &[i as u8; VAL], 0, 0),
            StoreOutcome::Stored { .. }
        ));
    }
    assert_eq!(s.stats().evictions, 0);
    assert!(cap >= 10, "capacity {cap}");
    cap
}

fn present(s: &mut Store, n: usize) -> Vec<usize> {
    (0..n).filter(|&i| s.peek(hk(&key(i))).is_some()).collect()
}

#[test]
fn fifo_evicts_oldest_regardless_of_hits() {
    let mut s = policy_store(Policy::Fifo, 2);
    let n = fill(&mut s);
    for _ in 0..3 {
        s.get(hk(&key(0)));
    }
    s.set(hk(&key(n)), &[1; VAL], 0, 0);
    assert_eq!(s.stats().evictions, 1);
    assert!(s.peek(hk(&key(0))).is_none());
    s.set(hk(&key(n + 1)), &[1; VAL], 0, 0);
    assert!(s.peek(hk(&key(1))).is_none());
}

#[test]
fn lru_protects_items_hit_twice_and_evicts_cold_tail() {
    let mut s = policy_store(Policy::Lru, 2);
    let n = fill(&mut s);
    s.get(hk(&key(0)));
    s.get(hk(&key(0))); // second hit: active
    s.get(hk(&key(1))); // one hit only: not active
    s.set(hk(&key(n)), &[1; VAL], 0, 0);
    assert!(s.peek(hk(&key(0))).is_some(), "active item moved to warm");
    assert!(
        s.peek(hk(&key(1))).is_none(),
        "oldest inactive item evicted from cold"
    );
    let mut evicted = vec![];
    for j in 1..4 {
        s.set(hk(&key(n + j)), &[1; VAL], 0, 0);
        evicted = (0..n)
            .filter(|&i| s.peek(hk(&key(i))).is_none())
            .collect::<Vec<_>>();
    }
    assert_eq!(evicted, vec![1, 2, 3, 4], "cold tail in insertion order");
}

#[test]
fn clock_gives_referenced_items_a_second_chance() {
    let mut s = policy_store(Policy::Clock, 2);
    let n = fill(&mut s);
    s.get(hk(&key(0)));
    s.get(hk(&key(2)));
    s.set(hk(&key(n)), &[1; VAL], 0, 0);
    assert!(s.peek(hk(&key(0))).is_some());
    assert!(s.peek(hk(&key(1))).is_none());
    s.set(hk(&key(n + 1)), &[1; VAL], 0, 0);
    assert!(s.peek(hk(&key(2))).is_some(), "referenced: skipped once");
    assert!(s.peek(hk(&key(3))).is_none());
}

#[test]
fn lfu_keeps_frequent_items_and_decays() {
    let mut s = policy_store(Policy::Lfu, 2);
    let n = fill(&mut s);
    for _ in 0..300 {
        s.get(hk(&key(3)));
    }
    for j in 0..n - 1 {
        s.set(hk(&key(n + j)), &[1; VAL], 0, 0);
    }
    let left = present(&mut s, n);
    assert_eq!(
        left,
        vec![3],
        "only the frequent item survives a full turnover"
    );
}

#[test]
fn s3fifo_small_queue_promotion_and_ghost() {
    let mut s = policy_store(Policy::S3fifo, 3);
    let n = fill(&mut s);
    s.get(hk(&key(0)));
    s.set(hk(&key(n)), &[1; VAL], 0, 0);
    assert!(
        s.peek(hk(&key(0))).is_some(),
        "hit in small: promoted to main"
    );
    assert!(
        s.peek(hk(&key(1))).is_none(),
        "one-hit wonder evicted from small"
    );
    // key 1 is in the ghost: re-inserted, it goes straight to main and outlives
    // newer small items.
    s.set(hk(&key(1)), &[1; VAL], 0, 0);
    for j in 1..4 {
        s.set(hk(&key(n + j)), &[1; VAL], 0, 0);
    }
    assert!(s.peek(hk(&key(1))).is_some(), "ghost hit admitted to main");
    assert!(s.peek(hk(&key(2))).is_none() && s.peek(hk(&key(3))).is_none());
}

#[test]
fn random_evicts_some_item_and_stays_within_capacity() {
    let mut s = policy_store(Policy::Random, 2);
    let n = fill(&mut s);
    for j in 0..10 {
        s.set(hk(&key(n + j)), &[1; VAL], 0, 0);
    }
    assert_eq!(s.stats().curr_items as usize, n);
    assert_eq!(s.stats().evictions, 10);
    // Not FIFO: FIFO would have kept exactly keys 10..n.
    assert_ne!(present(&mut s, n), (10..n).collect::<Vec<_>>());
}
