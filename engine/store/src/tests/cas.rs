//! CAS values: the layout (a counter above a tag), uniqueness across stores with
//! different tags, and the Lamport clock (`observe_cas`) across them.

use std::collections::HashSet;

use super::super::{CasLayout, SHARD_BITS, StoreMode, StoreOutcome};
use super::*;

/// The CAS a set whose reply carries it (the binary protocol's) gives the item.
fn stored_cas(s: &mut Store, key: &[u8]) -> u64 {
    match s.store_with_cas(StoreMode::Set, hk(key), 0, 0, b"v", 0) {
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

/// A store without CAS (memcached's -C).
fn without_cas() -> Store {
    Store::new(StoreConfig {
        use_cas: false,
        ..config(8 << 20, Policy::default())
    })
    .expect("store")
}

#[test]
fn without_cas_every_item_has_cas_0_whatever_made_it() {
    use super::super::{MetaArithArgs, MetaDeleteArgs, MetaSetArgs};
    let mut s = without_cas();
    assert!(!s.uses_cas());
    assert_eq!(stored_cas(&mut s, b"a"), 0);
    assert_eq!(s.get(hk(b"a")).unwrap().cas, 0);
    // `E` has nowhere to go (memcached's ITEM_set_cas without ITEM_CAS).
    let e = MetaSetArgs {
        new_cas: Some(99),
        ..MetaSetArgs::default()
    };
    assert_eq!(
        s.meta_set(hk(b"e"), b"v", &e),
        StoreOutcome::Stored { cas: 0 }
    );
    assert_eq!(s.get(hk(b"e")).unwrap().cas, 0);
    // incr in place and into a new item, ma with E, md's invalidation.
    s.set(hk(b"n"), b"9", 0, 0);
    assert_eq!(
        s.incr(hk(b"n"), 1),
        super::super::ArithOutcome::Value { value: 10, cas: 0 }
    );
    assert_eq!(
        s.incr(hk(b"n"), 1),
        super::super::ArithOutcome::Value { value: 11, cas: 0 }
    );
    let ma = MetaArithArgs {
        new_cas: Some(7),
        ..MetaArithArgs::default()
    };
    assert!(matches!(
        s.meta_arith(hk(b"n"), &ma),
        super::super::MetaArith::Value { cas: 0, .. }
    ));
    let inval = MetaDeleteArgs {
        invalidate: true,
        ..MetaDeleteArgs::default()
    };
    s.meta_delete(hk(b"n"), &inval);
    assert_eq!(s.peek(hk(b"n")).unwrap().cas, 0);
}

#[test]
fn without_cas_a_compare_never_matches_and_append_ignores_it() {
    use super::super::{MetaDeleteArgs, MetaSetArgs, MetaSetMode};
    let mut s = without_cas();
    s.set(hk(b"k"), b"v", 0, 0);
    // memcached: the new item reads back CAS 0, "none given": cas is EXISTS
    // for any value, 0 included, and NOT_FOUND on a miss.
    for cas in [0, 1, 5] {
        assert_eq!(
            s.store(StoreMode::Cas, hk(b"k"), 0, 0, b"x", cas),
            StoreOutcome::Exists,
            "cas {cas}"
        );
    }
    assert_eq!(
        s.store(StoreMode::Cas, hk(b"none"), 0, 0, b"x", 5),
        StoreOutcome::NotFound
    );
    // ms in set mode with C is a cas (EX); in append mode C is not compared.
    let set_c = MetaSetArgs {
        compare_cas: Some(0),
        ..MetaSetArgs::default()
    };
    assert_eq!(s.meta_set(hk(b"k"), b"y", &set_c), StoreOutcome::Exists);
    let append_c = MetaSetArgs {
        mode: MetaSetMode::Append,
        compare_cas: Some(7),
        ..MetaSetArgs::default()
    };
    assert_eq!(
        s.meta_set(hk(b"k"), b"z", &append_c),
        StoreOutcome::Stored { cas: 0 }
    );
    assert_eq!(s.get(hk(b"k")).unwrap().value, b"vz");
    // md and ma compare with the item's 0: only C0 matches.
    let md = |c| MetaDeleteArgs {
        compare_cas: Some(c),
        ..MetaDeleteArgs::default()
    };
    assert_eq!(
        s.meta_delete(hk(b"k"), &md(3)),
        super::super::DeleteOutcome::Exists
    );
    assert_eq!(
        s.meta_delete(hk(b"k"), &md(0)),
        super::super::DeleteOutcome::Deleted
    );
    let st = s.stats();
    assert_eq!((st.cas_badval, st.cas_misses, st.cas_hits), (4, 1, 0));
}

#[test]
fn without_cas_a_flush_takes_what_its_own_second_stored_and_only_that() {
    let mut s = without_cas();
    s.set_time(10);
    s.set(hk(b"old"), b"v", 0, 0);
    s.flush_all(0);
    s.set(hk(b"same"), b"v", 0, 0);
    assert!(s.get(hk(b"old")).is_none());
    // memcached without CAS: item time <= oldest_live, and oldest_live is
    // this second.
    assert!(s.get(hk(b"same")).is_none(), "stored in the flush's second");
    s.set_time(11);
    s.set(hk(b"next"), b"v", 0, 0);
    assert!(s.get(hk(b"next")).is_some(), "stored a second later");
    // A delayed flush: at its second everything up to it goes.
    s.flush_all(3); // now + 3 = 14
    s.set_time(13);
    assert!(s.get(hk(b"next")).is_some(), "before the flush instant");
    s.set_time(14);
    s.set(hk(b"at14"), b"v", 0, 0);
    assert!(s.get(hk(b"next")).is_none());
    assert!(s.get(hk(b"at14")).is_none(), "stored in the flush's second");
    s.set_time(15);
    s.set(hk(b"at15"), b"v", 0, 0);
    assert!(s.get(hk(b"at15")).is_some());
}

#[test]
fn with_cas_the_flush_cliff_stays_exact() {
    let mut s = small();
    assert!(s.uses_cas());
    s.set_time(10);
    s.flush_all(0);
    s.set(hk(b"same"), b"v", 0, 0);
    assert!(s.get(hk(b"same")).is_some());
    assert_ne!(s.get(hk(b"same")).unwrap().cas, 0);
}
