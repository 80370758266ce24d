//! The item header's size and the size classes.

use super::super::item::{CAS_LEN, CasWords, HEADER_LEN, LINKS_LEN, Layout, Words};
use super::super::slab::{
    FINE_STEPS_MIN_PAGES, FINE_STEPS_UP_TO, FOUR_BYTE_STEPS_MIN_PAGES, class_sizes, fine_steps,
    handle_shift,
};
use super::*;

#[test]
fn header_is_eight_bytes_and_links_eight_more() {
    assert_eq!(HEADER_LEN, 8);
    assert_eq!(LINKS_LEN, 8);
    assert_eq!(CAS_LEN, 8);
    let on_demand = Layout::new(false, false, CasWords::OnDemand);
    assert_eq!(on_demand.hdr, 8);
    assert_eq!(Layout::new(true, false, CasWords::OnDemand).hdr, 16);
    // Benchmark item: 32-byte key, 100-byte value, flags 0, no TTL, CAS never read:
    // 140 bytes; each of CAS, exptime and flags adds a word when present.
    let w = |cas, exp, flags| Words { cas, exp, flags };
    let l = on_demand;
    assert_eq!(l.words(0, 0, false), w(false, false, false));
    assert_eq!(l.total(32, 100, w(false, false, false)), 140);
    assert_eq!(l.total(32, 100, w(true, false, false)), 148);
    assert_eq!(l.total(32, 100, w(false, false, true)), 144);
    assert_eq!(l.total(32, 100, w(false, true, false)), 144);
    assert_eq!(l.total(32, 100, w(true, true, true)), 156);
    assert_eq!(l.words(7, 60, true), w(true, true, true));
    // Every item carries the CAS word where CAS values are compared between stores,
    // none under -C; under -M the exptime word is always there.
    assert_eq!(
        Layout::new(false, false, CasWords::Always).words(0, 0, false),
        w(true, false, false)
    );
    assert_eq!(
        Layout::new(false, false, CasWords::Never).words(0, 0, true),
        w(false, false, false)
    );
    assert_eq!(
        Layout::new(false, true, CasWords::Always).words(0, 0, false),
        w(true, true, false)
    );
    // Values of 256 KiB - 1 and up carry their length in a word of their own.
    let none = w(false, false, false);
    assert_eq!(l.total(1, (1 << 18) - 2, none), 8 + 1 + (1 << 18) - 2);
    assert_eq!(l.total(1, (1 << 18) - 1, none), 8 + 4 + 1 + (1 << 18) - 1);
}

#[test]
fn classes_step_finely_then_grow_by_the_factor() {
    // Small shards: 8-byte steps only while the factor's step is smaller (to 104).
    let s = class_sizes(28, 1 << 20, 1.08, (8, 0));
    assert_eq!(&s[..4], &[32, 40, 48, 56]);
    assert_eq!(&s[9..13], &[104, 120, 136, 152]);
    assert_eq!(s.len(), 117);
    // With the pages for them: 8-byte steps to 256, then the factor.
    let f = class_sizes(28, 1 << 20, 1.08, (8, FINE_STEPS_UP_TO));
    assert_eq!(f.len(), 127);
    let fine: Vec<u32> = (32..=256).step_by(8).collect();
    assert_eq!(&f[..fine.len()], &fine[..]);
    assert_eq!(f[fine.len()], 280, "256 x 1.08 rounded up to 8");
    // With more: 4-byte steps to 256 (the 140-byte benchmark item fits exactly).
    let q = class_sizes(28, 1 << 20, 1.08, (4, FINE_STEPS_UP_TO));
    let fine4: Vec<u32> = (28..=256).step_by(4).collect();
    assert_eq!(&q[..fine4.len()], &fine4[..]);
    assert!(q.contains(&140));
    assert_eq!(q[fine4.len()], 280);
    assert_eq!(q.len(), 127 + 29);
    for (s, step) in [(s, 8), (f, 8), (q, 4)] {
        assert_eq!(*s.last().unwrap(), 1 << 20);
        for w in s[..s.len() - 2].windows(2) {
            assert!(w[1] >= w[0] + step && w[1] % step == 0);
            if w[0] >= 256 {
                assert!(w[1] % 8 == 0);
            }
            assert!(w[1] as f64 <= (w[0] as f64 * 1.08).ceil() + 8.0, "{w:?}");
        }
    }
}

/// Handles count 4 bytes while a u32 reaches every 4-byte offset, 8 above 16 GiB.
#[test]
fn handles_count_four_bytes_up_to_sixteen_gib() {
    assert_eq!(handle_shift(1 << 30), 2);
    assert_eq!(handle_shift((16 << 30) - (1 << 20)), 2);
    assert_eq!(handle_shift(16 << 30), 3);
    assert_eq!(handle_shift(32 << 30), 3);
    // Large arenas keep 8-byte steps: their chunks are multiples of the granule.
    assert_eq!(fine_steps(1 << 15, 3), (8, FINE_STEPS_UP_TO));
}

/// The fine steps need pages: a shard below `FINE_STEPS_MIN_PAGES` keeps the coarser
/// classes, one below `FOUR_BYTE_STEPS_MIN_PAGES` 8-byte steps (hit ratios in
/// docs/store.md, "Size classes").
#[test]
fn fine_classes_only_with_enough_pages() {
    assert_eq!(fine_steps(FINE_STEPS_MIN_PAGES - 1, 2), (8, 0));
    assert_eq!(fine_steps(FINE_STEPS_MIN_PAGES, 2), (8, FINE_STEPS_UP_TO));
    assert_eq!(
        fine_steps(FOUR_BYTE_STEPS_MIN_PAGES - 1, 2),
        (8, FINE_STEPS_UP_TO)
    );
    assert_eq!(
        fine_steps(FOUR_BYTE_STEPS_MIN_PAGES, 2),
        (4, FINE_STEPS_UP_TO)
    );
    let classes = |mib: usize| {
        Store::new(config(mib << 20, Policy::default()))
            .unwrap()
            .class_sizes()
    };
    // From a 24-byte first chunk (the 8-byte header and 16 bytes).
    assert_eq!(classes(32)[0], 24);
    assert_eq!(classes(32).len(), 118);
    assert!(!classes(32).contains(&112));
    assert_eq!(classes(64).len(), 128);
    assert!(classes(64).contains(&112) && classes(64).contains(&144));
    assert!(!classes(64).contains(&140));
    assert_eq!(classes(128)[..3], [24, 28, 32]);
    assert_eq!(classes(128).len(), 128 + 29);
    assert!(classes(128).contains(&140));
}

/// A 1 GiB shard's handles take 28 bits, leaving the index a 4-bit tag: the
/// arena's last chunk starts a smallest chunk before its end.
#[test]
fn a_gib_shard_leaves_the_index_four_tag_bits() {
    let s = Store::new(config(1 << 30, Policy::default())).unwrap();
    assert_eq!(32 - s.slabs.max_handle(s.arena.len).leading_zeros(), 28);
}

/// The smallest class holds the header and 16 bytes of key and value, so
/// the smallest items share it (memcached's issue_29.t: empty values with 7-
/// and 9-byte keys, both in class 1).
#[test]
fn the_smallest_items_share_the_first_class() {
    // With evictions, and under -M (every item has the exptime word).
    for evictions in [true, false] {
        let mut s = Store::new(StoreConfig {
            evictions,
            ..config(8 << 20, Policy::default())
        })
        .unwrap();
        for key in [&b"issue29"[..], b"issue29_b", b"sixteen-byte-key"] {
            s.set(hk(key), b"", 0, 0);
            assert_eq!(s.peek(hk(key)).unwrap().class_id, 1, "{key:?}");
        }
        // Without -M the first class is exactly that (32 bytes).
        if evictions {
            s.set(hk(b"seventeen-byte-ke"), b"", 0, 0);
            assert_eq!(s.peek(hk(b"seventeen-byte-ke")).unwrap().class_id, 2);
        }
    }
}

#[test]
fn default_store_fits_the_class_limit() {
    let s = small();
    assert!(s.class_sizes().len() <= 250);
}

#[test]
fn config_enums_use_lowercase_names_for_toml() {
    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, MapDeserializer, StrDeserializer};
    let de = |s: &'static str| -> StrDeserializer<'static, Error> { s.into_deserializer() };
    for p in Policy::ALL {
        assert_eq!(Policy::deserialize(de(p.name())).unwrap(), p);
    }
    assert_eq!(HugePages::deserialize(de("try")).unwrap(), HugePages::Try);
    assert_eq!(
        super::super::Numa::deserialize(de("local")).unwrap(),
        super::super::Numa::Local
    );
    assert!(Policy::deserialize(de("LRU")).is_err());
    // A section naming only some fields takes the defaults for the rest.
    let map =
        MapDeserializer::<_, Error>::new([("eviction", "lru"), ("hugepages", "off")].into_iter());
    let cfg = StoreConfig::deserialize(map).unwrap();
    assert_eq!((cfg.eviction, cfg.hugepages), (Policy::Lru, HugePages::Off));
    assert_eq!(cfg.memory_limit, StoreConfig::default().memory_limit);
    let bad = MapDeserializer::<_, Error>::new([("evction", "lru")].into_iter());
    assert!(
        StoreConfig::deserialize(bad).is_err(),
        "unknown fields are rejected"
    );
}
