//! Where a key's requests run inside a node: a pure function of xxh3(key),
//! this shard and the shard count. In a cluster the node comes first: the
//! cluster crate's `Router` decides both in one function (see
//! `shard::peer::forward`, `Core::place`), with the same shard reduction.
//!
//! The hash is reduced with a multiply-shift (Lemire's fastrange) on the full
//! 64 bits, so the owner depends mostly on the high bits while the store's
//! index uses the low bits of the same hash: the two stay independent.

/// The hash every layer uses for a key: the store's, so that the hash the
/// shard routes and prefetches with is the one the store files the key under.
pub use store::key_hash;

/// The shard that owns a key with hash `hash`, out of `shards` (> 0).
#[inline]
pub fn shard_of_hash(hash: u64, shards: usize) -> usize {
    ((hash as u128 * shards as u128) >> 64) as usize
}

/// Where a request for a key runs: on this shard's store inline (`Local`),
/// on another shard of this process through the mesh (`Shard`), or on
/// another node over a peer link (`Node`, an index into the ring's members).
pub use cluster::Target;

/// Where a request for a key with hash `hash` runs, seen from shard `me` of
/// `shards` (> 0), within this node (never [`Target::Node`]).
#[inline]
pub fn target(hash: u64, me: usize, shards: usize) -> Target {
    if shards == 1 {
        return Target::Local;
    }
    match shard_of_hash(hash, shards) {
        owner if owner == me => Target::Local,
        owner => Target::Shard(owner),
    }
}

/// The shard that owns `key`, out of `shards` (> 0).
#[inline]
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    shard_of_hash(key_hash(key), shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: [usize; 6] = [2, 3, 0, 2, 0, 1];

    #[test]
    fn one_shard_owns_everything() {
        for key in [&b""[..], b"a", b"some:key:1234"] {
            assert_eq!(shard_of(key, 1), 0);
        }
    }

    #[test]
    fn owner_is_stable_and_in_range() {
        for shards in 1..=16 {
            for i in 0..1000 {
                let key = format!("key:{i}");
                let owner = shard_of(key.as_bytes(), shards);
                assert!(owner < shards);
                assert_eq!(owner, shard_of(key.as_bytes(), shards), "pure function");
            }
        }
    }

    #[test]
    fn the_target_is_local_exactly_for_own_keys() {
        assert_eq!(target(key_hash(b"anything"), 0, 1), Target::Local);
        for shards in 2..=8 {
            for me in 0..shards {
                for i in 0..200 {
                    let key = format!("k{i}");
                    let h = key_hash(key.as_bytes());
                    let owner = shard_of(key.as_bytes(), shards);
                    let want = if owner == me {
                        Target::Local
                    } else {
                        Target::Shard(owner)
                    };
                    assert_eq!(target(h, me, shards), want);
                }
            }
        }
    }

    #[test]
    fn keys_spread_evenly() {
        // 100k keys over 4 shards: each within 2% of a quarter.
        let mut counts = [0usize; 4];
        for i in 0..100_000 {
            counts[shard_of(format!("user:{i}").as_bytes(), 4)] += 1;
        }
        for c in counts {
            assert!((24_500..=25_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn pinned_owners_do_not_change_between_releases() {
        // A change would move keys between shards of a running deployment's
        // peers on upgrade; these were computed once and are pinned.
        let owners: Vec<usize> = ["foo", "bar", "baz", "qux", "user:1", "user:2"]
            .iter()
            .map(|k| shard_of(k.as_bytes(), 4))
            .collect();
        assert_eq!(owners, PINNED);
    }
}
