//! `--key-owner NODE --cluster-peers LIST`: only the keys a cluster's ring places on
//! one node. Sent to that node they are its local keys; sent to another node they
//! are keys one hop away, which it forwards. The ring is the server's own
//! (`cluster::Ring`, the crate the engine routes with), so the loadgen and the
//! nodes agree on every key without asking them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use cluster::{Peers, Ring, RingKind};

use super::keys::write_key;

/// The filter as given on the command line (and recorded in results).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOwner {
    /// The node whose keys are kept, by its name in `peers`.
    pub node: String,
    /// The cluster's member list, in `--cluster-peers` syntax: `NAME=HOST:PORT[:WEIGHT],...`.
    pub peers: String,
    /// `libketama` or `libmemcached-ketama`, as `--cluster-ring`.
    pub ring: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OwnerError {
    #[error("--key-owner `{0}` is not a node of --cluster-peers; give one of its names")]
    NotAMember(String),
    #[error("--key-owner: {0}")]
    Peers(#[from] cluster::PeersError),
    #[error("--cluster-ring `{0}`: give libketama or libmemcached-ketama")]
    RingKind(String),
    #[error("--key-owner: {0}")]
    Ring(#[from] cluster::RingError),
    #[error("--key-owner {node} owns none of the {keys} keys; give more --keys")]
    NoneOwned { node: String, keys: u64 },
}

/// The key indices a run draws from: every index of `0..keys`, or the ones one
/// node owns (8 bytes per owned key, computed once at start).
#[derive(Clone, Debug, PartialEq)]
pub enum KeySpace {
    All(u64),
    Subset(Arc<[u64]>),
}

impl KeySpace {
    pub fn len(&self) -> u64 {
        match self {
            KeySpace::All(n) => *n,
            KeySpace::Subset(v) => v.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key index at position `pos` (`pos < len()`).
    #[inline]
    pub fn index(&self, pos: u64) -> u64 {
        match self {
            KeySpace::All(_) => pos,
            KeySpace::Subset(v) => v[pos as usize],
        }
    }
}

impl KeyOwner {
    /// The indices among `0..keys` (named with `key_size` bytes) that the ring
    /// places on `node`, in increasing order.
    pub fn owned(&self, keys: u64, key_size: usize) -> Result<KeySpace, OwnerError> {
        let kind = RingKind::from_name(&self.ring)
            .ok_or_else(|| OwnerError::RingKind(self.ring.clone()))?;
        let peers = Peers::parse(&self.node, &self.peers).map_err(|e| match e {
            cluster::PeersError::MissingThisNode { node } => OwnerError::NotAMember(node),
            e => OwnerError::Peers(e),
        })?;
        let ring = Ring::new(&peers.members, kind)?;
        let mut name = Vec::with_capacity(key_size);
        let owned: Vec<u64> = (0..keys)
            .filter(|&i| {
                name.clear();
                write_key(&mut name, i, key_size);
                ring.node_of(&name) == peers.this_node
            })
            .collect();
        if owned.is_empty() {
            return Err(OwnerError::NoneOwned {
                node: self.node.clone(),
                keys,
            });
        }
        Ok(KeySpace::Subset(owned.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEERS: &str = "a=127.0.0.1:20001,b=127.0.0.1:20002,c=127.0.0.1:20003";

    fn owner(node: &str, peers: &str) -> KeyOwner {
        KeyOwner {
            node: node.into(),
            peers: peers.into(),
            ring: "libketama".into(),
        }
    }

    fn subset(s: KeySpace) -> Vec<u64> {
        match s {
            KeySpace::Subset(v) => v.to_vec(),
            KeySpace::All(_) => panic!("a filter gives a subset"),
        }
    }

    #[test]
    fn the_nodes_split_the_key_space_as_the_ring_does() {
        let keys = 10_000;
        let parts: Vec<Vec<u64>> = ["a", "b", "c"]
            .iter()
            .map(|n| subset(owner(n, PEERS).owned(keys, 8).unwrap()))
            .collect();
        let members = Peers::parse("a", PEERS).unwrap().members;
        let ring = Ring::new(&members, RingKind::Libketama).unwrap();
        let mut all: Vec<u64> = parts.concat();
        all.sort_unstable();
        assert_eq!(all, (0..keys).collect::<Vec<_>>(), "every key once");
        for (node, part) in parts.iter().enumerate() {
            // Roughly a third each (ketama's shares are uneven by a few percent).
            assert!(
                (2_000..4_700).contains(&part.len()),
                "{node}: {}",
                part.len()
            );
            for &i in part {
                let mut k = Vec::new();
                write_key(&mut k, i, 8);
                assert_eq!(ring.node_of(&k), node, "key {i}");
            }
        }
    }

    #[test]
    fn the_ring_kind_and_the_weights_count() {
        let oat = KeyOwner {
            ring: "libmemcached-ketama".into(),
            ..owner("a", PEERS)
        };
        assert_ne!(
            subset(oat.owned(1000, 6).unwrap()),
            subset(owner("a", PEERS).owned(1000, 6).unwrap())
        );
        // A member of weight 1000 next to one of weight 1 owns (nearly) everything.
        let heavy = "a=127.0.0.1:20001:1,b=127.0.0.1:20002:1000";
        assert!(owner("b", heavy).owned(1000, 6).unwrap().len() > 990);
    }

    #[test]
    fn problems_are_named() {
        assert_eq!(
            owner("d", PEERS).owned(10, 4),
            Err(OwnerError::NotAMember("d".into()))
        );
        assert!(matches!(
            owner("a", "a=127.0.0.1:1,a=127.0.0.1:2").owned(10, 4),
            Err(OwnerError::Peers(cluster::PeersError::DuplicateName { .. }))
        ));
        let bad_ring = KeyOwner {
            ring: "modula".into(),
            ..owner("a", PEERS)
        };
        assert_eq!(
            bad_ring.owned(10, 4),
            Err(OwnerError::RingKind("modula".into()))
        );
        // Weight 1000 to 1: the light member owns no point, so no key.
        let heavy = "a=127.0.0.1:20001:1,b=127.0.0.1:20002:1000";
        assert_eq!(
            owner("a", heavy).owned(100, 4),
            Err(OwnerError::NoneOwned {
                node: "a".into(),
                keys: 100
            })
        );
    }

    #[test]
    fn positions_map_to_indices() {
        let s = KeySpace::Subset(vec![3, 7, 9].into());
        assert_eq!((s.len(), s.index(1)), (3, 7));
        let all = KeySpace::All(5);
        assert_eq!((all.len(), all.index(4)), (5, 4));
    }
}
