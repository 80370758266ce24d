//! Node first, then shard: the one function that says where a key is served.

use crate::ring::Ring;

/// Where a request for a key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The shard that is routing owns the key.
    Local,
    /// Another shard of this node owns it.
    Shard(usize),
    /// Another node owns it (an index into the ring's member list).
    Node(usize),
}

/// The shard of `shards` (> 0) that owns a key with xxh3 hash `hash`. The same
/// multiply-shift as the engine's `shard::route::shard_of_hash`: it uses the high
/// bits of the hash, the store's index the low ones.
#[inline]
pub fn shard_of_hash(hash: u64, shards: usize) -> usize {
    ((hash as u128 * shards as u128) >> 64) as usize
}

/// What one shard knows to route a key: the ring, and where it sits in it.
#[derive(Debug, Clone, Copy)]
pub struct Router<'a> {
    pub ring: &'a Ring,
    /// This node's index in the ring's member list.
    pub this_node: usize,
    /// The routing shard's index on this node.
    pub this_shard: usize,
    /// Shards on this node, > 0.
    pub shards: usize,
    /// Off when clients (or twemproxy) do their own placement: every key is then
    /// served here, whichever node the ring names.
    pub forwarding: bool,
}

impl Router<'_> {
    /// Where `key`, whose xxh3 hash is `hash`, is served. Never [`Target::Node`]
    /// with forwarding off or a single node, and never `Node(this_node)`.
    pub fn route(&self, key: &[u8], hash: u64) -> Target {
        if self.forwarding && self.ring.len() > 1 {
            let node = self.ring.node_of(key);
            if node != self.this_node {
                return Target::Node(node);
            }
        }
        let shard = shard_of_hash(hash, self.shards);
        if shard == self.this_shard {
            Target::Local
        } else {
            Target::Shard(shard)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Member, RingKind};
    use xxhash_rust::xxh3::xxh3_64;

    fn ring(nodes: usize) -> Ring {
        let members: Vec<Member> = (0..nodes)
            .map(|i| Member {
                name: format!("n{i}"),
                host: "127.0.0.1".into(),
                port: 20000 + i as u16,
                weight: 1,
            })
            .collect();
        Ring::new(&members, RingKind::Libketama).unwrap()
    }

    #[test]
    fn shard_of_hash_keeps_the_engines_pinned_owners() {
        // The values engine/src/shard/route.rs pins in
        // `pinned_owners_do_not_change_between_releases`: the two must never part.
        let owners: Vec<usize> = ["foo", "bar", "baz", "qux", "user:1", "user:2"]
            .iter()
            .map(|k| shard_of_hash(xxh3_64(k.as_bytes()), 4))
            .collect();
        assert_eq!(owners, [2, 3, 0, 2, 0, 1]);
    }

    #[test]
    fn shard_of_hash_covers_the_range() {
        assert_eq!(shard_of_hash(0, 7), 0);
        assert_eq!(shard_of_hash(u64::MAX, 7), 6);
        assert_eq!(shard_of_hash(u64::MAX, 1), 0);
    }

    #[test]
    fn node_first_then_shard() {
        let ring = ring(3);
        for this_node in 0..3 {
            for this_shard in 0..4 {
                let router = Router {
                    ring: &ring,
                    this_node,
                    this_shard,
                    shards: 4,
                    forwarding: true,
                };
                for i in 0..3000 {
                    let key = format!("key:{i}");
                    let hash = xxh3_64(key.as_bytes());
                    let node = ring.node_of(key.as_bytes());
                    let shard = shard_of_hash(hash, 4);
                    let expected = if node != this_node {
                        Target::Node(node)
                    } else if shard != this_shard {
                        Target::Shard(shard)
                    } else {
                        Target::Local
                    };
                    assert_eq!(router.route(key.as_bytes(), hash), expected, "{key}");
                }
            }
        }
    }

    #[test]
    fn every_target_occurs() {
        let ring = ring(3);
        let router = Router {
            ring: &ring,
            this_node: 1,
            this_shard: 0,
            shards: 2,
            forwarding: true,
        };
        let mut seen = [false; 3];
        for i in 0..1000 {
            let key = format!("key:{i}");
            match router.route(key.as_bytes(), xxh3_64(key.as_bytes())) {
                Target::Local => seen[0] = true,
                Target::Shard(s) => {
                    assert_eq!(s, 1);
                    seen[1] = true;
                }
                Target::Node(n) => {
                    assert_ne!(n, 1);
                    seen[2] = true;
                }
            }
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn forwarding_off_or_one_node_never_leaves_the_node() {
        let three = ring(3);
        let one = ring(1);
        for (ring, forwarding) in [(&three, false), (&one, true), (&one, false)] {
            let router = Router {
                ring,
                this_node: 0,
                this_shard: 1,
                shards: 3,
                forwarding,
            };
            for i in 0..2000 {
                let key = format!("key:{i}");
                let hash = xxh3_64(key.as_bytes());
                let target = router.route(key.as_bytes(), hash);
                assert!(!matches!(target, Target::Node(_)), "{key}: {target:?}");
                let shard = shard_of_hash(hash, 3);
                let expected = if shard == 1 {
                    Target::Local
                } else {
                    Target::Shard(shard)
                };
                assert_eq!(target, expected);
            }
        }
    }
}
