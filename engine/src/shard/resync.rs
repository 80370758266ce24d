//! Re-sync of a node that comes back (issue 12 "warm-up", issue 15 "a node
//! that returns warm"): when membership says a member is live again, every
//! shard of every other node ships it, as replica records (`Y`: apply only if
//! newer), first the deletes of its keys made while it was away (the delete
//! log, deletes.rs), then each live item whose replica set in the new ring
//! includes it, from a walk of the store.
//!
//! ```text
//!   check_membership: node n live ─► down   down_since[n] = now
//!   replicated key deleted here ─► DeleteLog::push(now, key, cas)   (gossip, replicas > 1)
//!   check_membership: node n down ─► live   (replicas > 1)
//!        └─► resync[n] = deletes from down_since[n] - margin, cursor at the store's first page
//!   every loop turn, at most 32 records, and only while the link to n has fewer than 128 in flight
//!   and the shard's pace (cluster.resync_rate / shards records/s, all walks together) has tokens:
//!        deletes of keys whose replicas ∋ n   ─► md <key> b E<cas> Y q
//!        then Store::walk(cursor, 512 chunks) ─► items whose replicas ∋ n
//!                                             ─► ms <key> .. E<cas> Y q
//!        each ─► effect_on_node(n, record)    (not waited for)
//! ```
//!
//! So a node that was down or cut off gets the writes it missed (the acting
//! owner's, and a replica's), loses what was deleted meanwhile, and one that
//! came back empty is filled again; the `Y` rule keeps whichever copy has the
//! greater CAS, so a record older than what the returning node holds changes
//! nothing (a delete removes only an item not newer than the deleted one),
//! and records meeting live writes order by CAS as replica records always
//! do. The walk visits each item present throughout once; one stored
//! meanwhile is shipped by the write itself. Only with replicas (R > 1):
//! their CAS clocks start at the wall clock's microseconds, so CAS order
//! across nodes is time order. A record the link cannot take (it failed) is
//! lost, counted in `replica_dropped`; the walk goes on. The deletes are
//! kept from `margin` (the detection time) before the member was declared
//! down, since it may have stopped hearing writes that long before; a log
//! that overflowed since then is a gap (`replica_resync_gaps`, logged).
//!
//! The pace bounds what a re-sync costs the traffic the node serves
//! meanwhile (docs/benchmarks.md, "re-sync"): a token bucket per shard,
//! refilled from the time the loop read at the start of its turn. A shard
//! whose walk waits for tokens sleeps until its bucket is full again
//! (`Core::resync_wait`), so an otherwise idle shard neither spins nor
//! leaves the walk waiting for an unrelated wake-up.

use std::time::Duration;

use store::{RelTime, WalkCursor};

use super::Core;
use super::deletes::DeleteLog;
use super::replicate::{delete_record, set_record};

/// Chunks one turn examines per returning node.
const WALK_BUDGET: usize = 512;
/// Records one turn ships per returning node, at most.
const RECORDS_PER_TURN: usize = 32;
/// Requests in flight on the link to the returning node above which the
/// walk waits: the client requests and replica records that share the link
/// queue behind at most this many re-sync records (with the link's own bound,
/// `cluster.max_in_flight`, they queued behind thousands: p99 of a loaded
/// node rose from 0.8 to 95 ms while it re-synced a member; docs/benchmarks.md).
const MAX_IN_FLIGHT: usize = 128;

/// Seconds of a shard's rate its bucket holds (at most RECORDS_PER_TURN
/// records, at least one): a limited walk sleeps until its bucket is full,
/// so it wakes at most 10 times a second to ship this much.
const BURST_SECS: f64 = 0.1;
/// How long a shard whose walk has tokens waits for completions (the
/// walk's own sends, link replies) before its next turn.
const WALK_WAKE: Duration = Duration::from_millis(10);

/// Bytes of deleted keys each shard keeps for members that come back.
const DELETE_LOG_BYTES: usize = 4 << 20;

/// One returning node's walk.
struct Walk {
    node: usize,
    /// The next entry of the delete log to ship, and the end at the start.
    deletes: u64,
    deletes_end: u64,
    cursor: WalkCursor,
    shipped: u64,
}

/// A shard's re-syncs: the walks under way, the delete log, and when each
/// member was declared down.
pub(super) struct Resyncs {
    walks: Vec<Walk>,
    deletes: DeleteLog,
    /// By ring index: when (store time) membership declared it down.
    down_since: Vec<Option<RelTime>>,
    /// Seconds before a member was declared down from which deletes are
    /// shipped to it on its return (its detection time, and some).
    margin: u32,
    /// Whether deletes are logged at all (gossip membership, replicas > 1).
    logging: bool,
    /// The records of one turn, kept for the next.
    batch: Batch,
    pace: Pace,
}

/// A shard's re-sync budget: a token bucket of records refilled at `rate`
/// per second from the loop's clock (no clock read of its own), holding at
/// most `burst`.
#[derive(Clone, Debug)]
struct Pace {
    /// Records per second; 0 = unlimited.
    rate: f64,
    burst: f64,
    tokens: f64,
    /// The loop time of the last refill (since the server started).
    at: Duration,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        let burst = (rate * BURST_SECS).clamp(1.0, RECORDS_PER_TURN as f64);
        Pace {
            rate,
            burst,
            tokens: burst,
            at: Duration::ZERO,
        }
    }

    fn unlimited(&self) -> bool {
        self.rate == 0.0
    }

    /// Adds what `now` (the loop's time this turn) earned since the last
    /// refill; a clock that seems to go back earns nothing.
    fn refill(&mut self, now: Duration) {
        if self.unlimited() || now <= self.at {
            return;
        }
        let earned = (now - self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.at = now;
    }

    /// Records that may go now.
    fn available(&self) -> usize {
        if self.unlimited() {
            usize::MAX
        } else {
            self.tokens as usize
        }
    }

    /// `n` records went (at most `available`).
    fn spend(&mut self, n: usize) {
        if !self.unlimited() {
            self.tokens = (self.tokens - n as f64).max(0.0);
        }
    }

    /// With no token left: how long after the last refill the bucket is
    /// full again. `None` while a record may go (or without a limit).
    fn wait(&self) -> Option<Duration> {
        if self.unlimited() || self.tokens >= 1.0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            (self.burst - self.tokens) / self.rate,
        ))
    }
}

/// Records written one after another into one buffer.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn push(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter())
            .map(|(s, &e)| &self.bytes[s..e])
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

impl Resyncs {
    /// `shards` share the node's `cluster.resync_rate` equally (a shard's
    /// items are about the same share of each member's).
    pub fn new(plan: Option<&crate::config::ClusterPlan>, shards: usize) -> Resyncs {
        let gossip = plan.and_then(|p| p.gossip.as_ref().filter(|_| p.replicas > 1));
        let margin = gossip.map_or(0, |g| {
            let detect = g.probe_period * 3 + g.probe_rtt + g.suspect_to_down;
            detect.as_secs_f64().ceil() as u32 + 2
        });
        Resyncs {
            walks: Vec::new(),
            deletes: DeleteLog::new(if gossip.is_some() {
                DELETE_LOG_BYTES
            } else {
                0
            }),
            down_since: vec![None; plan.map_or(0, |p| p.peers.members.len())],
            margin,
            logging: gossip.is_some(),
            batch: Batch::default(),
            pace: Pace::new(plan.map_or(0.0, |p| p.resync_rate as f64 / shards.max(1) as f64)),
        }
    }

    /// The oldest time a delete may still have to be shipped from.
    fn keep_from(&self, now: RelTime) -> RelTime {
        self.down_since
            .iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(now)
            .saturating_sub(self.margin)
    }

    /// The member list grew to `members`.
    pub fn grow(&mut self, members: usize) {
        if self.down_since.len() < members {
            self.down_since.resize(members, None);
        }
    }

    /// Membership declared `node` down at `now`.
    pub fn member_down(&mut self, node: usize, now: RelTime) {
        if let Some(d) = self.down_since.get_mut(node) {
            d.get_or_insert(now);
        }
    }
}

impl Core {
    /// Membership says `node` is live again: walk the store for it (from the
    /// start, if a walk for it was under way).
    pub(super) fn start_resync(&mut self, node: usize) {
        let Some(plan) = self.shared.cluster.as_ref() else {
            return;
        };
        let r = &mut self.resync;
        let down_since = r.down_since.get_mut(node).and_then(Option::take);
        if plan.replicas < 2 || node == plan.peers.this_node {
            return;
        }
        r.walks.retain(|w| w.node != node);
        // A member never seen live (down since the start-up grace) is
        // shipped every delete still kept.
        let since = down_since.map_or(0, |t| t.saturating_sub(r.margin));
        let gap = r.logging && !r.deletes.covers(since);
        r.walks.push(Walk {
            node,
            deletes: r.deletes.first_since(since),
            deletes_end: r.deletes.end(),
            cursor: WalkCursor::default(),
            shipped: 0,
        });
        let name = self.member_name(node);
        if gap {
            self.stats.replica_resync_gaps += 1;
            tracing::warn!(shard = self.id, node = %name, "the delete log overflowed while the member was away: deletes made meanwhile may not reach it");
        }
        tracing::info!(shard = self.id, node = %name, "re-sync of a returning member started");
    }

    /// A replicated key was deleted here (its item had `cas`): kept for
    /// members that are away or may be about to be declared so.
    pub(super) fn log_delete(&mut self, key: &[u8], cas: u64) {
        let r = &mut self.resync;
        if r.logging {
            let now = self.store.now();
            let keep_from = r.keep_from(now);
            r.deletes.push(now, key, cas, keep_from);
        }
    }

    fn member_name(&self, node: usize) -> String {
        self.view
            .as_ref()
            .and_then(|v| v.roster.members.get(node))
            .map_or_else(|| node.to_string(), |m| m.name.clone())
    }

    /// While a walk is under way, how long the loop may wait for
    /// completions before the walk's next turn: until the pace has tokens
    /// again when it has none, otherwise a short wait (the walk's sends
    /// complete and wake the loop sooner).
    pub(super) fn resync_wait(&self) -> Option<Duration> {
        if self.resync.walks.is_empty() {
            return None;
        }
        Some(self.resync.pace.wait().unwrap_or(WALK_WAKE))
    }

    /// One turn of every walk under way.
    pub(super) fn resync_step(&mut self) {
        if self.resync.walks.is_empty() {
            return;
        }
        let (Some(replicas), Some(view)) = (
            self.shared.cluster.as_ref().map(|p| p.replicas),
            self.view.clone(),
        ) else {
            self.resync.walks.clear();
            return;
        };
        self.resync.pace.refill(self.life.elapsed);
        let mut i = 0;
        while i < self.resync.walks.len() {
            let node = self.resync.walks[i].node;
            if !view.is_live(node) {
                // Down again: its next return starts a new walk.
                self.resync.walks.swap_remove(i);
                continue;
            }
            let room = self
                .links
                .room(node)
                .min(RECORDS_PER_TURN)
                .min(MAX_IN_FLIGHT.saturating_sub(self.links.in_flight(node)))
                .min(self.resync.pace.available());
            if room == 0 {
                i += 1;
                continue;
            }
            let mine = |key: &[u8]| view.ring.replicas(key, replicas).any(|n| n == node);
            let mut records = std::mem::take(&mut self.resync.batch);
            let Resyncs { walks, deletes, .. } = &mut self.resync;
            let w = &mut walks[i];
            while records.len() < room && w.deletes < w.deletes_end {
                let Some((d, next)) = deletes.get(w.deletes) else {
                    w.deletes = w.deletes_end;
                    break;
                };
                w.deletes = next;
                if mine(d.key) {
                    records.push(|out| delete_record(d.key, d.cas, out));
                }
            }
            // The items once every delete is out.
            let next = if w.deletes < w.deletes_end {
                Some(w.cursor)
            } else {
                self.store.walk(w.cursor, WALK_BUDGET, |it| {
                    if !mine(it.key) {
                        return true;
                    }
                    if records.len() == room {
                        return false;
                    }
                    records.push(|out| set_record(&it, out));
                    true
                })
            };
            for record in records.iter() {
                if self.effect_on_node(node, record, None) {
                    self.stats.replica_resynced += 1;
                } else {
                    self.stats.replica_dropped += 1;
                }
            }
            let shipped = records.len() as u64;
            self.resync.pace.spend(records.len());
            records.clear();
            self.resync.batch = records;
            let w = &mut self.resync.walks[i];
            w.shipped += shipped;
            match next {
                Some(cursor) => {
                    w.cursor = cursor;
                    i += 1;
                }
                None => {
                    let shipped = w.shipped;
                    self.resync.walks.swap_remove(i);
                    let name = self.member_name(node);
                    tracing::info!(shard = self.id, node = %name, records = shipped, "re-sync of a returning member done");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Batch, Pace, RECORDS_PER_TURN};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Within a microsecond (the float arithmetic of the bucket).
    fn about(got: Option<Duration>, want: Duration) -> bool {
        got.is_some_and(|g| g.abs_diff(want) < Duration::from_micros(1))
    }

    #[test]
    fn the_pace_lets_its_rate_through_and_says_when_it_has_tokens_again() {
        // 200 records/s: a bucket of 20 (0.1 s), full at the start.
        let mut p = Pace::new(200.0);
        p.refill(ms(1_000));
        assert_eq!(p.available(), 20);
        assert_eq!(p.wait(), None, "it has tokens");
        p.spend(20);
        assert_eq!(p.available(), 0);
        assert!(about(p.wait(), ms(100)), "full again in 20 / 200 s");
        // 6 ms earn one record (and a fifth); 1 ms more, none.
        p.refill(ms(1_006));
        assert_eq!(p.available(), 1);
        p.spend(1);
        p.refill(ms(1_007));
        assert_eq!(p.available(), 0);
        assert!(p.wait().unwrap() < ms(100));
        // An idle second earns no more than the bucket holds.
        p.refill(ms(2_007));
        assert_eq!(p.available(), 20);
        // A clock that seems to go back earns nothing, and costs nothing.
        p.spend(20);
        p.refill(ms(1_500));
        assert_eq!(p.available(), 0);
        p.refill(ms(2_013));
        assert_eq!(p.available(), 1);

        // Over a simulated 10 s of 1 ms turns, each shipping all it may:
        // the rate, plus at most the first bucket.
        let mut p = Pace::new(200.0);
        let mut shipped = 0;
        for t in 0..=10_000 {
            p.refill(ms(t));
            let n = p.available().min(RECORDS_PER_TURN);
            p.spend(n);
            shipped += n;
        }
        assert!((2_000..=2_020).contains(&shipped), "{shipped}");
    }

    #[test]
    fn the_bucket_holds_one_turn_at_most_and_one_record_at_least() {
        let mut fast = Pace::new(1_000_000.0);
        fast.refill(ms(5));
        assert_eq!(fast.available(), RECORDS_PER_TURN);
        fast.spend(RECORDS_PER_TURN);
        assert!(about(fast.wait(), Duration::from_micros(32)));
        // Half a record a second: one at a time, two seconds apart.
        let mut slow = Pace::new(0.5);
        slow.refill(ms(5));
        assert_eq!(slow.available(), 1);
        slow.spend(1);
        assert!(about(slow.wait(), ms(2_000)));
        slow.refill(ms(1_005));
        assert_eq!(slow.available(), 0);
        slow.refill(ms(2_005));
        assert_eq!(slow.available(), 1);
    }

    #[test]
    fn no_rate_is_no_limit() {
        let mut p = Pace::new(0.0);
        p.refill(ms(0));
        assert_eq!(p.available(), usize::MAX);
        p.spend(1 << 20);
        assert_eq!(p.available(), usize::MAX);
        assert_eq!(p.wait(), None);
    }

    #[test]
    fn a_batch_gives_back_each_record_whole_and_is_reused() {
        let mut b = Batch::default();
        for r in [&b"ms a 1\r\n"[..], b"", b"md b\r\n"] {
            b.push(|out| out.extend_from_slice(r));
        }
        assert_eq!(b.len(), 3);
        let got: Vec<&[u8]> = b.iter().collect();
        assert_eq!(got, vec![&b"ms a 1\r\n"[..], b"", b"md b\r\n"]);
        b.clear();
        assert_eq!(b.iter().count(), 0);
        b.push(|out| out.extend_from_slice(b"x"));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![&b"x"[..]]);
    }
}
