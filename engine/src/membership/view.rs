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

/// One epoch of the cluster as this node sees it.
#[derive(Clone, Debug)]
pub struct View {
    /// Grows by one whenever the set of live members changes.
    pub epoch: u64,
    /// The ketama ring over the live members (indices into the member list).
    pub ring: Ring,
    pub members: Vec<MemberView>,
}

impl View {
    /// The view before anything was heard: every member presumed live.
    pub fn initial(members: &[Member], kind: RingKind, this: usize) -> Result<View, RingError> {
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
        })
    }

    pub fn is_live(&self, node: usize) -> bool {
        self.members.get(node).is_some_and(|m| m.live)
    }

    /// The next view with these member states: a new epoch and ring when the
    /// live set changed, `None` when nothing did.
    pub fn next(&self, members: &[Member], states: Vec<MemberView>) -> Option<View> {
        if states == self.members {
            return None;
        }
        let live: Vec<bool> = states.iter().map(|m| m.live).collect();
        let was: Vec<bool> = self.members.iter().map(|m| m.live).collect();
        if live == was {
            return Some(View {
                epoch: self.epoch,
                ring: self.ring.clone(),
                members: states,
            });
        }
        let ring = Ring::over_live(members, self.ring.kind(), &live).ok()?;
        Some(View {
            epoch: self.epoch + 1,
            ring,
            members: states,
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

    fn members(n: usize) -> Vec<Member> {
        (0..n)
            .map(|i| Member {
                name: format!("n{i}"),
                host: "127.0.0.1".into(),
                port: 7000 + i as u16,
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn a_change_of_the_live_set_is_a_new_epoch_and_only_that() {
        let m = members(3);
        let v1 = View::initial(&m, RingKind::Libketama, 0).unwrap();
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
    fn published_views_are_seen_by_their_version() {
        let m = members(2);
        let p = Published::new(View::initial(&m, RingKind::Libketama, 0).unwrap());
        let before = p.version();
        let mut v = (*p.load()).clone();
        v.epoch = 9;
        p.publish(v);
        assert_ne!(p.version(), before);
        assert_eq!(p.load().epoch, 9);
    }
}
