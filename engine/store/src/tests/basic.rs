//! Classic commands and TTL rules (memcached 1.6 semantics).

use super::super::{ArithOutcome, DeleteOutcome, StoreMode, StoreOutcome, TouchOutcome};
use super::*;

#[test]
fn set_get_round_trip_with_flags_and_cas() {
    let mut s = small();
    let StoreOutcome::Stored { cas } = s.set(hk(b"k"), b"hello", 42, 0) else {
        panic!()
    };
    let v = s.get(hk(b"k")).unwrap();
    assert_eq!(
        (v.key, v.value, v.flags, v.cas),
        (&b"k"[..], &b"hello"[..], 42, cas)
    );
    assert_eq!(v.ttl, -1);
    assert!(s.get(hk(b"missing")).is_none());
    let st = s.stats();
    assert_eq!(
        (st.get_hits, st.get_misses, st.curr_items, st.total_items),
        (1, 1, 1, 1)
    );
}

#[test]
fn cas_values_are_unique_and_carry_the_shard_id() {
    let mut cfg = config(8 << 20, Policy::Clock);
    cfg.shard_id = 5;
    let mut s = Store::new(cfg).unwrap();
    let StoreOutcome::Stored { cas: a } = s.store_with_cas(StoreMode::Set, hk(b"a"), 0, 0, b"1", 0)
    else {
        panic!()
    };
    let StoreOutcome::Stored { cas: b } = s.store_with_cas(StoreMode::Set, hk(b"a"), 0, 0, b"2", 0)
    else {
        panic!()
    };
    assert_ne!(a, b);
    assert_eq!(a & 1023, 5);
    assert_eq!(b & 1023, 5);
}

#[test]
fn add_replace_semantics() {
    let mut s = small();
    assert!(matches!(
        s.store(StoreMode::Replace, hk(b"k"), 0, 0, b"x", 0),
        StoreOutcome::NotStored
    ));
    assert!(matches!(
        s.store(StoreMode::Add, hk(b"k"), 0, 0, b"x", 0),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        s.store(StoreMode::Add, hk(b"k"), 0, 0, b"y", 0),
        StoreOutcome::NotStored
    ));
    assert!(matches!(
        s.store(StoreMode::Replace, hk(b"k"), 0, 0, b"z", 0),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(value_of(&mut s, b"k").unwrap(), b"z");
}

#[test]
fn append_prepend_keep_flags_and_exptime() {
    let mut s = small();
    assert_eq!(
        s.store(StoreMode::Append, hk(b"k"), 0, 0, b"x", 0),
        StoreOutcome::NotStored
    );
    s.set(hk(b"k"), b"mid", 9, 100);
    assert!(matches!(
        s.store(StoreMode::Append, hk(b"k"), 1, 0, b"-end", 0),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        s.store(StoreMode::Prepend, hk(b"k"), 2, 5, b"start-", 0),
        StoreOutcome::Stored { .. }
    ));
    let v = s.get(hk(b"k")).unwrap();
    assert_eq!(v.value, b"start-mid-end");
    assert_eq!(v.flags, 9);
    assert_eq!(v.ttl, 100);
}

#[test]
fn cas_command() {
    let mut s = small();
    assert_eq!(
        s.store(StoreMode::Cas, hk(b"k"), 0, 0, b"v", 1),
        StoreOutcome::NotFound
    );
    s.set(hk(b"k"), b"v1", 0, 0);
    let cas = s.gets(hk(b"k")).unwrap().cas;
    assert_eq!(
        s.store(StoreMode::Cas, hk(b"k"), 0, 0, b"v2", cas + 1),
        StoreOutcome::Exists
    );
    assert!(matches!(
        s.store(StoreMode::Cas, hk(b"k"), 0, 0, b"v2", cas),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(value_of(&mut s, b"k").unwrap(), b"v2");
    let st = s.stats();
    assert_eq!((st.cas_misses, st.cas_badval, st.cas_hits), (1, 1, 1));
}

#[test]
fn delete() {
    let mut s = small();
    s.set(hk(b"k"), b"v", 0, 0);
    assert_eq!(s.delete(hk(b"k")), DeleteOutcome::Deleted);
    assert_eq!(s.delete(hk(b"k")), DeleteOutcome::NotFound);
    assert!(s.get(hk(b"k")).is_none());
    assert_eq!(s.stats().curr_items, 0);
    assert_eq!(s.stats().bytes, 0);
}

#[test]
fn incr_decr_rules() {
    let mut s = small();
    assert_eq!(s.incr(hk(b"n"), 1), ArithOutcome::NotFound);
    s.set(hk(b"n"), b"9", 3, 0);
    assert!(matches!(
        s.incr(hk(b"n"), 1),
        ArithOutcome::Value { value: 10, .. }
    ));
    assert_eq!(s.get(hk(b"n")).unwrap().value, b"10");
    assert_eq!(s.get(hk(b"n")).unwrap().flags, 3);
    assert!(matches!(
        s.decr(hk(b"n"), 3),
        ArithOutcome::Value { value: 7, .. }
    ));
    assert_eq!(
        s.get(hk(b"n")).unwrap().value,
        b"7 ",
        "padded in place, as memcached"
    );
    assert!(
        matches!(s.decr(hk(b"n"), 100), ArithOutcome::Value { value: 0, .. }),
        "floor at 0"
    );
    s.set(hk(b"n"), b"18446744073709551615", 0, 0);
    assert!(
        matches!(s.incr(hk(b"n"), 2), ArithOutcome::Value { value: 1, .. }),
        "wraps"
    );
    s.set(hk(b"t"), b"abc", 0, 0);
    assert_eq!(s.incr(hk(b"t"), 1), ArithOutcome::NonNumeric);
    s.set(hk(b"e"), b"", 0, 0);
    assert_eq!(s.incr(hk(b"e"), 1), ArithOutcome::NonNumeric);
    s.set(hk(b"big"), b"99999999999999999999", 0, 0);
    assert_eq!(
        s.incr(hk(b"big"), 1),
        ArithOutcome::NonNumeric,
        "overflowing text"
    );
    s.set(hk(b"sp"), b" 12 ", 0, 0);
    assert!(matches!(
        s.incr(hk(b"sp"), 1),
        ArithOutcome::Value { value: 13, .. }
    ));
    s.set(hk(b"neg"), b"-1", 0, 0);
    assert_eq!(s.incr(hk(b"neg"), 1), ArithOutcome::NonNumeric);
}

#[test]
fn incr_grows_past_the_chunk_and_keeps_ttl() {
    let mut s = small();
    s.set(hk(b"n"), b"1", 0, 50);
    // 1 -> a 20-digit value: needs a bigger class than the 1-byte value had.
    let ArithOutcome::Value { value, cas } = s.incr(hk(b"n"), u64::MAX - 1) else {
        panic!()
    };
    assert_eq!(value, u64::MAX);
    let v = s.get(hk(b"n")).unwrap();
    assert_eq!(v.value, b"18446744073709551615");
    assert_eq!((v.cas, v.ttl), (cas, 50));
    let st = s.stats();
    assert_eq!((st.curr_items, st.incr_hits), (1, 1));
}

#[test]
fn ttl_zero_relative_absolute_negative() {
    let mut s = small();
    s.set_time(100);
    s.set(hk(b"never"), b"v", 0, 0);
    s.set(hk(b"rel"), b"v", 0, 10);
    s.set(hk(b"month"), b"v", 0, 60 * 60 * 24 * 30);
    let abs = STARTED as i64 + 100 + 50;
    s.set(hk(b"abs"), b"v", 0, abs);
    s.set(hk(b"past"), b"v", 0, STARTED as i64 - 5);
    s.set(hk(b"neg"), b"v", 0, -1);
    assert!(
        s.get(hk(b"past")).is_none(),
        "absolute time before start is expired"
    );
    assert!(s.get(hk(b"neg")).is_none(), "negative is already expired");
    assert_eq!(s.get(hk(b"rel")).unwrap().ttl, 10);
    assert_eq!(s.get(hk(b"abs")).unwrap().ttl, 50);
    assert_eq!(
        s.get(hk(b"month")).unwrap().ttl,
        60 * 60 * 24 * 30,
        "30 days is still relative"
    );
    s.set_time(109);
    assert!(s.get(hk(b"rel")).is_some());
    s.set_time(110);
    assert!(s.get(hk(b"rel")).is_none(), "expires at exptime");
    s.set_time(150);
    assert!(s.get(hk(b"abs")).is_none());
    s.set_time(1_000_000);
    assert!(s.get(hk(b"never")).is_some());
    assert!(s.stats().get_expired >= 3);
}

#[test]
fn touch_and_gat() {
    let mut s = small();
    s.set_time(10);
    assert_eq!(s.touch(hk(b"k"), 5), TouchOutcome::NotFound);
    s.set(hk(b"k"), b"v", 0, 5);
    assert_eq!(s.touch(hk(b"k"), 100), TouchOutcome::Touched);
    s.set_time(20);
    let v = s.gat(hk(b"k"), 7).unwrap();
    assert_eq!(v.ttl, 7);
    s.set_time(27);
    assert!(s.gat(hk(b"k"), 0).is_none());
    let st = s.stats();
    assert_eq!((st.touch_hits, st.touch_misses, st.get_hits), (2, 2, 0));
}

#[test]
fn flush_all_now_hides_older_items_only() {
    let mut s = small();
    s.set_time(10);
    s.set(hk(b"old"), b"v", 0, 0);
    s.flush_all(0);
    s.set(hk(b"new"), b"v", 0, 0);
    assert!(s.get(hk(b"old")).is_none());
    assert!(
        s.get(hk(b"new")).is_some(),
        "stored after the flush in the same second"
    );
    assert_eq!(s.stats().get_flushed, 1);
    s.set_time(11);
    assert!(s.get(hk(b"new")).is_some());
}

/// memcached (issue_183.t): a set over a flushed item reuses its memory and
/// counts it as reclaimed (never fetched: expired_unfetched too).
#[test]
fn a_set_over_a_flushed_item_reclaims_it() {
    let mut s = small();
    s.set_time(10);
    s.set(hk(b"k"), b"1", 0, 0);
    assert_eq!(s.stats().reclaimed, 0);
    s.set_time(12);
    s.flush_all(0);
    s.set(hk(b"k"), b"2", 0, 0);
    let st = s.stats();
    assert_eq!(
        (st.reclaimed, st.expired_unfetched, st.curr_items),
        (1, 1, 1)
    );
    assert_eq!(
        s.get(hk(b"k")).map(|it| it.value.to_vec()),
        Some(b"2".to_vec())
    );
}

#[test]
fn flush_all_with_delay() {
    let mut s = small();
    s.set_time(10);
    s.set(hk(b"a"), b"v", 0, 0);
    s.flush_all(5);
    assert!(s.get(hk(b"a")).is_some(), "not yet");
    s.set_time(13);
    s.set(hk(b"b"), b"v", 0, 0);
    s.set_time(15);
    assert!(s.get(hk(b"a")).is_none());
    assert!(s.get(hk(b"b")).is_none(), "stored before the flush instant");
    s.set(hk(b"c"), b"v", 0, 0);
    s.set_time(16);
    assert!(s.get(hk(b"c")).is_some());
}

#[test]
fn too_large_items_and_set_failure_drops_old_value() {
    let mut cfg = config(8 << 20, Policy::Clock);
    cfg.max_item_size = 1024;
    let mut s = Store::new(cfg).unwrap();
    s.set(hk(b"k"), b"small", 0, 0);
    assert_eq!(s.set(hk(b"k"), &[0u8; 2000], 0, 0), StoreOutcome::TooLarge);
    assert!(
        s.get(hk(b"k")).is_none(),
        "a failed set must not leave the old value"
    );
    assert_eq!(s.stats().store_too_large, 1);
    s.set(hk(b"k"), b"small", 0, 0);
    assert_eq!(
        s.store(StoreMode::Append, hk(b"k"), 0, 0, &[1u8; 1010], 0),
        StoreOutcome::TooLarge
    );
    assert!(s.get(hk(b"k")).is_some(), "append failure keeps the item");
}

#[test]
fn key_bounds() {
    let mut s = small();
    let key = [b'k'; 250];
    assert!(matches!(
        s.set(hk(&key), b"v", 0, 0),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(s.get(hk(&key)).unwrap().key, &key[..]);
    assert_eq!(s.set(hk(&[b'k'; 251]), b"v", 0, 0), StoreOutcome::TooLarge);
}

#[test]
fn unix_time_maps_to_relative_time() {
    let mut s = small();
    s.set_unix_time(STARTED + 500);
    assert_eq!(s.now(), 500);
    s.set_unix_time(STARTED - 10);
    assert_eq!(s.now(), 2);
}

#[test]
fn realtime_rules() {
    let mut s = small();
    s.set_time(1000);
    assert_eq!(s.realtime(0), 0);
    assert_eq!(s.realtime(-5), 1);
    assert_eq!(s.realtime(60), 1060);
    assert_eq!(s.realtime(60 * 60 * 24 * 30), 1000 + 60 * 60 * 24 * 30);
    assert_eq!(s.realtime(STARTED as i64 + 77), 77);
    assert_eq!(s.realtime(STARTED as i64), 1);
}

#[test]
fn crawler_reclaims_expired_items_without_access() {
    let mut s = small();
    for i in 0..1000u32 {
        s.set(
            hk(format!("k{i}").as_bytes()),
            b"value",
            0,
            if i % 2 == 0 { 10 } else { 0 },
        );
    }
    s.set_time(20);
    let mut total = 0;
    for _ in 0..100 {
        let r = s.crawl(64);
        total += r.reclaimed;
    }
    assert_eq!(total, 500);
    let st = s.stats();
    assert_eq!(
        (st.curr_items, st.crawler_reclaimed, st.expired_unfetched),
        (500, 500, 500)
    );
    assert!(s.get(hk(b"k1")).is_some());
}

#[test]
fn stats_reset_keeps_gauges() {
    let mut s = small();
    s.set(hk(b"k"), b"v", 0, 0);
    s.get(hk(b"k"));
    s.reset_stats();
    let st = s.stats();
    assert_eq!((st.get_hits, st.curr_items), (0, 1));
    assert!(st.bytes > 0);
    let slabs = s.slab_stats();
    assert_eq!(slabs.len(), 1);
    assert_eq!((slabs[0].used_chunks, slabs[0].total_pages), (1, 1));
}

/// Items above 1 MiB (`-I`): the value length moves to a word of its own at the
/// 20-bit field's limit, and everything else about the item stays the same.
#[test]
fn values_of_a_mebibyte_and_more_round_trip_with_flags_appends_and_counters() {
    let mut s = Store::new(StoreConfig {
        slab_page_size: 8 << 20,
        max_item_size: 8 << 20,
        ..config(64 << 20, Policy::Lru)
    })
    .unwrap();
    let limit = (1 << 20) - 1;
    for (i, len) in [limit - 1, limit, limit + 1, 3 << 20, (8 << 20) - 400]
        .into_iter()
        .enumerate()
    {
        let v: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
        let k = format!("big{i}");
        for flags in [0, 77] {
            assert!(matches!(
                s.set(hk(k.as_bytes()), &v, flags, 0),
                StoreOutcome::Stored { .. }
            ));
            let got = s.get(hk(k.as_bytes())).unwrap();
            assert_eq!((got.value.len(), got.flags), (len, flags));
            assert!(got.value == &v[..], "value of {len} bytes");
        }
    }
    // Across the boundary by append and prepend.
    let v = vec![b'a'; limit - 2];
    s.set(hk(b"grow"), &v, 5, 0);
    s.store(StoreMode::Append, hk(b"grow"), 0, 0, b"bcd", 0);
    s.store(StoreMode::Prepend, hk(b"grow"), 0, 0, b"z", 0);
    let got = s.get(hk(b"grow")).unwrap();
    assert_eq!((got.value.len(), got.flags), (limit + 2, 5));
    assert_eq!(
        (&got.value[..1], &got.value[limit - 1..]),
        (&b"z"[..], &b"bcd"[..])
    );
    // Larger than the item limit: refused, as before.
    let huge = vec![0u8; 8 << 20];
    assert!(matches!(
        s.set(hk(b"huge"), &huge, 0, 0),
        StoreOutcome::TooLarge
    ));
}

#[test]
fn a_walk_visits_every_live_item_once_in_steps() {
    let mut s = Store::new(config(8 << 20, Policy::Clock)).expect("store");
    for i in 0..500u32 {
        let v = vec![b'w'; 10 + (i as usize % 4) * 100];
        let out = s.set(hk(format!("w:{i}").as_bytes()), &v, i, 0);
        assert!(matches!(out, StoreOutcome::Stored { .. }), "{out:?}");
    }
    s.delete(hk(b"w:7"));
    s.set(hk(b"gone"), b"x", 0, 1);
    s.set_time(s.now() + 5);
    let mut seen = std::collections::HashMap::new();
    let mut cursor = Some(crate::WalkCursor::default());
    let mut calls = 0;
    while let Some(c) = cursor {
        calls += 1;
        let mut taken = 0;
        // At most 3 items per call: the fourth stops the call and is visited first
        // by the next one.
        cursor = s.walk(c, 50, |it| {
            if taken == 3 {
                return false;
            }
            taken += 1;
            let key = String::from_utf8(it.key.to_vec()).unwrap();
            assert!(
                seen.insert(key, (it.flags, it.value.len())).is_none(),
                "twice"
            );
            true
        });
    }
    assert!(calls > 500 / 3, "{calls}");
    assert_eq!(seen.len(), 499);
    assert!(!seen.contains_key("w:7") && !seen.contains_key("gone"));
    assert_eq!(seen["w:3"], (3, 310));
}
