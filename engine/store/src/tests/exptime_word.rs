//! The exptime word: present only when an item has a TTL (always under -M). Giving a
//! TTL to an item without it makes room in place or moves the item; nothing a client
//! sees may change (value, flags, CAS, fetched, stale, TTL rules).

use super::super::item::{CAS_LEN, HEADER_LEN};
use super::super::{
    DeleteOutcome, MetaArith, MetaArithArgs, MetaDeleteArgs, MetaGet, MetaGetArgs, StoreMode,
    StoreOutcome, TouchOutcome,
};
use super::*;

const KEY: &[u8] = b"word:key:0123456789abcdef0123456";

/// What peek shows of an item, copied out of the borrowed view.
#[derive(Debug, PartialEq)]
struct Seen {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
    ttl: i64,
    fetched: bool,
    class_id: u32,
    size: usize,
}

fn seen(s: &mut Store, key: &[u8]) -> Option<Seen> {
    s.peek(hk(key)).map(|v| Seen {
        value: v.value.to_vec(),
        flags: v.flags,
        cas: v.cas,
        ttl: v.ttl,
        fetched: v.fetched,
        class_id: v.class_id,
        size: v.size,
    })
}

/// A value that makes an item without TTL, with non-zero flags if `flags`, fill a chunk
/// of the first class of at least `min` bytes exactly.
fn filling(s: &Store, key: &[u8], min: usize, flags: bool) -> Vec<u8> {
    let class = s
        .class_sizes()
        .into_iter()
        .find(|&c| c as usize >= min)
        .unwrap() as usize;
    let len = class - HEADER_LEN - key.len() - if flags { 4 } else { 0 };
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn an_item_without_a_ttl_is_four_bytes_smaller() {
    let mut s = small();
    s.set(hk(KEY), &[b'v'; 100], 0, 0);
    assert_eq!(
        seen(&mut s, KEY).unwrap().size,
        HEADER_LEN + KEY.len() + 100
    );
    s.set(hk(KEY), &[b'v'; 100], 0, 60);
    assert_eq!(
        seen(&mut s, KEY).unwrap().size,
        HEADER_LEN + 4 + KEY.len() + 100
    );
    s.set(hk(KEY), &[b'v'; 100], 9, 60);
    assert_eq!(
        seen(&mut s, KEY).unwrap().size,
        HEADER_LEN + 8 + KEY.len() + 100
    );
}

#[test]
fn touch_gives_the_word_in_place_when_the_chunk_has_room() {
    let mut s = small();
    // 140 bytes (8-byte header, flags, key, value) in a 152-byte chunk: room for the word.
    s.set(hk(KEY), &[b'v'; 96], 7, 0);
    let before = seen(&mut s, KEY).unwrap();
    assert_eq!(s.touch(hk(KEY), 10), TouchOutcome::Touched);
    let after = seen(&mut s, KEY).unwrap();
    assert_eq!(
        (after.class_id, after.size),
        (before.class_id, before.size + 4)
    );
    assert_eq!(
        (&after.value, after.flags, after.cas),
        (&before.value, 7, before.cas)
    );
    assert_eq!(after.ttl, 10);
    s.set_time(s.now() + 9);
    assert!(value_of(&mut s, KEY).is_some());
    s.set_time(s.now() + 1);
    assert!(value_of(&mut s, KEY).is_none(), "expired at its TTL");
}

#[test]
fn touch_and_gat_move_an_item_whose_chunk_is_full() {
    for gat in [false, true] {
        let mut s = small();
        // With the CAS word, which the move must keep.
        let v = filling(&s, KEY, 200, true);
        let v = v[..v.len() - CAS_LEN].to_vec();
        s.store_with_cas(StoreMode::Set, hk(KEY), 3, 0, &v, 0);
        assert!(value_of(&mut s, KEY).is_some(), "fetched");
        let before = seen(&mut s, KEY).unwrap();
        let items = s.stats().total_items;
        if gat {
            let got = s.gat(hk(KEY), 30).map(|v| (v.value.to_vec(), v.ttl, v.cas));
            assert_eq!(got, Some((v.clone(), 30, before.cas)));
        } else {
            assert_eq!(s.touch(hk(KEY), 30), TouchOutcome::Touched);
        }
        let after = seen(&mut s, KEY).unwrap();
        assert!(
            after.class_id > before.class_id,
            "moved: {before:?} -> {after:?}"
        );
        assert_eq!(after.size, before.size + 4);
        assert_eq!(
            (after.value, after.flags, after.cas),
            (v.clone(), 3, before.cas)
        );
        assert!(after.fetched && after.ttl == 30);
        let st = s.stats();
        assert_eq!(
            (st.curr_items, st.total_items),
            (1, items),
            "a move is no new item"
        );
        s.set_time(s.now() + 30);
        assert!(value_of(&mut s, KEY).is_none());
        assert_eq!(s.stats().curr_items, 0);
    }
}

#[test]
fn meta_t_and_md_i_t_move_an_item_whose_chunk_is_full() {
    let mut s = small();
    let v = filling(&s, KEY, 300, false);
    let class = |s: &mut Store| seen(s, KEY).unwrap().class_id;

    s.set(hk(KEY), &v, 0, 0);
    let c0 = class(&mut s);
    let args = MetaGetArgs {
        touch: Some(40),
        ..Default::default()
    };
    match s.meta_get(hk(KEY), &args) {
        MetaGet::Hit(h) => {
            assert_eq!((h.item.value, h.item.ttl, h.ttl_before), (&v[..], 40, -1));
        }
        MetaGet::Miss => panic!("mg T missed"),
    }
    assert!(class(&mut s) > c0);

    // With the CAS word, which md I gives a new CAS.
    let v = &v[..v.len() - CAS_LEN];
    let StoreOutcome::Stored { cas } = s.store_with_cas(StoreMode::Set, hk(KEY), 0, 0, v, 0) else {
        panic!("not stored")
    };
    assert_ne!(cas, 0);
    let md = MetaDeleteArgs {
        invalidate: true,
        exptime: Some(50),
        ..Default::default()
    };
    assert_eq!(s.meta_delete(hk(KEY), &md), DeleteOutcome::Deleted);
    let after = seen(&mut s, KEY).unwrap();
    assert!(after.class_id > c0 && after.ttl == 50 && after.cas > cas);
    assert_eq!(after.value, v);
    let mg = |s: &mut Store| match s.meta_get(hk(KEY), &MetaGetArgs::default()) {
        MetaGet::Hit(h) => (h.stale, h.win),
        MetaGet::Miss => panic!("gone"),
    };
    assert_eq!(mg(&mut s), (true, true), "still stale after the move");

    // A counter that fills its chunk: ma T.
    // Leading spaces are allowed (strtoull); decr writes "0" padded in place.
    let mut counter = vec![b' '; filling(&s, KEY, 400, false).len()];
    *counter.last_mut().unwrap() = b'1';
    s.set(hk(KEY), &counter, 0, 0);
    let c1 = class(&mut s);
    let ma = MetaArithArgs {
        incr: false,
        delta: 1,
        compare_cas: None,
        vivify: None,
        initial: 0,
        touch: Some(60),
        new_cas: None,
        return_cas: true,
    };
    match s.meta_arith(hk(KEY), &ma) {
        MetaArith::Value { ttl, cas, .. } => {
            assert_eq!(ttl, 60);
            assert_eq!(cas, seen(&mut s, KEY).unwrap().cas);
        }
        other => panic!("{other:?}"),
    }
    assert!(class(&mut s) > c1);
    let mut want = vec![b' '; counter.len()];
    want[0] = b'0';
    assert_eq!(value_of(&mut s, KEY).unwrap(), want);
}

#[test]
fn a_ttl_of_zero_keeps_the_word_and_never_expires() {
    let mut s = small();
    s.set(hk(KEY), &[b'v'; 100], 0, 100);
    let with = seen(&mut s, KEY).unwrap();
    assert_eq!(s.touch(hk(KEY), 0), TouchOutcome::Touched);
    let after = seen(&mut s, KEY).unwrap();
    assert_eq!(
        (after.ttl, after.size, after.class_id),
        (-1, with.size, with.class_id)
    );
    s.set_time(s.now() + 1000);
    assert!(value_of(&mut s, KEY).is_some());
    // and back again, in place
    assert!(s.gat(hk(KEY), 5).is_some_and(|v| v.ttl == 5));
    s.set_time(s.now() + 5);
    assert!(value_of(&mut s, KEY).is_none());
}

#[test]
fn a_move_under_full_memory_evicts_other_items_as_a_store_would() {
    let mut s = store(4 << 20, Policy::default());
    let v = filling(&s, KEY, 250, false);
    for i in 0..40_000u32 {
        s.set(hk(format!("{i:032}").as_bytes()), &v, 0, 0);
    }
    let evicted = s.stats().evictions;
    assert!(evicted > 0, "memory is full");
    let key = format!("{:032}", 39_999);
    let before = seen(&mut s, key.as_bytes()).unwrap();
    assert_eq!(s.touch(hk(key.as_bytes()), 20), TouchOutcome::Touched);
    let after = seen(&mut s, key.as_bytes()).unwrap();
    assert!(after.class_id > before.class_id && after.ttl == 20);
    assert_eq!((after.value, after.cas), (before.value, before.cas));
    assert!(s.stats().evictions > evicted, "room was made by evicting");
    assert!(s.used_bytes() <= 4 << 20);
}

#[test]
fn under_no_evictions_every_item_has_the_word_and_touch_needs_no_memory() {
    let mut s = Store::new(StoreConfig {
        evictions: false,
        ..config(4 << 20, Policy::default())
    })
    .unwrap();
    let v = filling(&s, KEY, 250, false);
    let mut n = 0u32;
    while let StoreOutcome::Stored { .. } = s.set(hk(format!("{n:032}").as_bytes()), &v, 0, 0) {
        n += 1;
    }
    assert!(n > 1000);
    let key = format!("{:032}", 0);
    let before = seen(&mut s, key.as_bytes()).unwrap();
    assert_eq!(
        before.size,
        HEADER_LEN + CAS_LEN + 4 + 32 + v.len(),
        "the words (CAS and exptime, with TTL 0)"
    );
    for (i, t) in [(0u32, 20i64), (1, 0), (2, 30)] {
        let key = format!("{i:032}");
        assert_eq!(s.touch(hk(key.as_bytes()), t), TouchOutcome::Touched);
        let after = seen(&mut s, key.as_bytes()).unwrap();
        assert_eq!((after.class_id, after.size), (before.class_id, before.size));
        assert_eq!(after.ttl, if t == 0 { -1 } else { t });
    }
    assert!(s.gat(hk(format!("{:032}", 3).as_bytes()), 40).is_some());
    assert_eq!(s.stats().evictions, 0);
    assert_eq!(s.stats().curr_items, n as u64);
}
