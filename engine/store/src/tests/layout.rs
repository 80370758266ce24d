//! The item header's size and the size classes.

use super::super::item::{HEADER_LEN, LINKS_LEN, Layout};
use super::super::slab::{FINE_STEPS_MIN_PAGES, FINE_STEPS_UP_TO, class_sizes, fine_steps_up_to};
use super::*;

#[test]
fn header_is_sixteen_bytes_and_links_eight_more() {
    assert_eq!(HEADER_LEN, 16);
    assert_eq!(LINKS_LEN, 8);
    assert_eq!(Layout::new(false, false).hdr, 16);
    assert_eq!(Layout::new(true, false).hdr, 24);
    // Benchmark item: 32-byte key, 100-byte value, flags 0, no TTL -> 148 bytes, in the
    // 152-byte class; each of exptime and flags adds a word when non-zero.
    let l = Layout::new(false, false);
    assert_eq!(l.total(32, 100, 0, 0), 148);
    assert_eq!(l.total(32, 100, 7, 0), 152);
    assert_eq!(l.total(32, 100, 0, 60), 152);
    assert_eq!(l.total(32, 100, 7, 60), 156);
    // Under -M the exptime word is always there.
    assert_eq!(Layout::new(false, true).total(32, 100, 0, 0), 152);
    // Values of 512 KiB - 1 and up carry their length in a word of their own.
    assert_eq!(l.total(1, (1 << 19) - 2, 0, 0), 16 + 1 + (1 << 19) - 2);
    assert_eq!(l.total(1, (1 << 19) - 1, 0, 0), 16 + 4 + 1 + (1 << 19) - 1);
}

#[test]
fn classes_step_by_eight_then_grow_by_the_factor() {
    // Small shards: 8-byte steps only while the factor's step is smaller (to 104).
    let s = class_sizes(28, 1 << 20, 1.08, 0);
    assert_eq!(&s[..4], &[32, 40, 48, 56]);
    assert_eq!(&s[9..13], &[104, 120, 136, 152]);
    assert_eq!(s.len(), 117);
    // With the pages for them: 8-byte steps to 256, then the factor.
    let f = class_sizes(28, 1 << 20, 1.08, FINE_STEPS_UP_TO);
    assert_eq!(f.len(), 127);
    let fine: Vec<u32> = (32..=256).step_by(8).collect();
    assert_eq!(&f[..fine.len()], &fine[..]);
    assert_eq!(f[fine.len()], 280, "256 x 1.08 rounded up to 8");
    for s in [s, f] {
        assert_eq!(*s.last().unwrap(), 1 << 20);
        for w in s[..s.len() - 2].windows(2) {
            assert!(w[1] >= w[0] + 8 && w[1] % 8 == 0);
            assert!(w[1] as f64 <= (w[0] as f64 * 1.08).ceil() + 8.0, "{w:?}");
        }
    }
}

/// The fine steps need pages: a shard below `FINE_STEPS_MIN_PAGES` keeps the coarser
/// classes (hit ratios in docs/store.md, "Size classes").
#[test]
fn fine_classes_only_with_enough_pages() {
    assert_eq!(fine_steps_up_to(FINE_STEPS_MIN_PAGES - 1), 0);
    assert_eq!(fine_steps_up_to(FINE_STEPS_MIN_PAGES), FINE_STEPS_UP_TO);
    let classes = |mib: usize| {
        Store::new(config(mib << 20, Policy::default()))
            .unwrap()
            .class_sizes()
    };
    assert_eq!(classes(32).len(), 117);
    assert!(!classes(32).contains(&112));
    assert_eq!(classes(64).len(), 127);
    assert!(classes(64).contains(&112));
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
