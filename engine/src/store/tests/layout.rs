//! The item header's size and the size classes.

use super::super::item::{HEADER_LEN, LINKS_LEN, Layout};
use super::super::slab::class_sizes;
use super::*;

#[test]
fn header_is_twenty_bytes_and_links_eight_more() {
    assert_eq!(HEADER_LEN, 20);
    assert_eq!(LINKS_LEN, 8);
    assert_eq!(Layout::new(false).hdr, 20);
    assert_eq!(Layout::new(true).hdr, 28);
    // Benchmark item: 32-byte key, 100-byte value, flags 0 -> 152 bytes, a class size.
    assert_eq!(Layout::new(false).total(32, 100, 0), 152);
    assert_eq!(Layout::new(false).total(32, 100, 7), 156);
}

#[test]
fn classes_step_by_eight_then_grow_by_the_factor() {
    let s = class_sizes(28, 1 << 20, 1.08);
    assert_eq!(&s[..4], &[32, 40, 48, 56]);
    assert!(s.contains(&152), "{s:?}");
    assert_eq!(*s.last().unwrap(), 1 << 20);
    for w in s[..s.len() - 2].windows(2) {
        assert!(w[1] >= w[0] + 8 && w[1] % 8 == 0);
        assert!(w[1] as f64 <= (w[0] as f64 * 1.08).ceil() + 8.0, "{w:?}");
    }
}

#[test]
fn default_store_fits_the_class_limit() {
    let s = small();
    assert!(s.class_sizes().len() <= 250);
}
