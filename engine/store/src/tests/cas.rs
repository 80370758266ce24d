//! CAS values: the layout (a counter above a tag), uniqueness across stores with
//! different tags, and the Lamport clock (`observe_cas`) across them.

use std::collections::HashSet;

use super::super::{CasLayout, SHARD_BITS, StoreOutcome};
use super::*;

fn stored_cas(s: &mut Store, key: &[u8]) -> u64 {
    match s.set(hk(key), b"v", 0, 0) {
        StoreOutcome::Stored { cas } => cas,
        other => panic!("{other:?}"),
    }
}

fn tagged(tag: u64, tag_bits: u32) -> Store {
    Store::new(StoreConfig {
        cas_layout: Some(CasLayout { tag, tag_bits }),
        ..config(8 << 20, Policy::default())
    })
    .expect("store")
}

#[test]
fn the_default_layout_is_the_shard_id_in_ten_bits_and_starts_small() {
    let cfg = StoreConfig::default();
    assert_eq!(cfg.cas_layout, None);
    assert_eq!(
        cfg.cas_layout(),
        CasLayout {
            tag: 0,
            tag_bits: 10
        }
    );
    assert_eq!(SHARD_BITS, 10);
    let mut s = small();
    assert_eq!(stored_cas(&mut s, b"a"), 1 << 10);
    assert_eq!(stored_cas(&mut s, b"b"), 2 << 10);
    let mut s = Store::new(StoreConfig {
        shard_id: 5,
        ..config(8 << 20, Policy::default())
    })
    .unwrap();
    assert_eq!(s.cas_layout(), CasLayout::shard(5));
    assert_eq!(stored_cas(&mut s, b"a"), (1 << 10) | 5);
}

#[test]
fn stores_with_different_tags_never_make_one_cas_value() {
    // Node 0 and node 1, shard 0 of each, in a 14-bit tag (7 node + 7 shard
    // bits): their counters run in step, as two nodes' clocks may.
    let mut a = tagged(0, 14);
    let mut b = tagged(1 << 7, 14);
    let mut seen = HashSet::new();
    for i in 0..2000 {
        let k = format!("k{i}");
        for s in [&mut a, &mut b] {
            let cas = stored_cas(s, k.as_bytes());
            assert!(seen.insert(cas), "{cas} made twice (key {k})");
        }
    }
    // The Lamport clock keeps them apart too: each observes the other's value.
    for i in 0..500 {
        let k = format!("o{i}");
        let ca = stored_cas(&mut a, k.as_bytes());
        b.observe_cas(ca);
        let cb = stored_cas(&mut b, k.as_bytes());
        a.observe_cas(cb);
        assert!(
            seen.insert(ca) && seen.insert(cb),
            "{ca} or {cb} made twice"
        );
    }
}

#[test]
fn a_value_observed_from_another_tag_orders_before_the_next_one_made() {
    let mut a = tagged(3, 14);
    let mut b = tagged(1 << 7, 14);
    for i in 0..100 {
        stored_cas(&mut a, format!("k{i}").as_bytes());
    }
    let from_a = stored_cas(&mut a, b"k");
    assert!(stored_cas(&mut b, b"k") < from_a);
    b.observe_cas(from_a);
    let next = stored_cas(&mut b, b"k");
    assert!(next > from_a, "{next} <= {from_a}");
    assert_eq!(next & ((1 << 14) - 1), 1 << 7, "b's tag");
    // A value with an equal counter but a greater tag still orders before.
    let mut c = tagged((1 << 14) - 1, 14);
    c.observe_cas(a.cas_layout().cas(1000));
    assert!(stored_cas(&mut c, b"k") > a.cas_layout().cas(1000));
    // An observed value never moves the clock back.
    b.observe_cas(1);
    assert!(stored_cas(&mut b, b"k") > next);
}

#[test]
fn a_counter_at_the_top_saturates_instead_of_wrapping() {
    let l = CasLayout {
        tag: 9,
        tag_bits: 14,
    };
    assert_eq!(l.max_counter(), (1 << 50) - 1);
    assert_eq!(l.cas(l.max_counter() + 5), l.cas(l.max_counter()));
    assert_eq!(l.counter(l.cas(12345)), 12345);
    let mut s = tagged(9, 14);
    s.observe_cas(u64::MAX);
    assert_eq!(stored_cas(&mut s, b"k"), u64::MAX - ((1 << 14) - 1) + 9);
}

#[test]
fn a_tag_that_does_not_fit_its_bits_is_refused() {
    for (tag, bits) in [(1 << 7, 7), (0, 0), (0, 33)] {
        let err = Store::new(StoreConfig {
            cas_layout: Some(CasLayout {
                tag,
                tag_bits: bits,
            }),
            ..config(8 << 20, Policy::default())
        })
        .err()
        .expect("refused");
        assert!(err.to_string().contains("cas_layout"), "{err}");
    }
}
