//! A key carries its hash from the shard to the store: the store files and finds items
//! by the carried hash, so a wrong one must not go unnoticed.

use super::super::{HashedKey, StoreOutcome, key_hash};
use super::*;

#[test]
fn a_carried_hash_finds_what_a_computed_one_stored() {
    let mut s = small();
    let key = b"user:1234";
    let carried = HashedKey::with_hash(key, key_hash(key));
    assert_eq!(carried, HashedKey::new(key));
    assert_eq!((carried.bytes(), carried.hash()), (&key[..], key_hash(key)));
    assert!(matches!(
        s.set(HashedKey::new(key), b"v", 0, 0),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(s.get(carried).map(|v| v.value), Some(&b"v"[..]));
}

/// Debug builds check every carried hash (tests run in debug builds).
#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "is not key_hash")]
fn a_wrong_hash_is_caught_in_debug_builds() {
    let key = b"user:1234";
    let _ = HashedKey::with_hash(key, key_hash(key) ^ 1);
}

/// Release builds trust the hash: the store looks under the carried one and does not
/// hash the key again, so an item stored under another key's hash is not found under its
/// own.
#[cfg(not(debug_assertions))]
#[test]
fn release_builds_use_the_carried_hash() {
    let mut s = small();
    let key = b"user:1234";
    let wrong = HashedKey::with_hash(key, key_hash(b"user:5678"));
    assert!(matches!(
        s.set(wrong, b"v", 0, 0),
        StoreOutcome::Stored { .. }
    ));
    assert!(s.get(HashedKey::new(key)).is_none());
    assert!(s.get(wrong).is_some());
}
