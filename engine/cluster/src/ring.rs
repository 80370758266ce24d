//! The consistent-hash ring (a "continuum"), built the way ketama clients build theirs.
//!
//! Every member puts points on a 32-bit circle; a key belongs to the member of the
//! first point at or after the key's hash, wrapping past the top to the first point.
//! What the points are and how a key is hashed is the [`RingKind`]:
//!
//! | kind | key hash | points per member | point labels |
//! |---|---|---|---|
//! | `Libketama` | MD5, first word | `floor(w / W * 40 * n) * 4`, 4 per digest | `label-0` .. |
//! | `LibmemcachedKetama`, all weights 1 | one-at-a-time | 100, one per hash | `label-0` .. `label-99` |
//! | `LibmemcachedKetama`, any weight > 1 | one-at-a-time | as `Libketama` | as `Libketama` |
//!
//! (w: the member's weight, W: the sum of the weights, n: the number of members,
//! label: [`Member::ketama_label`].) The last row is libmemcached's own rule: adding
//! a server with a weight above 1 to a ketama client switches on its weighted
//! layout, while the key hash stays the one the client had.
//!
//! The ring is built once, with its allocations; a lookup hashes the key and does
//! one binary search over a sorted `Vec<(point, member)>`.

use thiserror::Error;

use crate::hash::{md5_words, one_at_a_time};

/// The port libmemcached and twemproxy leave out of a server's label.
pub const KETAMA_DEFAULT_PORT: u16 = 11211;

/// The most nodes [`Ring::replicas`] returns for one key.
pub const MAX_REPLICAS: usize = 8;

/// libmemcached's `MEMCACHED_POINTS_PER_SERVER`, its unweighted ketama.
const POINTS_PER_SERVER: u32 = 100;
/// libketama's 160 points per server of average weight (`MEMCACHED_POINTS_PER_SERVER_KETAMA`).
const POINTS_PER_SERVER_KETAMA: u32 = 160;
/// One MD5 digest gives four 32-bit points.
const POINTS_PER_DIGEST: u32 = 4;

/// Which client convention the ring reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RingKind {
    /// libketama's: MD5 keys, 160 weighted points per server. libmemcached's
    /// `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` (pylibmc `{"ketama_weighted": True}`),
    /// php-memcached's `OPT_LIBKETAMA_COMPATIBLE` and twemproxy's
    /// `distribution: ketama` with `hash: md5` place keys this way.
    #[default]
    Libketama,
    /// libmemcached's `MEMCACHED_BEHAVIOR_KETAMA` (pylibmc `{"ketama": True}`): the
    /// default one-at-a-time hash, 100 points per server while every weight is 1.
    LibmemcachedKetama,
}

impl RingKind {
    /// The name `--cluster-ring` takes.
    pub fn name(self) -> &'static str {
        match self {
            RingKind::Libketama => "libketama",
            RingKind::LibmemcachedKetama => "libmemcached-ketama",
        }
    }

    /// Parses a `--cluster-ring` value.
    pub fn from_name(name: &str) -> Option<RingKind> {
        match name {
            "libketama" => Some(RingKind::Libketama),
            "libmemcached-ketama" => Some(RingKind::LibmemcachedKetama),
            _ => None,
        }
    }
}

/// One node of the cluster as the ring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node's name in `--cluster-node` / `--cluster-peers`; not hashed.
    pub name: String,
    /// The host exactly as clients write it (`10.0.0.1`, `cache-a`, `::1` without
    /// brackets): ketama hashes this text, so `localhost` and `127.0.0.1` are two
    /// different rings.
    pub host: String,
    pub port: u16,
    /// Relative share of the keys, 1 or more.
    pub weight: u32,
}

impl Member {
    /// The text ketama clients hash for this server's points, before `-i`:
    /// `host:port`, or `host` alone on port 11211 (libmemcached's `update_continuum`,
    /// twemproxy's server name when the pool gives none).
    pub fn ketama_label(&self) -> String {
        if self.port == KETAMA_DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a ring cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RingError {
    #[error("a ring needs at least one member")]
    Empty,
    #[error("member {index} (`{name}`) has weight 0; weights start at 1")]
    ZeroWeight { index: usize, name: String },
    #[error("{0} members are more than a ring can index")]
    TooMany(usize),
}

/// The continuum: sorted points, each naming the member (an index into the member
/// list it was built from) that owns the arc ending at it.
#[derive(Debug, Clone)]
pub struct Ring {
    kind: RingKind,
    /// Sorted by point, then by member, as libmemcached's `continuum_item_cmp`.
    points: Vec<(u32, u32)>,
    points_per_member: Vec<u32>,
    /// Members with at least one point: the most distinct nodes a walk can meet.
    members_on_ring: usize,
}

impl Ring {
    /// Builds the ring for `members`, in this order: indices returned by lookups
    /// are indices into `members`. Clients must list the servers in the same order
    /// only where points collide (two members on one 32-bit point, which
    /// libmemcached breaks in favour of the earlier server).
    pub fn new(members: &[Member], kind: RingKind) -> Result<Ring, RingError> {
        Ring::over_live(members, kind, &vec![true; members.len()])
    }

    /// The ring of the members marked in `live` (by index, one flag per
    /// member), with the placement a client given only those servers computes:
    /// indices returned by lookups still index `members`, and the members not
    /// live have no points. So a key moves only when its owner leaves or comes
    /// back (with equal weights; weighted shares are recomputed over the live
    /// members, as the client would). At least one member must be live.
    pub fn over_live(members: &[Member], kind: RingKind, live: &[bool]) -> Result<Ring, RingError> {
        assert_eq!(live.len(), members.len(), "one live flag per member");
        if members.is_empty() || !live.contains(&true) {
            return Err(RingError::Empty);
        }
        if u32::try_from(members.len()).is_err() {
            return Err(RingError::TooMany(members.len()));
        }
        if let Some(index) = members.iter().position(|m| m.weight == 0) {
            let name = members[index].name.clone();
            return Err(RingError::ZeroWeight { index, name });
        }
        let weighted = match kind {
            RingKind::Libketama => true,
            RingKind::LibmemcachedKetama => members.iter().any(|m| m.weight > 1),
        };
        let total_weight: u64 = members
            .iter()
            .zip(live)
            .filter(|&(_, &l)| l)
            .map(|(m, _)| u64::from(m.weight))
            .sum();
        let live_members = live.iter().filter(|&&l| l).count();
        let points_per_member: Vec<u32> = members
            .iter()
            .zip(live)
            .map(|(m, &l)| {
                if !l {
                    0
                } else if weighted {
                    weighted_points(m.weight, total_weight, live_members)
                } else {
                    POINTS_PER_SERVER
                }
            })
            .collect();

        let mut points = Vec::with_capacity(points_per_member.iter().sum::<u32>() as usize);
        for (index, (member, &count)) in members.iter().zip(&points_per_member).enumerate() {
            let index = index as u32;
            let label = member.ketama_label();
            if weighted {
                for i in 0..count / POINTS_PER_DIGEST {
                    let words = md5_words(format!("{label}-{i}").as_bytes());
                    points.extend(words.iter().map(|&w| (w, index)));
                }
            } else {
                for i in 0..count {
                    points.push((one_at_a_time(format!("{label}-{i}").as_bytes()), index));
                }
            }
        }
        points.sort_unstable();
        let members_on_ring = points_per_member.iter().filter(|&&c| c > 0).count();
        Ok(Ring {
            kind,
            points,
            points_per_member,
            members_on_ring,
        })
    }

    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The number of members the ring was built from.
    pub fn len(&self) -> usize {
        self.points_per_member.len()
    }

    /// Never true: a ring has at least one member.
    pub fn is_empty(&self) -> bool {
        self.points_per_member.is_empty()
    }

    /// How many points member `index` has on the circle (its share of the keys is
    /// roughly this over the total). A weighted member can have none.
    pub fn points_of(&self, index: usize) -> u32 {
        self.points_per_member[index]
    }

    /// The key's position on the circle, with the kind's key hash.
    pub fn hash_key(&self, key: &[u8]) -> u32 {
        match self.kind {
            RingKind::Libketama => md5_words(key)[0],
            RingKind::LibmemcachedKetama => one_at_a_time(key),
        }
    }

    /// The member that owns `key`.
    pub fn node_of(&self, key: &[u8]) -> usize {
        // libmemcached sends every key to a lone server without hashing it.
        if self.len() == 1 {
            return 0;
        }
        self.points[self.point_at(self.hash_key(key))].1 as usize
    }

    /// The owner of `key` followed by the next distinct members clockwise, `r` in
    /// all (fewer when fewer members have points; at most [`MAX_REPLICAS`]): the
    /// owner, then where its replicas live.
    pub fn replicas(&self, key: &[u8], r: usize) -> Replicas<'_> {
        let start = if self.len() == 1 {
            0
        } else {
            self.point_at(self.hash_key(key))
        };
        Replicas {
            points: &self.points,
            start,
            step: 0,
            found: [0; MAX_REPLICAS],
            len: 0,
            want: r.min(MAX_REPLICAS).min(self.members_on_ring),
        }
    }

    /// The index of the first point at or after `hash`, wrapping to 0 past the top.
    fn point_at(&self, hash: u32) -> usize {
        let i = self.points.partition_point(|&(point, _)| point < hash);
        if i == self.points.len() { 0 } else { i }
    }
}

/// libmemcached's points for a weighted member, in its `float` arithmetic:
/// `floor(pct * 160 / 4 * n + 1e-10) * 4` with `pct = weight / total` (twemproxy
/// computes the same). The float rounding decides the cases that land near an
/// integer, so it is kept exactly, operation by operation.
fn weighted_points(weight: u32, total_weight: u64, members: usize) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let digests = pct * POINTS_PER_SERVER_KETAMA as f32 / POINTS_PER_DIGEST as f32 * members as f32
        + 0.000_000_000_1_f32;
    digests.floor() as u32 * POINTS_PER_DIGEST
}

/// The iterator [`Ring::replicas`] returns; it allocates nothing.
#[derive(Debug, Clone)]
pub struct Replicas<'a> {
    points: &'a [(u32, u32)],
    start: usize,
    step: usize,
    found: [u32; MAX_REPLICAS],
    len: usize,
    want: usize,
}

impl Iterator for Replicas<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.len < self.want && self.step < self.points.len() {
            let (_, node) = self.points[(self.start + self.step) % self.points.len()];
            self.step += 1;
            if !self.found[..self.len].contains(&node) {
                self.found[self.len] = node;
                self.len += 1;
                return Some(node as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Member {
                name: format!("n{i}"),
                host: "10.0.0.1".to_string(),
                port: 11211 + i as u16,
                weight,
            })
            .collect()
    }

    #[test]
    fn label_leaves_out_the_default_port() {
        let mut m = members(&[1]).remove(0);
        assert_eq!(m.ketama_label(), "10.0.0.1");
        m.port = 11212;
        assert_eq!(m.ketama_label(), "10.0.0.1:11212");
        m.host = "::1".to_string();
        assert_eq!(m.ketama_label(), "::1:11212");
    }

    #[test]
    fn point_counts_follow_the_kind_and_the_weights() {
        let ring = Ring::new(&members(&[1, 1, 1]), RingKind::Libketama).unwrap();
        assert_eq!(
            (0..3).map(|i| ring.points_of(i)).collect::<Vec<_>>(),
            [160; 3]
        );
        let ring = Ring::new(&members(&[1, 1, 1]), RingKind::LibmemcachedKetama).unwrap();
        assert_eq!(
            (0..3).map(|i| ring.points_of(i)).collect::<Vec<_>>(),
            [100; 3]
        );
        // 1/8, 2/8, 5/8 of 3 * 40 digests: floor(15), floor(30), floor(75) digests.
        for kind in [RingKind::Libketama, RingKind::LibmemcachedKetama] {
            let ring = Ring::new(&members(&[1, 2, 5]), kind).unwrap();
            let counts: Vec<u32> = (0..3).map(|i| ring.points_of(i)).collect();
            assert_eq!(counts, [60, 120, 300], "{kind:?}");
        }
        // Equal weights above 1 switch libmemcached's ketama to the weighted layout.
        let ring = Ring::new(&members(&[2, 2, 2]), RingKind::LibmemcachedKetama).unwrap();
        assert_eq!(ring.points_of(0), 160);
    }

    #[test]
    fn weighted_points_round_as_libmemcached_floats_do() {
        assert_eq!(weighted_points(1, 3, 3), 160);
        // With 25 equal members the float product is 39.99999, so each gets 39
        // digests where exact arithmetic would give 40; libmemcached does the same
        // (the 25-member fixture checks it against the real client).
        assert_eq!(weighted_points(1, 25, 25), 156);
        assert_eq!(weighted_points(1, 24, 24), 160);
        // A tiny share floors to no point at all, as in libmemcached.
        assert_eq!(weighted_points(1, 1000, 2), 0);
        assert_eq!(weighted_points(999, 1000, 2), 79 * 4);
    }

    #[test]
    fn bad_member_lists_are_refused() {
        assert_eq!(
            Ring::new(&[], RingKind::Libketama).unwrap_err(),
            RingError::Empty
        );
        let err = Ring::new(&members(&[1, 0]), RingKind::Libketama).unwrap_err();
        assert_eq!(
            err,
            RingError::ZeroWeight {
                index: 1,
                name: "n1".into()
            }
        );
    }

    #[test]
    fn lookup_takes_the_first_point_at_or_after_the_hash_and_wraps() {
        let ring = Ring::new(&members(&[1, 1, 1]), RingKind::Libketama).unwrap();
        let (first, first_node) = ring.points[0];
        let (last, _) = *ring.points.last().unwrap();
        assert_eq!(ring.point_at(0), 0);
        assert_eq!(ring.point_at(first), 0);
        assert_eq!(ring.point_at(first + 1), 1);
        assert_eq!(ring.point_at(last), ring.points.len() - 1);
        if last < u32::MAX {
            assert_eq!(ring.points[ring.point_at(last + 1)].1, first_node);
        }
    }

    #[test]
    fn one_member_owns_every_key() {
        let ring = Ring::new(&members(&[3]), RingKind::LibmemcachedKetama).unwrap();
        for i in 0..100 {
            assert_eq!(ring.node_of(format!("k{i}").as_bytes()), 0);
        }
        assert_eq!(ring.replicas(b"k", 3).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn replicas_start_at_the_owner_and_are_distinct() {
        let ring = Ring::new(&members(&[1, 1, 1, 1, 1]), RingKind::Libketama).unwrap();
        for i in 0..2000 {
            let key = format!("key:{i}");
            let nodes: Vec<usize> = ring.replicas(key.as_bytes(), 3).collect();
            assert_eq!(nodes.len(), 3);
            assert_eq!(nodes[0], ring.node_of(key.as_bytes()));
            assert!(nodes[0] != nodes[1] && nodes[1] != nodes[2] && nodes[0] != nodes[2]);
            let all: Vec<usize> = ring.replicas(key.as_bytes(), 99).collect();
            assert_eq!(all.len(), 5);
            assert_eq!(all[..3], nodes[..]);
        }
    }

    #[test]
    fn replicas_follow_the_ring_clockwise() {
        let ring = Ring::new(&members(&[1, 1, 1]), RingKind::LibmemcachedKetama).unwrap();
        let key = b"key:42";
        let mut expected = Vec::new();
        let start = ring.point_at(ring.hash_key(key));
        for step in 0..ring.points.len() {
            let node = ring.points[(start + step) % ring.points.len()].1 as usize;
            if !expected.contains(&node) {
                expected.push(node);
            }
        }
        assert_eq!(ring.replicas(key, 3).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_member_without_points_is_never_a_replica() {
        let ring = Ring::new(&members(&[1000, 1]), RingKind::Libketama).unwrap();
        assert_eq!(ring.points_of(1), 0);
        assert_eq!(ring.replicas(b"x", 2).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [RingKind::Libketama, RingKind::LibmemcachedKetama] {
            assert_eq!(RingKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(RingKind::from_name("ketama"), None);
        assert_eq!(RingKind::default(), RingKind::Libketama);
    }

    #[test]
    fn a_ring_over_live_members_moves_only_the_keys_of_the_missing() {
        let all = members(&[1, 1, 1, 1]);
        let full = Ring::new(&all, RingKind::Libketama).unwrap();
        let live = [true, false, true, true];
        let part = Ring::over_live(&all, RingKind::Libketama, &live).unwrap();
        // The same placement as a client given only the live servers.
        let kept: Vec<Member> = [0, 2, 3].iter().map(|&i| all[i].clone()).collect();
        let client = Ring::new(&kept, RingKind::Libketama).unwrap();
        assert_eq!(part.len(), 4);
        assert_eq!(part.points_of(1), 0);
        for i in 0..5000 {
            let key = format!("key:{i}");
            let k = key.as_bytes();
            let owner = part.node_of(k);
            assert_ne!(owner, 1, "{key}");
            assert_eq!(owner, [0, 2, 3][client.node_of(k)], "{key}");
            if full.node_of(k) != 1 {
                assert_eq!(owner, full.node_of(k), "{key} moved");
            }
            let reps: Vec<usize> = part.replicas(k, 4).collect();
            assert_eq!(reps.len(), 3);
            assert!(!reps.contains(&1));
        }
        let one = Ring::over_live(&all, RingKind::Libketama, &[false, false, true, false]).unwrap();
        assert!((0..100).all(|i| one.node_of(format!("k{i}").as_bytes()) == 2));
        assert!(matches!(
            Ring::over_live(&all, RingKind::Libketama, &[false; 4]),
            Err(RingError::Empty)
        ));
    }
}
