//! Re-sync of a node that comes back (issue 12 "warm-up", issue 15 "a node
//! that returns warm"): when membership says a member is live again, every
//! shard of every other node walks its store and ships, as replica records
//! (`ms ... Y`: apply only if newer), each live item whose replica set in the
//! new ring includes that member.
//!
//! ```text
//!   check_membership: node n down ─► live   (replicas > 1)
//!        └─► resync[n] = cursor at the store's first page
//!   every loop turn: Store::walk(cursor, 512 chunks) ─► items whose replicas ∋ n
//!        └─► at most 32 records, and no more than the link to n has room for
//!            ─► effect_on_node(n, ms <key> .. E<cas> Y q)      (not waited for)
//! ```
//!
//! So a node that was down or cut off gets the writes it missed (the acting
//! owner's, and a replica's) and one that came back empty is filled again;
//! the `Y` rule keeps whichever copy has the greater CAS, so a record older
//! than what the returning node holds changes nothing, and records meeting
//! live writes order by CAS as replica records always do. The walk visits
//! each item present throughout once; one stored meanwhile is shipped by the
//! write itself. Only with replicas (R > 1): their CAS clocks start at the
//! wall clock's microseconds, so CAS order across nodes is time order. A
//! record the link cannot take (it failed) is lost, counted in
//! `replica_dropped`; the walk goes on.

use store::WalkCursor;

use super::Core;
use super::replicate::set_record;

/// Chunks one turn examines per returning node.
const WALK_BUDGET: usize = 512;
/// Records one turn ships per returning node, at most.
const RECORDS_PER_TURN: usize = 32;

/// One returning node's walk.
pub(super) struct Resync {
    node: usize,
    cursor: WalkCursor,
    shipped: u64,
}

impl Core {
    /// Membership says `node` is live again: walk the store for it (from the
    /// start, if a walk for it was under way).
    pub(super) fn start_resync(&mut self, node: usize) {
        let Some(plan) = self.shared.cluster.as_ref() else {
            return;
        };
        if plan.replicas < 2 || node == plan.peers.this_node {
            return;
        }
        self.resync.retain(|r| r.node != node);
        self.resync.push(Resync {
            node,
            cursor: WalkCursor::default(),
            shipped: 0,
        });
        let name = self.member_name(node);
        tracing::info!(shard = self.id, node = %name, "re-sync of a returning member started");
    }

    fn member_name(&self, node: usize) -> String {
        self.shared
            .cluster
            .as_ref()
            .and_then(|p| p.peers.members.get(node))
            .map_or_else(|| node.to_string(), |m| m.name.clone())
    }

    /// Whether a walk is under way (the loop then does not sleep long).
    pub(super) fn resyncing(&self) -> bool {
        !self.resync.is_empty()
    }

    /// One turn of every walk under way.
    pub(super) fn resync_step(&mut self) {
        if self.resync.is_empty() {
            return;
        }
        let (Some(replicas), Some(view)) = (
            self.shared.cluster.as_ref().map(|p| p.replicas),
            self.view.clone(),
        ) else {
            self.resync.clear();
            return;
        };
        let mut i = 0;
        while i < self.resync.len() {
            let node = self.resync[i].node;
            if !view.is_live(node) {
                // Down again: its next return starts a new walk.
                self.resync.swap_remove(i);
                continue;
            }
            let room = self.links.room(node).min(RECORDS_PER_TURN);
            if room == 0 {
                i += 1;
                continue;
            }
            let mut records: Vec<Vec<u8>> = Vec::new();
            let next = self.store.walk(self.resync[i].cursor, WALK_BUDGET, |it| {
                if !view.ring.replicas(it.key, replicas).any(|n| n == node) {
                    return true;
                }
                if records.len() == room {
                    return false;
                }
                let mut record = Vec::with_capacity(it.key.len() * 2 + it.value.len() + 48);
                set_record(&it, &mut record);
                records.push(record);
                true
            });
            for record in &records {
                if self.effect_on_node(node, record, None) {
                    self.stats.replica_resynced += 1;
                } else {
                    self.stats.replica_dropped += 1;
                }
            }
            let r = &mut self.resync[i];
            r.shipped += records.len() as u64;
            match next {
                Some(cursor) => {
                    r.cursor = cursor;
                    i += 1;
                }
                None => {
                    let shipped = r.shipped;
                    self.resync.swap_remove(i);
                    let name = self.member_name(node);
                    tracing::info!(shard = self.id, node = %name, records = shipped, "re-sync of a returning member done");
                }
            }
        }
    }
}
