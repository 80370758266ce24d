//! The CAS word on demand: an item carries its 8-byte CAS only once a client can know
//! it (gets, gats, mg/ms/ma `c`, `E`, the binary protocol's replies). Nothing a client
//! sees may change: a CAS read is stable until the item changes, a compare never
//! matches a version whose CAS no client was given, and an item untouched since its
//! `gets` always takes the `cas`.

use std::collections::HashSet;

use super::super::item::{CAS_LEN, HEADER_LEN};
use super::super::{
    DeleteOutcome, MetaArith, MetaArithArgs, MetaDeleteArgs, MetaGet, MetaGetArgs, MetaSetArgs,
    StoreMode, StoreOutcome,
};
use super::*;

fn size(s: &mut Store, key: &[u8]) -> usize {
    s.peek(hk(key)).unwrap().size
}

fn class(s: &mut Store, key: &[u8]) -> u32 {
    s.peek(hk(key)).unwrap().class_id
}

fn gets(s: &mut Store, key: &[u8]) -> u64 {
    s.gets(hk(key)).expect("hit").cas
}

fn cas(s: &mut Store, key: &[u8], value: &[u8], cas: u64) -> StoreOutcome {
    s.store(StoreMode::Cas, hk(key), 0, 0, value, cas)
}

/// A value that makes an item without any optional word fill the first chunk of at
/// least `min` bytes exactly (no room for the CAS word in place).
fn filling(s: &Store, key: &[u8], min: usize) -> Vec<u8> {
    let chunk = s
        .class_sizes()
        .into_iter()
        .find(|&c| c as usize >= min)
        .unwrap() as usize;
    vec![b'f'; chunk - HEADER_LEN - key.len()]
}

#[test]
fn a_plain_set_carries_no_cas_until_gets_gives_it_one_that_stays() {
    let mut s = small();
    let v = filling(&s, b"k", 150);
    let v = &v[..v.len() - 4]; // the flags word
    assert_eq!(
        s.set(hk(b"k"), v, 5, 0),
        StoreOutcome::Stored { cas: 0 },
        "nobody asked"
    );
    let plain = (size(&mut s, b"k"), class(&mut s, b"k"));
    assert_eq!(plain.0, HEADER_LEN + 4 + 1 + v.len());
    assert_eq!(s.get(hk(b"k")).unwrap().cas, 0);
    let items = s.stats().total_items;

    // The chunk is full: the item moves to a larger class, keeping what it was.
    let c1 = gets(&mut s, b"k");
    assert_ne!(c1, 0);
    assert_eq!(size(&mut s, b"k"), plain.0 + CAS_LEN);
    assert!(class(&mut s, b"k") > plain.1);
    let it = s.get(hk(b"k")).unwrap();
    assert_eq!((it.value, it.flags, it.cas, it.fetched), (v, 5, c1, true));
    let st = s.stats();
    assert_eq!(
        (st.curr_items, st.total_items),
        (1, items),
        "a move is no new item"
    );
    assert_eq!(gets(&mut s, b"k"), c1, "stable while the item is unchanged");

    // Untouched since its gets: the cas takes. The new version's CAS is unread again.
    assert!(matches!(
        cas(&mut s, b"k", b"w", c1),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(cas(&mut s, b"k", b"x", c1), StoreOutcome::Exists);
    let c2 = gets(&mut s, b"k");
    assert!(c2 > c1);
    assert_eq!(s.stats().cas_hits, 1);
}

#[test]
fn a_chunk_with_eight_bytes_spare_takes_the_word_in_place() {
    let mut s = small();
    let v = filling(&s, b"k", 150);
    let v = &v[..v.len() - CAS_LEN];
    s.set(hk(b"k"), v, 0, 0);
    let before = (size(&mut s, b"k"), class(&mut s, b"k"), s.stats().bytes);
    let c = gets(&mut s, b"k");
    assert_eq!(
        (size(&mut s, b"k"), class(&mut s, b"k"), s.stats().bytes),
        (before.0 + CAS_LEN, before.1, before.2 + CAS_LEN as u64)
    );
    assert_eq!(s.get(hk(b"k")).unwrap().value, v);
    assert!(matches!(
        cas(&mut s, b"k", b"w", c),
        StoreOutcome::Stored { .. }
    ));
}

/// A client can only hold the CAS of an older version (or of another key): every
/// compare fails, as against any newer version in memcached, and for ms `I` every
/// CAS made so far is lower.
#[test]
fn no_compare_matches_a_version_whose_cas_nobody_read() {
    let mut s = small();
    s.set(hk(b"other"), b"1", 0, 0);
    let other = gets(&mut s, b"other");
    s.set(hk(b"n"), b"10", 0, 0);
    let old = gets(&mut s, b"n");
    s.set(hk(b"n"), b"11", 0, 0);
    for c in [old, other, 1, u64::MAX] {
        assert_eq!(cas(&mut s, b"n", b"x", c), StoreOutcome::Exists, "cas {c}");
        let ms = MetaSetArgs {
            compare_cas: Some(c),
            ..Default::default()
        };
        assert_eq!(s.meta_set(hk(b"n"), b"x", &ms), StoreOutcome::Exists);
        let md = MetaDeleteArgs {
            compare_cas: Some(c),
            ..Default::default()
        };
        assert_eq!(s.meta_delete(hk(b"n"), &md), DeleteOutcome::Exists);
        let ma = MetaArithArgs {
            compare_cas: Some(c),
            ..Default::default()
        };
        assert_eq!(s.meta_arith(hk(b"n"), &ma), MetaArith::Exists);
        let ms = MetaSetArgs {
            mode: super::super::MetaSetMode::Append,
            compare_cas: Some(c),
            ..Default::default()
        };
        assert_eq!(s.meta_set(hk(b"n"), b"x", &ms), StoreOutcome::Exists);
    }
    // C0 is no wildcard either.
    let md = MetaDeleteArgs {
        compare_cas: Some(0),
        ..Default::default()
    };
    assert_eq!(s.meta_delete(hk(b"n"), &md), DeleteOutcome::Exists);
    assert_eq!(s.get(hk(b"n")).unwrap().value, b"11");
    // ms I with the older version's CAS stores the value as stale.
    let ms = MetaSetArgs {
        compare_cas: Some(old),
        invalidate: true,
        ..Default::default()
    };
    assert!(matches!(
        s.meta_set(hk(b"n"), b"12", &ms),
        StoreOutcome::Stored { .. }
    ));
    let args = MetaGetArgs::default();
    let MetaGet::Hit(h) = s.meta_get(hk(b"n"), &args) else {
        panic!("miss")
    };
    assert!(h.stale && h.item.value == b"12");
}

/// Zero spurious EXISTS: 2,000 keys, each read with gets, then other keys written and
/// some of the read ones touched (a TTL may move them), then every cas takes.
#[test]
fn every_item_untouched_since_its_gets_takes_the_cas() {
    // Room for every class the spread sizes touch (a page each), so that nothing
    // is evicted and every cas must take.
    let mut s = store(64 << 20, Policy::default());
    let key = |i: u32| format!("key:{i:05}");
    let mut rng = 7u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut read = Vec::new();
    let mut seen = HashSet::new();
    for i in 0..2000 {
        let v = vec![b'v'; 10 + next(200) as usize];
        let out = s.set(hk(key(i).as_bytes()), &v, next(2) as u32, 0);
        assert!(matches!(out, StoreOutcome::Stored { .. }), "{i}: {out:?}");
        if next(3) == 0 {
            s.set(hk(format!("noise:{i}").as_bytes()), &v, 0, 0);
        }
        let c = gets(&mut s, key(i).as_bytes());
        assert!(seen.insert(c), "CAS {c} handed out twice");
        read.push(c);
    }
    for i in (0..2000).step_by(3) {
        assert_eq!(
            s.touch(hk(key(i).as_bytes()), 600),
            super::super::TouchOutcome::Touched
        );
    }
    for (i, c) in read.into_iter().enumerate() {
        assert!(
            matches!(
                cas(&mut s, key(i as u32).as_bytes(), b"new", c),
                StoreOutcome::Stored { .. }
            ),
            "key {i}"
        );
    }
    assert_eq!(s.stats().cas_badval, 0);
}

#[test]
fn replies_that_print_the_cas_give_the_word() {
    let mut s = small();
    let with = MetaGetArgs {
        return_cas: true,
        ..Default::default()
    };
    s.set(hk(b"a"), b"1", 0, 0);
    let MetaGet::Hit(h) = s.meta_get(hk(b"a"), &with) else {
        panic!()
    };
    let c = h.item.cas;
    assert_ne!(c, 0);
    assert_eq!(gets(&mut s, b"a"), c);
    // gats, me, ms c, ma c, E.
    s.set(hk(b"b"), b"1", 0, 0);
    let c = s.gats(hk(b"b"), 100).unwrap().cas;
    assert!(c != 0 && gets(&mut s, b"b") == c);
    s.set(hk(b"c"), b"1", 0, 0);
    let c = s.peek_with_cas(hk(b"c")).unwrap().cas;
    assert!(c != 0 && gets(&mut s, b"c") == c);
    let ms = MetaSetArgs {
        return_cas: true,
        ..Default::default()
    };
    let StoreOutcome::Stored { cas: c } = s.meta_set(hk(b"d"), b"1", &ms) else {
        panic!()
    };
    assert!(c != 0 && gets(&mut s, b"d") == c);
    let ma = MetaArithArgs {
        return_cas: true,
        ..Default::default()
    };
    let MetaArith::Value {
        cas: c, value: 2, ..
    } = s.meta_arith(hk(b"d"), &ma)
    else {
        panic!()
    };
    assert!(c != 0 && gets(&mut s, b"d") == c);
    s.set(hk(b"e"), b"1", 0, 0);
    let ma = MetaArithArgs {
        new_cas: Some(777 << 10),
        ..Default::default()
    };
    s.meta_arith(hk(b"e"), &ma);
    assert_eq!(gets(&mut s, b"e"), 777 << 10);
    let ms = MetaSetArgs {
        new_cas: Some(999 << 10),
        ..Default::default()
    };
    s.meta_set(hk(b"f"), b"1", &ms);
    assert_eq!(gets(&mut s, b"f"), 999 << 10);
    // A plain incr of an item with the word gives the new version a new CAS.
    s.set(hk(b"g"), b"5", 0, 0);
    let c = gets(&mut s, b"g");
    s.incr(hk(b"g"), 1);
    assert!(gets(&mut s, b"g") > c);
}

/// An immediate flush_all cuts inside its second: items stored earlier in it may have
/// no CAS to cut by, so every item stored in the rest of the second gets the word.
#[test]
fn a_flush_cuts_inside_its_second_with_cas_words_on_demand() {
    let mut s = small();
    s.set_time(10);
    s.set(hk(b"before"), b"v", 0, 0);
    s.flush_all(0);
    s.set(hk(b"after"), b"v", 0, 0);
    assert!(s.get(hk(b"before")).is_none());
    assert_eq!(size(&mut s, b"after"), HEADER_LEN + CAS_LEN + 5 + 1);
    assert!(s.get(hk(b"after")).is_some());
    s.set_time(11);
    s.set(hk(b"later"), b"v", 0, 0);
    assert_eq!(
        size(&mut s, b"later"),
        HEADER_LEN + 5 + 1,
        "no word past the second"
    );
    assert!(s.get(hk(b"after")).is_some() && s.get(hk(b"later")).is_some());
    // A second flush in a later second takes both.
    s.flush_all(0);
    assert!(s.get(hk(b"after")).is_none() && s.get(hk(b"later")).is_none());
}

#[test]
fn every_item_carries_the_word_where_cas_values_are_compared_or_under_no_evictions() {
    for cfg in [
        StoreConfig {
            cas_on_demand: false,
            ..config(8 << 20, Policy::default())
        },
        StoreConfig {
            evictions: false,
            ..config(8 << 20, Policy::default())
        },
    ] {
        let exp_word = if cfg.evictions { 0 } else { 4 };
        let mut s = Store::new(cfg).unwrap();
        let StoreOutcome::Stored { cas: c } = s.set(hk(b"k"), b"v", 0, 0) else {
            panic!()
        };
        assert_ne!(c, 0);
        assert_eq!(size(&mut s, b"k"), HEADER_LEN + CAS_LEN + exp_word + 2);
        assert_eq!(s.get(hk(b"k")).unwrap().cas, c);
    }
    // Under -C no item ever has one.
    let mut s = Store::new(StoreConfig {
        use_cas: false,
        ..config(8 << 20, Policy::default())
    })
    .unwrap();
    s.set(hk(b"k"), b"v", 0, 0);
    assert_eq!(gets(&mut s, b"k"), 0);
    assert_eq!(size(&mut s, b"k"), HEADER_LEN + 2);
}
