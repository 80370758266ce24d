//! Membership by gossip: SWIM (the `foca` crate, sans-IO) over UDP on the
//! cluster port, on one small side thread per node.
//!
//! ```text
//!   UDP socket (cluster port) ──datagram──► foca.handle_data ─┐
//!   timers foca asked for (due) ─────────► foca.handle_timer ─┤─► sends (UDP), timers,
//!   every second: announce to members not known live ─────────┘   member up / down
//!                                                                      │
//!   member states by ring index ─► View::next ─► Published::publish ◄──┘ (new epoch when
//!                                                                         the live set changed)
//! ```
//!
//! Why a thread and not a shard's loop: membership is a few datagrams per
//! probe period and a handful of timers, nothing the request path should
//! wait behind or share a loop turn with, and a blocking socket with a read
//! timeout is all it needs. The shards only read the view it publishes (one
//! atomic load per turn, see `view.rs`).
//!
//! Identities are (ring index, gossip address, generation, list entry): the
//! generation is the start time in microseconds, so a node that restarts is
//! a new identity that wins its address over the old, down one, and rejoins
//! at once. Members that were never heard from are presumed live for a
//! start-up grace (two probe periods plus the suspicion time), then down
//! until they announce.
//!
//! The list entry (name, host, port, weight) is how a member that joined
//! after the others started reaches their lists: an identity claiming an
//! index past a node's list is added to it (`claims.rs`), and the list
//! travels to the shards inside the published view (`view::Roster`).

pub mod claims;
pub mod join;
pub mod view;

use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster::Member;
use foca::{AccumulatingRuntime, Foca, OwnedNotification, PostcardCodec, Timer};
use serde::{Deserialize, Serialize};

use crate::config::{ClusterPlan, ConfigError, GossipPlan};
use crate::shared::Shared;
use view::{MemberView, Roster, State, View};

/// A member's identity on the gossip wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeId {
    /// Its index in the member list (every node has the same list).
    pub index: u16,
    /// Its gossip address.
    pub addr: SocketAddr,
    /// Start time in microseconds, +1 per rejoin: the newer identity wins.
    pub generation: u64,
    /// Its entry in the member list, for the members whose list lacks it.
    pub entry: Entry,
}

/// A `--cluster-peers` entry, `NAME=HOST:PORT:WEIGHT`, on the gossip wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub weight: u32,
}

impl Entry {
    fn of(m: &Member) -> Entry {
        Entry {
            name: m.name.clone(),
            host: m.host.clone(),
            port: m.port,
            weight: m.weight,
        }
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeId {
            generation: self.generation + 1,
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// How often members not known live are announced to (seeding, rejoin after
/// a partition heals).
const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// The longest the thread blocks, so that it sees a stop in time.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// Binds this node's gossip socket (at start-up, so a port in use stops the
/// start with the usual wording).
pub fn bind(plan: &ClusterPlan, gossip_addrs: &[SocketAddr]) -> Result<UdpSocket, ConfigError> {
    let addr = gossip_addrs[plan.peers.this_node];
    UdpSocket::bind(addr).map_err(|e| {
        ConfigError(format!(
            "cannot bind the cluster gossip port udp {addr}: {e} (choose --cluster-port)"
        ))
    })
}

/// The foca settings from ours.
fn foca_config(g: &GossipPlan, members: usize) -> foca::Config {
    let mut c = foca::Config::new_lan(NonZeroU32::new(members.max(1) as u32).unwrap());
    c.probe_period = g.probe_period;
    c.probe_rtt = g.probe_rtt;
    c.suspect_to_down_after = g.suspect_to_down;
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: g.probe_period,
        num_members: std::num::NonZeroUsize::new(3).unwrap(),
    });
    c
}

/// Starts the gossip thread; it stops (announcing the leave) when the
/// server stops.
pub fn spawn(
    shared: Arc<Shared>,
    socket: UdpSocket,
    gossip_addrs: Vec<SocketAddr>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("gossip".into())
        .spawn(move || Gossip::new(shared, socket, gossip_addrs).run())
}

struct Gossip {
    shared: Arc<Shared>,
    socket: UdpSocket,
    /// Every member's gossip address, by ring index (grows with `roster`).
    addrs: Vec<SocketAddr>,
    /// The member list as this node knows it (the published view's).
    roster: Arc<Roster>,
    /// Claims already refused and logged: (index, generation).
    refused: Vec<(u16, u64)>,
    foca: Foca<NodeId, PostcardCodec, rand::rngs::StdRng, foca::NoCustomBroadcast>,
    runtime: AccumulatingRuntime<NodeId>,
    timers: Vec<(Instant, Timer<NodeId>)>,
    /// Until then, members never heard from are presumed live.
    grace_until: Instant,
    heard: Vec<bool>,
    next_announce: Instant,
}

impl Gossip {
    fn new(shared: Arc<Shared>, socket: UdpSocket, addrs: Vec<SocketAddr>) -> Gossip {
        let plan = shared.cluster.as_ref().expect("gossip runs in a cluster");
        let g = plan.gossip.as_ref().expect("gossip membership");
        let this = plan.peers.this_node;
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let id = NodeId {
            index: this as u16,
            addr: addrs[this],
            generation,
            entry: Entry::of(plan.peers.this()),
        };
        let roster = shared
            .membership
            .as_ref()
            .expect("a cluster has a view")
            .load()
            .roster
            .clone();
        let config = foca_config(g, addrs.len());
        let now = Instant::now();
        let grace_until = now + 2 * g.probe_period + g.suspect_to_down;
        let n = addrs.len();
        Gossip {
            foca: Foca::new(id, config, rand::make_rng(), PostcardCodec),
            shared,
            socket,
            addrs,
            roster,
            refused: Vec::new(),
            runtime: AccumulatingRuntime::new(),
            timers: Vec::new(),
            grace_until,
            heard: vec![false; n],
            next_announce: now,
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let now = Instant::now();
            if self.shared.stopping.load(Ordering::Acquire) {
                // Graceful leave: the others mark us down at once instead of
                // after the suspicion time.
                let _ = self.foca.leave_cluster(&mut self.runtime);
                self.flush();
                return;
            }
            let mut i = 0;
            while i < self.timers.len() {
                if self.timers[i].0 <= now {
                    let (_, timer) = self.timers.swap_remove(i);
                    if let Err(e) = self.foca.handle_timer(timer, &mut self.runtime) {
                        tracing::debug!("gossip timer: {e}");
                    }
                } else {
                    i += 1;
                }
            }
            if now >= self.next_announce {
                self.announce();
                self.next_announce = now + ANNOUNCE_EVERY;
            }
            self.flush();
            self.publish(now);
            let wake = self
                .timers
                .iter()
                .map(|t| t.0)
                .chain([self.next_announce, now + MAX_WAIT])
                .min()
                .unwrap_or(now + MAX_WAIT);
            let wait = wake.saturating_duration_since(Instant::now());
            let _ = self
                .socket
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            match self.socket.recv_from(&mut buf) {
                Ok((len, _from)) => {
                    if let Err(e) = self.foca.handle_data(&buf[..len], &mut self.runtime) {
                        tracing::debug!("gossip datagram: {e}");
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => tracing::debug!("gossip recv: {e}"),
            }
        }
    }

    /// Announces this node to every other member not known live (their
    /// identity is not known before they answer: foca accepts an announce
    /// addressed to any identity at its address).
    fn announce(&mut self) {
        let active: Vec<usize> = self
            .foca
            .iter_members()
            .map(|m| m.id().index as usize)
            .collect();
        let this = self.foca.identity().index as usize;
        for (i, &addr) in self.addrs.iter().enumerate() {
            if i == this || active.contains(&i) {
                continue;
            }
            let dst = NodeId {
                index: i as u16,
                addr,
                generation: 0,
                entry: Entry::of(&self.roster.members[i]),
            };
            if let Err(e) = self.foca.announce(dst, &mut self.runtime) {
                tracing::debug!("gossip announce: {e}");
            }
        }
    }

    /// Sends what foca asked to send and keeps the timers it asked for.
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some((to, data)) = self.runtime.to_send() {
            let _ = self.socket.send_to(&data, to.addr);
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timers.push((now + after, timer));
        }
        while let Some(n) = self.runtime.to_notify() {
            match n {
                OwnedNotification::MemberUp(id) => {
                    tracing::info!(member = id.index, addr = %id.addr, "cluster member up")
                }
                OwnedNotification::MemberDown(id) => {
                    tracing::info!(member = id.index, addr = %id.addr, "cluster member down")
                }
                OwnedNotification::Rejoin(id) => {
                    tracing::info!(generation = id.generation, "rejoined the cluster")
                }
                _ => {}
            }
        }
    }

    /// Members that joined after this node started: the claims of indices
    /// past its list, added to it (or, for a node that added itself and lost
    /// its index to an older claim, the stop).
    fn learn_members(&mut self) {
        let this = self.foca.identity().clone();
        let claims: Vec<&NodeId> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() != foca::State::Down)
            .map(|m| m.id())
            .collect();
        if usize::from(this.index) >= self.roster.listed
            && let Some(winner) = claims::lost_to(&this, &claims)
        {
            tracing::error!(
                index = this.index,
                winner = %winner.entry.name,
                winner_addr = %winner.addr,
                "this node's index in the member list was claimed by an older joiner at the same time: this node stops; start it again to take the next free index"
            );
            let _ = self.foca.leave_cluster(&mut self.runtime);
            self.flush();
            std::process::exit(2);
        }
        // A refused claim stays refused (its name or address is taken, its
        // host did not resolve): not looked at, nor resolved, every turn.
        let others: Vec<&NodeId> = claims
            .into_iter()
            .filter(|id| id.index != this.index)
            .filter(|id| !self.refused.contains(&(id.index, id.generation)))
            .collect();
        let resolve = |m: &Member| {
            use std::net::ToSocketAddrs;
            (m.host.as_str(), m.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
        };
        let (next, refused) = claims::resolve(&self.roster, &others, &resolve);
        for (id, why) in refused {
            tracing::warn!(member = %id.entry.name, index = id.index, addr = %id.addr, "a joining member is not added: {why}");
            self.refused.push((id.index, id.generation));
        }
        let Some(next) = next else {
            return;
        };
        for (i, m) in next.members.iter().enumerate() {
            let Some(id) = others
                .iter()
                .find(|id| usize::from(id.index) == i && claims::member_of(id) == *m)
            else {
                continue;
            };
            if i >= self.addrs.len() {
                self.addrs.push(id.addr);
                self.heard.push(false);
            } else if self.roster.members.get(i) != Some(m) {
                self.addrs[i] = id.addr;
                self.heard[i] = false;
            } else {
                continue;
            }
            tracing::info!(member = %m.name, index = i, address = %next.addrs[i], "cluster member added to the list");
        }
        self.roster = Arc::new(next);
    }

    /// The member states by ring index, published when they changed.
    fn publish(&mut self, now: Instant) {
        if self.shared.membership.is_none() {
            return;
        }
        self.learn_members();
        let shared = self.shared.clone();
        let published = shared.membership.as_ref().expect("checked");
        let plan = self.shared.cluster.as_ref().expect("cluster");
        let this = plan.peers.this_node;
        let mut states: Vec<Option<MemberView>> = vec![None; self.addrs.len()];
        for m in self.foca.iter_membership_state() {
            let id = m.id();
            let i = id.index as usize;
            // A member of another cluster, or one whose list differs; an
            // added member only under the entry this node took for it.
            if i == this
                || self.addrs.get(i) != Some(&id.addr)
                || (i >= self.roster.listed && self.roster.members[i] != claims::member_of(id))
            {
                continue;
            }
            if states[i].is_some_and(|s| s.generation > id.generation) {
                continue;
            }
            let state = match m.state() {
                foca::State::Alive => State::Alive,
                foca::State::Suspect => State::Suspect,
                foca::State::Down => State::Down,
            };
            self.heard[i] = true;
            states[i] = Some(MemberView {
                state,
                incarnation: m.incarnation(),
                generation: id.generation,
                live: state != State::Down,
            });
        }
        let presumed = now < self.grace_until;
        let states: Vec<MemberView> = states
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                if i == this {
                    MemberView {
                        state: State::This,
                        incarnation: 0,
                        generation: self.foca.identity().generation,
                        live: true,
                    }
                } else {
                    s.unwrap_or(MemberView {
                        state: if self.heard[i] {
                            State::Down
                        } else {
                            State::Unknown
                        },
                        incarnation: 0,
                        generation: 0,
                        live: presumed && !self.heard[i],
                    })
                }
            })
            .collect();
        let current = published.load();
        if let Some(next) = current.next(&self.roster, states) {
            if next.epoch != current.epoch {
                let live: Vec<&str> = next
                    .roster
                    .members
                    .iter()
                    .zip(&next.members)
                    .filter(|(_, v)| v.live)
                    .map(|(m, _)| m.name.as_str())
                    .collect();
                tracing::info!(epoch = next.epoch, live = %live.join(","), "cluster ring epoch");
            }
            published.publish(next);
        }
    }
}

/// The view a node starts with, and the published cell for it; `addrs` are
/// the members' memcached addresses ([`ClusterPlan::resolve`]).
pub fn initial(plan: &ClusterPlan, addrs: &[SocketAddr]) -> Result<view::Published, ConfigError> {
    let mut roster = Roster::new(plan.peers.members.clone(), addrs.to_vec());
    if plan.added {
        // This node's own entry (the last) was added to the list it fetched:
        // it is a claim like any added member's (`claims.rs`).
        roster.listed -= 1;
    }
    View::initial(Arc::new(roster), plan.ring.kind(), plan.peers.this_node)
        .map(view::Published::new)
        .map_err(|e| ConfigError(format!("invalid setting cluster.peers: {e}")))
}
