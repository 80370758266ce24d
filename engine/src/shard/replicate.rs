//! Replicas: after the acting owner of a key executed a write, it ships the
//! item's resulting state (value, flags, TTL, CAS) or its delete to the
//! other nodes of the key's replica set, over this shard's peer links.
//!
//! ```text
//!   write on the owning shard ─► peek before ─► Exec::run ─► peek after
//!        changed (CAS or TTL)? ─► ms <key> <len> b F T E<cas> Y q   (a set)
//!        gone?                 ─► md <key> b E<cas before> Y q       (a delete)
//!                                  └─► effect_on_node(r) for every other replica r
//!   replica, any shard ─► owning shard ─► `Y`: apply only if newer (exec.rs)
//! ```
//!
//! The replica set of a key is its owner in the current ring (over the live
//! members) and the next `replicas - 1` distinct live members clockwise. A
//! shard ships only for keys whose acting owner is this node, and never for
//! a replica record (`Y`), so records do not bounce. Ordering: records of
//! one key leave one shard over one link, in order; across an owner change
//! the `Y` rule decides: a set applies only if its CAS is greater than the
//! stored item's, a delete only if the stored CAS is not greater than the
//! deleted item's, and every applied CAS advances the replica store's CAS
//! clock (`Store::observe_cas`), so the next owner's writes order after it.
//!
//! Acknowledgement is "owner": the client's reply leaves after the owner's
//! store applied the write; the records follow asynchronously, and a record
//! for a link that is full or failing is dropped (counted as
//! `replica_dropped`).

use std::time::{SystemTime, UNIX_EPOCH};

use proto::Request;
use store::HashedKey;

use super::Core;

/// The state of the key before a write that may have to be shipped.
pub(super) struct Before {
    key: Vec<u8>,
    hash: u64,
    /// CAS and relative expiry of the item before, if there was one.
    prior: Option<(u64, u32)>,
}

/// Relative TTLs above this are absolute unix times on the wire (memcached).
const MAX_RELATIVE_TTL: i64 = 60 * 60 * 24 * 30;

/// Whether a request may change its key's item (and is not itself a
/// replica record).
fn writes(request: &Request<'_>) -> bool {
    match request {
        Request::Store(_) | Request::Delete(_) | Request::Arith(_) | Request::Touch(_) => true,
        Request::MetaArith(_) => true,
        Request::MetaSet(m) => !m.flags.if_newer(),
        Request::MetaDelete(m) => !m.flags.if_newer(),
        Request::MetaGet(m) => m.flags.ttl().is_some() || m.flags.vivify().is_some(),
        // gat/gats of one key; a multi-key gat is not replicated.
        Request::Get(g) => g.kind.touches() && g.keys.len() == 1,
        _ => false,
    }
}

/// Whether a request only reads its key (a `read_from = "any"` candidate).
pub(super) fn reads_only(request: &Request<'_>) -> bool {
    match request {
        Request::Get(g) => !g.kind.touches(),
        Request::MetaGet(m) => m.flags.ttl().is_none() && m.flags.vivify().is_none(),
        Request::MetaDebug(_) => true,
        _ => false,
    }
}

impl Core {
    /// With replicas, this shard's CAS values start at the wall clock's
    /// microseconds (in the store's counter bits): a node that restarts
    /// empty then makes CAS values greater than any it or its replicas made
    /// before (as long as no shard made more than one per microsecond of
    /// its life), so its records are not refused as older (`Y`).
    pub(super) fn start_cas_clock(&mut self) {
        if self.shared.cluster.as_ref().is_some_and(|p| p.replicas > 1) {
            let micros = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            self.store.observe_cas(micros << store::SHARD_BITS);
        }
    }

    /// With `read_from = "any"`: whether this node holds a replica of `key`
    /// (decoded) and so answers a read of it itself.
    pub(super) fn read_here(&self, key: &[u8]) -> bool {
        let (Some(plan), Some(view)) = (self.shared.cluster.as_ref(), self.view.as_ref()) else {
            return false;
        };
        plan.read_any
            && plan.replicas > 1
            && view
                .ring
                .replicas(key, plan.replicas)
                .any(|n| n == plan.peers.this_node)
    }

    /// Before a keyed request runs here: what to compare after it when this
    /// node is the acting owner of a replicated key, `None` otherwise.
    pub(super) fn replica_before(&mut self, request: &Request<'_>, hash: u64) -> Option<Before> {
        let plan = self.shared.cluster.as_ref()?;
        if plan.replicas < 2 || !writes(request) {
            return None;
        }
        let view = self.view.as_ref()?;
        let mut buf: proto::meta::KeyBuf = [0; _];
        let key = request.key()?.decode(&mut buf).to_vec();
        if view.ring.replicas(&key, plan.replicas).next() != Some(plan.peers.this_node) {
            return None;
        }
        let prior = self
            .store
            .peek(HashedKey::with_hash(&key, hash))
            .map(|it| (it.cas, it.exptime));
        Some(Before { key, hash, prior })
    }

    /// After the request ran: ships the item's new state, or its delete, to
    /// the key's other replicas.
    pub(super) fn replica_after(&mut self, before: Before) {
        let Before { key, hash, prior } = before;
        let mut record = Vec::with_capacity(key.len() * 2 + 64);
        record.extend_from_slice(b"m");
        let after = self.store.peek(HashedKey::with_hash(&key, hash));
        match (after, prior) {
            (Some(it), prior) if prior != Some((it.cas, it.exptime)) => {
                let ttl = match it.ttl {
                    -1 => 0,
                    t if t > MAX_RELATIVE_TTL => unix_now() + t,
                    // An item due this second still expires (T0 would keep it).
                    t => t.max(1),
                };
                record.extend_from_slice(b"s ");
                proto::base64::encode(&key, &mut record);
                let line = format!(
                    " {} b F{} T{} E{} Y q\r\n",
                    it.value.len(),
                    it.flags,
                    ttl,
                    it.cas
                );
                record.extend_from_slice(line.as_bytes());
                record.extend_from_slice(it.value);
                record.extend_from_slice(b"\r\n");
            }
            (None, Some((cas, _))) => {
                record.extend_from_slice(b"d ");
                proto::base64::encode(&key, &mut record);
                record.extend_from_slice(format!(" b E{cas} Y q\r\n").as_bytes());
            }
            _ => return,
        }
        let Some(plan) = self.shared.cluster.as_ref() else {
            return;
        };
        let Some(view) = self.view.clone() else {
            return;
        };
        for node in view.ring.replicas(&key, plan.replicas).skip(1) {
            if self.effect_on_node(node, &record) {
                self.stats.replica_shipped += 1;
            } else {
                self.stats.replica_dropped += 1;
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
