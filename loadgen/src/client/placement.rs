//! Client-side placement (`run --cluster ketama` with several `--target`s): which
//! connection a request goes out on. A thread's connection `i` is to target
//! `i % targets`; a request goes to a connection to the node the ketama ring
//! places its key on, as a ketama client (libmemcached, twemproxy) would send it.
//! The ring is the engine's own (`cluster::Ring`), over the targets in the order
//! given, weight 1 each, each labelled `IP:PORT` (the port left out for 11211).

use cluster::Ring;

use crate::workload::write_key;

pub struct Placement {
    /// None: one target, every connection alike.
    ring: Option<Ring>,
    /// The connections to each target, by target index.
    by_node: Vec<Vec<usize>>,
    /// Per target, where the round robin over its connections resumes.
    next: Vec<usize>,
    key: Vec<u8>,
    key_size: usize,
}

/// The target connection `conn` of a thread is opened to.
pub fn target_of(conn: usize, targets: usize) -> usize {
    conn % targets
}

impl Placement {
    pub fn new(ring: Option<Ring>, targets: usize, conns: usize, key_size: usize) -> Placement {
        let mut by_node = vec![Vec::new(); targets];
        for i in 0..conns {
            by_node[target_of(i, targets)].push(i);
        }
        Placement {
            ring,
            by_node,
            next: vec![0; targets],
            key: Vec::with_capacity(key_size),
            key_size,
        }
    }

    pub fn is_active(&self) -> bool {
        self.ring.is_some()
    }

    /// The target that owns key `index` (0 without a ring).
    #[inline]
    pub fn owner(&mut self, index: u64) -> usize {
        match &self.ring {
            None => 0,
            Some(ring) => {
                self.key.clear();
                write_key(&mut self.key, index, self.key_size);
                ring.node_of(&self.key)
            }
        }
    }

    /// A connection to `node` for which `has_room` holds, round robin over them;
    /// None when every one is full (or failed).
    #[inline]
    pub fn pick(&mut self, node: usize, has_room: impl Fn(usize) -> bool) -> Option<usize> {
        let conns = &self.by_node[node];
        let n = conns.len();
        for k in 0..n {
            let at = (self.next[node] + k) % n;
            if has_room(conns[at]) {
                self.next[node] = (at + 1) % n;
                return Some(conns[at]);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::{Member, RingKind};

    fn ring() -> Ring {
        let members: Vec<Member> = (1..=3)
            .map(|p| Member {
                name: format!("n{p}"),
                host: "127.0.0.1".into(),
                port: 20000 + p,
                weight: 1,
            })
            .collect();
        Ring::new(&members, RingKind::Libketama).unwrap()
    }

    #[test]
    fn connections_spread_over_the_targets_and_keys_go_to_their_owner() {
        let mut p = Placement::new(Some(ring()), 3, 7, 8);
        assert_eq!(p.by_node, vec![vec![0, 3, 6], vec![1, 4], vec![2, 5]]);
        let r = ring();
        let mut seen = [0; 3];
        for i in 0..3000 {
            let mut k = Vec::new();
            write_key(&mut k, i, 8);
            let owner = p.owner(i);
            assert_eq!(owner, r.node_of(&k), "key {i}");
            seen[owner] += 1;
            let conn = p.pick(owner, |_| true).unwrap();
            assert_eq!(target_of(conn, 3), owner);
        }
        assert!(seen.iter().all(|&n| n > 600), "{seen:?}");
    }

    #[test]
    fn pick_round_robins_skips_full_connections_and_says_when_all_are() {
        let mut p = Placement::new(Some(ring()), 2, 6, 8);
        // Target 0 holds connections 0, 2 and 4.
        let picks: Vec<_> = (0..4).map(|_| p.pick(0, |_| true).unwrap()).collect();
        assert_eq!(picks, vec![0, 2, 4, 0]);
        assert_eq!(p.pick(0, |i| i != 2 && i != 4), Some(0));
        assert_eq!(p.pick(0, |i| i == 4), Some(4));
        assert_eq!(p.pick(0, |_| false), None);
        assert_eq!(p.pick(1, |i| i == 3), Some(3));
    }

    #[test]
    fn without_a_ring_every_key_is_the_one_targets() {
        let mut p = Placement::new(None, 1, 4, 8);
        assert!(!p.is_active());
        assert_eq!(p.owner(12345), 0);
        assert_eq!(p.pick(0, |i| i == 3), Some(3));
    }
}
