//! The memory limit, eviction under pressure, page rebalancing and small limits.

use proptest::prelude::*;

use super::super::{StoreMode, StoreOutcome};
use super::*;

#[test]
fn evicts_instead_of_failing_when_full() {
    let mut s = store(4 << 20, Policy::Clock);
    for i in 0..100_000u32 {
        let out = s.set(hk(format!("key:{i}").as_bytes()), &[7; 100], 0, 0);
        assert!(matches!(out, StoreOutcome::Stored { .. }), "{i}: {out:?}");
        assert!(s.used_bytes() <= 4 << 20);
    }
    let st = s.stats();
    assert!(st.evictions > 0);
    assert_eq!(st.curr_items + st.evictions, 100_000);
    assert!(s.get(hk(b"key:99999")).is_some());
}

#[test]
fn evictions_are_recorded_only_while_asked_for_and_bounded() {
    let mut s = store(4 << 20, Policy::Clock);
    let fill = |s: &mut Store, from: u32, n: u32| {
        for i in from..from + n {
            s.set(hk(format!("key:{i}").as_bytes()), &[7; 100], 0, 0);
        }
    };
    fill(&mut s, 0, 60_000);
    assert!(s.stats().evictions > 0);
    assert!(s.take_evictions().is_empty(), "not asked for");
    s.record_evictions(true);
    let before = s.stats().evictions;
    fill(&mut s, 60_000, 200);
    let got = s.take_evictions();
    assert_eq!(got.len() as u64, s.stats().evictions - before);
    let e = &got[0];
    assert!(e.key.starts_with(b"key:") && e.value_len == 100 && e.ttl == -1 && !e.fetched);
    assert!(e.class_id >= 1);
    fill(&mut s, 70_000, 20_000);
    assert_eq!(s.take_evictions().len(), crate::EVICTIONS_KEPT, "bounded");
    s.record_evictions(false);
    fill(&mut s, 90_000, 1000);
    assert!(s.take_evictions().is_empty());
}

#[test]
fn every_policy_respects_the_limit() {
    for p in Policy::ALL {
        let mut s = store(3 << 20, p);
        for i in 0..60_000u32 {
            let len = (i as usize * 7919) % 3000;
            let out = s.set(hk(format!("k{i}").as_bytes()), &vec![1; len], 0, 0);
            assert!(
                matches!(out, StoreOutcome::Stored { .. }),
                "{p:?} {i}: {out:?}"
            );
        }
        assert!(s.used_bytes() <= s.arena_bytes() && s.arena_bytes() <= 3 << 20);
        assert!(s.stats().evictions > 0, "{p:?}");
        assert!(s.get(hk(b"k59999")).is_some(), "{p:?}");
    }
}

/// memcached's -M: when memory is full a store fails with OutOfMemory and
/// nothing live is evicted, under every policy (a policy asked for a victim
/// that is then kept would corrupt its queues); expired items are reclaimed
/// by the crawler and make room again.
#[test]
fn without_evictions_full_memory_fails_stores_and_keeps_every_item() {
    for p in Policy::ALL {
        let mut s = Store::new(StoreConfig {
            memory_limit: 2 << 20,
            eviction: p,
            evictions: false,
            hugepages: HugePages::Off,
            ..StoreConfig::default()
        })
        .unwrap();
        s.set_time(10);
        let mut stored = Vec::new();
        let mut refused = 0;
        for i in 0..40_000u32 {
            let key = format!("m{i}");
            match s.set(hk(key.as_bytes()), &[3; 100], 0, 30) {
                StoreOutcome::Stored { .. } => stored.push(key),
                StoreOutcome::OutOfMemory => refused += 1,
                other => panic!("{p:?} {i}: {other:?}"),
            }
        }
        assert!(refused > 0, "{p:?}: 2 MiB cannot hold 40,000 items");
        assert_eq!(s.stats().evictions, 0, "{p:?}");
        for key in &stored {
            assert!(
                s.get(hk(key.as_bytes())).is_some(),
                "{p:?}: {key} was stored and must stay"
            );
        }
        // Everything expires; the crawler gives the memory back.
        s.set_time(100);
        for _ in 0..64 {
            s.crawl(4096);
        }
        assert!(
            matches!(
                s.set(hk(b"after"), &[4; 100], 0, 0),
                StoreOutcome::Stored { .. }
            ),
            "{p:?}: expired items were not reclaimed"
        );
    }
}

/// Fill with 100-byte values, then switch to 10 KB values only: pages move to the
/// 10 KB class and a working set that fits reaches a hit ratio above 90%.
#[test]
fn pages_move_when_the_size_mix_shifts() {
    for p in [Policy::default(), Policy::Lru, Policy::Clock] {
        let limit = 16 << 20;
        let mut s = store(limit, p);
        for i in 0..200_000u32 {
            s.set(hk(format!("small:{i}").as_bytes()), &[1; 100], 0, 0);
        }
        assert!(s.stats().evictions > 0, "small items filled memory");
        s.set_time(s.now() + 300);
        let big = vec![2u8; 10_000];
        // 60% of memory in 10 KB items.
        let working = limit * 6 / 10 / 10_240;
        let mut rng = 12345u64;
        let (mut hits, mut gets) = (0u64, 0u64);
        for op in 0..60_000u32 {
            if op % 500 == 0 {
                s.set_time(s.now() + 1);
            }
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = format!("big:{}", (rng >> 33) as usize % working);
            let hit = s.get(hk(k.as_bytes())).is_some();
            if op >= 40_000 {
                gets += 1;
                hits += hit as u64;
            }
            if !hit {
                s.set(hk(k.as_bytes()), &big, 0, 0);
            }
        }
        let ratio = hits as f64 / gets as f64;
        assert!(ratio > 0.9, "{p:?}: hit ratio {ratio:.3} after the shift");
        assert!(s.stats().slabs_moved > 0);
    }
}

#[test]
fn small_limit_with_many_sizes_still_stores() {
    let mut s = store(2 << 20, Policy::default());
    let mut stored = 0;
    for i in 0..20_000u32 {
        let len = (i as usize * 104_729) % 60_000;
        if let StoreOutcome::Stored { .. } =
            s.set(hk(format!("k{i}").as_bytes()), &vec![3; len], 0, 0)
        {
            stored += 1;
        }
        assert!(s.used_bytes() <= 2 << 20);
    }
    assert!(stored > 19_000, "stored {stored} of 20000");
}

#[derive(Clone, Debug)]
enum Op {
    Set(u16, usize),
    Append(u16, usize),
    Delete(u16),
    Get(u16),
    Incr(u16),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..400, 0usize..20_000).prop_map(|(k, l)| Op::Set(k, l)),
        1 => (0u16..400, 0usize..3_000).prop_map(|(k, l)| Op::Append(k, l)),
        1 => (0u16..400).prop_map(Op::Delete),
        3 => (0u16..400).prop_map(Op::Get),
        1 => (0u16..400).prop_map(Op::Incr),
        1 => Just(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Under a random workload the arena never exceeds its limit, and every key the
    /// store claims to hold reads back byte-exact (the model remembers the last value
    /// written; the store may have evicted it, but never returns anything else).
    #[test]
    fn limit_holds_and_values_read_back(ops in proptest::collection::vec(op(), 1..1500),
                                        policy in 0usize..6) {
        let policy = Policy::ALL[policy];
        let mut s = store(2 << 20, policy);
        let mut model: std::collections::HashMap<u16, Vec<u8>> = Default::default();
        let key = |k: u16| format!("key-{k}").into_bytes();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Set(k, len) => {
                    let v: Vec<u8> = (0..len).map(|i| (i + n) as u8).collect();
                    match s.set(hk(&key(k)), &v, k as u32, 0) {
                        StoreOutcome::Stored { .. } => { model.insert(k, v); }
                        _ => { model.remove(&k); }
                    }
                }
                Op::Append(k, len) => {
                    let v = vec![b'a'; len];
                    let out = s.store(StoreMode::Append, hk(&key(k)), 0, 0, &v, 0);
                    if let StoreOutcome::Stored { .. } = out {
                        model.get_mut(&k).expect("append hit a key the model lacks").extend(&v);
                    }
                }
                Op::Delete(k) => { s.delete(hk(&key(k))); model.remove(&k); }
                Op::Get(k) => {
                    if let Some(v) = s.get(hk(&key(k))) {
                        prop_assert_eq!(Some(v.value), model.get(&k).map(|m| &m[..]));
                        prop_assert_eq!(v.flags, k as u32);
                    }
                }
                Op::Incr(k) => {
                    if let super::super::ArithOutcome::Value { value, .. } = s.incr(hk(&key(k)), 1) {
                        model.insert(k, value.to_string().into_bytes());
                    }
                }
                Op::Tick => { let t = s.now(); s.set_time(t + 1); }
            }
            prop_assert!(s.used_bytes() <= s.arena_bytes());
            prop_assert!(s.arena_bytes() <= 2 << 20);
        }
        for (k, v) in &model {
            if let Some(got) = s.get(hk(&key(*k))) {
                prop_assert_eq!(got.value, &v[..]);
            }
        }
        prop_assert_eq!(s.stats().curr_items as usize, s.len());
    }
}
