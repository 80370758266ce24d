//! A request's key together with its hash, so that a key is hashed once per request:
//! the shard hashes it to route and prefetch, and hands the same hash to the store.

use xxhash_rust::xxh3::xxh3_64;

/// The one hash of a key, for every layer: shard routing (high bits), the index
/// (low bits and tag), the S3-FIFO ghost, and rehashing during index growth.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// A key and its `key_hash`. Every keyed operation of the store takes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashedKey<'a> {
    bytes: &'a [u8],
    hash: u64,
}

impl<'a> HashedKey<'a> {
    /// Hashes `bytes`: for callers that have not hashed the key yet.
    #[inline]
    pub fn new(bytes: &'a [u8]) -> HashedKey<'a> {
        HashedKey {
            bytes,
            hash: key_hash(bytes),
        }
    }

    /// A key whose hash the caller already computed with `key_hash`. A wrong hash
    /// would file the item under the wrong slot (a later lookup would miss it, and the
    /// index could hold the key twice), so debug builds check it.
    #[inline]
    pub fn with_hash(bytes: &'a [u8], hash: u64) -> HashedKey<'a> {
        debug_assert_eq!(
            hash,
            key_hash(bytes),
            "hash of key {bytes:?} is not key_hash"
        );
        HashedKey { bytes, hash }
    }

    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    #[inline]
    pub fn hash(&self) -> u64 {
        self.hash
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
