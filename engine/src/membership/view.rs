//! The membership view the shards route with: which members are live, the
//! ring over them and its epoch, published by the gossip thread and read by
//! every shard once per loop turn.
//!
//! ```text
//!   gossip thread ── publish(View) ──► Published { version: AtomicU64, view: Mutex<Arc<View>> }
//!                                            │ shard, once per turn: version changed?
//!                                            └──► yes: lock, clone the Arc (rare) ─► Core.view
//! ```
//!
//! The request path reads its own `Arc<View>` and never the lock: a shard
//! only takes the mutex in the turn after a change.
//!
//! The member list travels in the view ([`Roster`]): it is the list the node
//! started with plus any member that joined since (learnt by gossip), and it
//! only grows, so a shard that sees a longer one adds a link (and the other
//! per-member state) for each new index in that same turn.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cluster::{Member, Ring, RingError, RingKind};

/// What this node knows of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// This node.
    This,
    /// Answering probes.
    Alive,
    /// A probe went unanswered; it has `suspect_to_down_ms` to refute.
    Suspect,
    /// Declared down (or left); its keys belong to the next live members.
    Down,
    /// Not heard from yet: presumed live during the start-up grace, then down.
    Unknown,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::This => "this",
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Down => "down",
            State::Unknown => "unknown",
        }
    }
}

/// One member as the view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub state: State,
    /// SWIM incarnation of its current identity (0 until heard).
    pub incarnation: u16,
    /// Its identity's generation (its start time, bumped on a rejoin).
    pub generation: u64,
    /// In the ring of this epoch.
    pub live: bool,
}

/// The member list by ring index: the start-up list (`--cluster-peers`, or
/// the one `--cluster-join` fetched), then the members added since, each at
/// the index it claimed. Entries are never removed nor reordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    pub members: Vec<Member>,
    /// Each member's memcached address, resolved.
    pub addrs: Vec<SocketAddr>,
    /// How many of `members` came from the start-up list; the rest were
    /// added by gossip.
    pub listed: usize,
}

impl Roster {
    pub fn new(members: Vec<Member>, addrs: Vec<SocketAddr>) -> Roster {
        debug_assert_eq!(members.len(), addrs.len());
        Roster {
            listed: members.len(),
            members,
            addrs,
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The list as `--cluster-peers` takes it (`stats cluster`'s
    /// `cluster_peers`, which `--cluster-join` reads).
    pub fn list(&self) -> String {
        cluster::list_of(&self.members)
    }
}

/// One epoch of the cluster as this node sees it.
#[derive(Clone, Debug)]
pub struct View {
    /// Grows by one whenever the set of live members changes (a member
    /// added to the list is such a change).
    pub epoch: u64,
    /// The ketama ring over the live members (indices into the member list).
    pub ring: Ring,
    pub members: Vec<MemberView>,
    /// The member list this view's indices refer to.
    pub roster: Arc<Roster>,
}

impl View {
    /// The view before anything was heard: every member presumed live.
    pub fn initial(roster: Arc<Roster>, kind: RingKind, this: usize) -> Result<View, RingError> {
        let members = &roster.members;
        let members_view = (0..members.len())
            .map(|i| MemberView {
                state: if i == this {
                    State::This
                } else {
                    State::Unknown
                },
                incarnation: 0,
                generation: 0,
                live: true,
            })
            .collect();
        Ok(View {
            epoch: 1,
            ring: Ring::new(members, kind)?,
            members: members_view,
            roster,
        })
    }

    pub fn is_live(&self, node: usize) -> bool {
        self.members.get(node).is_some_and(|m| m.live)
    }

    /// The next view with this member list and these member states (one
    /// per member of `roster`): a new epoch and ring when the live set or the
    /// list changed, `None` when nothing did.
    pub fn next(&self, roster: &Arc<Roster>, states: Vec<MemberView>) -> Option<View> {
        let same_list = Arc::ptr_eq(roster, &self.roster) || **roster == *self.roster;
        if states == self.members && same_list {
            return None;
        }
        let live: Vec<bool> = states.iter().map(|m| m.live).collect();
        let was: Vec<bool> = self.members.iter().map(|m| m.live).collect();
        if live == was && same_list {
            return Some(View {
                epoch: self.epoch,
                ring: self.ring.clone(),
                members: states,
                roster: self.roster.clone(),
            });
        }
        let ring = Ring::over_live(&roster.members, self.ring.kind(), &live).ok()?;
        Some(View {
            epoch: self.epoch + 1,
            ring,
            members: states,
            roster: roster.clone(),
        })
    }
}

/// The current view, swapped by the gossip thread and read by the shards.
pub struct Published {
    /// Bumped after every swap (a new epoch or only new member states).
    version: AtomicU64,
    view: Mutex<Arc<View>>,
}

impl Published {
    pub fn new(view: View) -> Published {
        Published {
            version: AtomicU64::new(1),
            view: Mutex::new(Arc::new(view)),
        }
    }

    /// Cheap: one atomic load, for the shards' once-per-turn check.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn load(&self) -> Arc<View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn publish(&self, view: View) {
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: usize) -> Member {
        Member {
            name: format!("n{i}"),
            host: "127.0.0.1".into(),
            port: 7000 + i as u16,
            weight: 1,
        }
    }

    fn roster(n: usize) -> Arc<Roster> {
        let members: Vec<Member> = (0..n).map(member).collect();
        let addrs = members
            .iter()
            .map(|m| SocketAddr::from(([127, 0, 0, 1], m.port)))
            .collect();
        Arc::new(Roster::new(members, addrs))
    }

    #[test]
    fn a_change_of_the_live_set_is_a_new_epoch_and_only_that() {
        let m = roster(3);
        let v1 = View::initial(m.clone(), RingKind::Libketama, 0).unwrap();
        assert_eq!(v1.epoch, 1);
        assert!(v1.next(&m, v1.members.clone()).is_none());
        let mut states = v1.members.clone();
        states[1].state = State::Alive;
        states[1].incarnation = 2;
        let v = v1.next(&m, states.clone()).unwrap();
        assert_eq!(v.epoch, 1, "same live set, same epoch");
        states[2].state = State::Down;
        states[2].live = false;
        let v2 = v.next(&m, states).unwrap();
        assert_eq!(v2.epoch, 2);
        assert!(!v2.is_live(2) && v2.is_live(1));
        assert!((0..500).all(|i| v2.ring.node_of(format!("k{i}").as_bytes()) != 2));
    }

    #[test]
    fn a_member_added_to_the_list_is_a_new_epoch_with_the_ring_of_the_longer_list() {
        let three = roster(3);
        let v1 = View::initial(three.clone(), RingKind::Libketama, 0).unwrap();
        let mut four = (*three).clone();
        four.members.push(member(3));
        four.addrs.push(SocketAddr::from(([127, 0, 0, 1], 7003)));
        let four = Arc::new(four);
        let mut states = v1.members.clone();
        states.push(MemberView {
            state: State::Alive,
            incarnation: 0,
            generation: 5,
            live: true,
        });
        let v2 = v1.next(&four, states.clone()).unwrap();
        assert_eq!(v2.epoch, 2);
        assert_eq!(v2.roster.len(), 4);
        assert_eq!(v2.roster.listed, 3, "the start-up list is still three long");
        // The placement a client given the four servers computes.
        let want = Ring::new(&four.members, RingKind::Libketama).unwrap();
        assert!((0..500).all(|i| {
            let k = format!("k{i}");
            v2.ring.node_of(k.as_bytes()) == want.node_of(k.as_bytes())
        }));
        assert!(v2.next(&four, states).is_none(), "nothing changed again");
        assert_eq!(
            four.list(),
            "n0=127.0.0.1:7000:1,n1=127.0.0.1:7001:1,n2=127.0.0.1:7002:1,n3=127.0.0.1:7003:1"
        );
    }

    #[test]
    fn published_views_are_seen_by_their_version() {
        let p = Published::new(View::initial(roster(2), RingKind::Libketama, 0).unwrap());
        let before = p.version();
        let mut v = (*p.load()).clone();
        v.epoch = 9;
        p.publish(v);
        assert_ne!(p.version(), before);
        assert_eq!(p.load().epoch, 9);
    }
}
