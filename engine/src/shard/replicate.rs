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
//! stored item's (or equal, with greater value bytes, then flags: CAS values
//! carry the node and shard that made them, so two writers never tie, but a
//! copy applied twice does, and every node must pick the same), a delete
//! only if the stored CAS is not greater than the deleted item's, and every
//! applied CAS advances the replica store's CAS clock (`Store::observe_cas`),
//! so the next owner's writes order after it.
//!
//! Acknowledgement: with "all" (the default) the client's reply is held
//! (`Held`: a place in its reply queue, or the shard that forwarded the
//! request) until every record is answered or its link failed. A record
//! whose link failed while membership still has its replica live leaves the
//! write unconfirmed, and so does a record that could not be queued (the
//! link full or in its backoff; counted as `replica_dropped`): the client
//! then gets `SERVER_ERROR backend failure` (nothing for a classic
//! noreply), never `STORED` for a write a live replica may not hold. The
//! owner keeps what it applied, as memcached keeps a write whose reply was
//! lost. A replica membership has declared down is not waited for. With
//! "owner" the reply leaves after the owner's store applied the write and
//! the records follow; one that cannot be queued is dropped (counted).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::{ErrorReply, Request, ServerError};
use store::HashedKey;

use super::Core;
use super::client::Client;
use super::exec::{Outcome, exec};
use super::mesh::{Kind, Origin};
use crate::config::cluster::CAS_CLOCK_EPOCH_UNIX;

/// The state of the key before a write that may have to be shipped.
pub(super) struct Before {
    key: Vec<u8>,
    hash: u64,
    /// CAS and relative expiry of the item before, if there was one.
    prior: Option<(u64, u32)>,
}

/// A client's reply held until the replicas have applied its write.
pub(super) struct Held {
    to: Option<HeldFor>,
    reply: Vec<u8>,
    /// Replica records not yet answered.
    remaining: u32,
    /// A record failed on the link to a replica that is still live.
    unconfirmed: bool,
    /// A classic noreply write: an unconfirmed one says nothing either.
    silent: bool,
}

/// Where a held reply goes.
#[derive(Clone, Copy)]
pub(super) enum HeldFor {
    /// A place in a connection's reply queue on this shard.
    Client { client: Client, part: u32 },
    /// Back to the shard that forwarded the request.
    Shard { shard: usize, origin: Origin },
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
    /// With replicas, this shard's CAS counter starts at the wall clock's
    /// microseconds since 2026 ([`CAS_CLOCK_EPOCH_UNIX`], which says how long
    /// the counter's bits last): a node that restarts empty then makes CAS
    /// values greater than any it or its replicas made before (as long as no
    /// shard made more than one per microsecond of its life), so its records
    /// are not refused as older (`Y`). A clock before 2026 starts at 0.
    pub(super) fn start_cas_clock(&mut self) {
        if self.shared.cluster.as_ref().is_some_and(|p| p.replicas > 1) {
            let since = UNIX_EPOCH + Duration::from_secs(CAS_CLOCK_EPOCH_UNIX);
            let micros = SystemTime::now()
                .duration_since(since)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
            let layout = self.store.cas_layout();
            self.store.observe_cas(layout.cas(micros));
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
    /// Returns how many records were sent and how many could not be queued;
    /// `ack` is the held reply their answers count for (`replication_ack =
    /// "all"`).
    pub(super) fn replica_after(&mut self, before: Before, ack: Option<u64>) -> (u32, u32) {
        let Before { key, hash, prior } = before;
        let mut record = Vec::with_capacity(key.len() * 2 + 64);
        let after = self.store.peek(HashedKey::with_hash(&key, hash));
        match (after, prior) {
            (Some(it), prior) if prior != Some((it.cas, it.exptime)) => {
                set_record(&it, &mut record)
            }
            (None, Some((cas, _))) => {
                delete_record(&key, cas, &mut record);
                self.log_delete(&key, cas);
            }
            _ => return (0, 0),
        }
        let (Some(plan), Some(view)) = (self.shared.cluster.as_ref(), self.view.clone()) else {
            return (0, 0);
        };
        let (mut sent, mut dropped) = (0, 0);
        for node in view.ring.replicas(&key, plan.replicas).skip(1) {
            if self.effect_on_node(node, &record, ack) {
                self.stats.replica_shipped += 1;
                sent += 1;
            } else {
                self.stats.replica_dropped += 1;
                dropped += 1;
            }
        }
        (sent, dropped)
    }

    /// Whether replies to replicated writes wait for the replicas.
    fn ack_all(&self) -> bool {
        self.shared
            .cluster
            .as_ref()
            .is_some_and(|p| p.ack_all && p.replicas > 1)
    }

    /// Runs a keyed request here and ships what it changed: the reply goes
    /// to `out` at once, or, with `replication_ack = "all"` when records
    /// were sent, is held until every one is answered (`Ok(None)` then: the
    /// caller makes the [`Held`] destination with the returned key).
    /// During warm-up a request may first wait for its key to be read
    /// through (warmup.rs); `raw` is its bytes, run again then. That wait
    /// is held the same way.
    pub(super) fn run_replicated(
        &mut self,
        request: &Request<'_>,
        hash: u64,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> (Outcome, Option<u64>) {
        if let Some(id) = self.fill_before(request, hash, raw) {
            return (Outcome::Done, Some(id));
        }
        self.run_and_ship(request, hash, out)
    }

    /// [`Core::run_replicated`] without the warm-up read.
    pub(super) fn run_and_ship(
        &mut self,
        request: &Request<'_>,
        hash: u64,
        out: &mut Vec<u8>,
    ) -> (Outcome, Option<u64>) {
        let before = self.replica_before(request, hash);
        let outcome = exec!(self).run(request, hash, out);
        if writes(request) {
            self.warm_wrote(hash);
        }
        let Some(b) = before else {
            self.replica_delete_applied(request, hash);
            return (outcome, None);
        };
        if !self.ack_all() {
            self.replica_after(b, None);
            return (outcome, None);
        }
        self.next_ack += 1;
        let id = self.next_ack;
        let silent = request.noreply() && !request.is_meta();
        match self.replica_after(b, Some(id)) {
            // A live replica did not get the write: it is not acknowledged
            // (the answers of records that did leave find no held reply).
            (_, dropped) if dropped > 0 => {
                self.stats.replica_unconfirmed += 1;
                unconfirmed_reply(silent, out);
                (outcome, None)
            }
            (0, _) => (outcome, None),
            (n, _) => {
                self.acks.insert(
                    id,
                    Held {
                        to: None,
                        reply: std::mem::take(out),
                        remaining: n,
                        unconfirmed: false,
                        silent,
                    },
                );
                (outcome, Some(id))
            }
        }
    }

    /// A replica's delete (`md ... E<cas> Y`) that left the key absent here
    /// is logged as the owner's is: this node may be the acting owner when a
    /// member that missed it comes back.
    fn replica_delete_applied(&mut self, request: &Request<'_>, hash: u64) {
        let Request::MetaDelete(m) = request else {
            return;
        };
        let Some(cas) = m.flags.new_cas().filter(|_| m.flags.if_newer()) else {
            return;
        };
        let mut buf: proto::meta::KeyBuf = [0; _];
        let key = m.key.decode(&mut buf);
        if self.store.peek(HashedKey::with_hash(key, hash)).is_none() {
            let key = key.to_vec();
            self.log_delete(&key, cas);
        }
    }

    /// Says where the held reply `id` goes once its replicas have answered.
    /// `id` is a held reply's or a warm-up fill's.
    pub(super) fn hold_for(&mut self, id: u64, to: HeldFor) {
        if let Some(h) = self.acks.get_mut(&id) {
            h.to = Some(to);
        } else {
            self.hold_fill_for(id, to);
        }
    }

    /// One replica record of held reply `id` was answered; the last one
    /// sends the reply on.
    pub(super) fn ack_arrived(&mut self, id: u64) {
        self.settle(id, false);
    }

    /// The link to `node` failed before it answered a record of held reply
    /// `id`: the write is unconfirmed unless membership has declared `node`
    /// down (then it is no longer a replica the reply waits for).
    pub(super) fn ack_failed(&mut self, id: u64, node: usize) {
        let live = self.view.as_ref().is_none_or(|v| v.is_live(node));
        self.settle(id, live);
    }

    fn settle(&mut self, id: u64, unconfirmed: bool) {
        let Some(h) = self.acks.get_mut(&id) else {
            return;
        };
        h.unconfirmed |= unconfirmed;
        h.remaining -= 1;
        if h.remaining > 0 {
            return;
        }
        let Some(mut h) = self.acks.remove(&id) else {
            return;
        };
        if h.unconfirmed {
            self.stats.replica_unconfirmed += 1;
            unconfirmed_reply(h.silent, &mut h.reply);
        }
        self.send_held(h.to, &h.reply);
    }

    /// Sends a held reply where it goes.
    pub(super) fn send_held(&mut self, to: Option<HeldFor>, reply: &[u8]) {
        match to {
            Some(HeldFor::Client { client, part }) => self.deliver_to(client, part, reply),
            Some(HeldFor::Shard { shard, origin }) => {
                self.mesh.push(shard, Kind::Reply, origin, &[reply])
            }
            None => {}
        }
    }
}

/// The replica record of an item's whole state: `ms <key> <len> b F T E Y q`
/// and its value (apply only if newer than what the replica holds).
pub(super) fn set_record(it: &store::ItemView<'_>, record: &mut Vec<u8>) {
    let ttl = wire_exptime(it.ttl);
    record.extend_from_slice(b"ms ");
    proto::base64::encode(it.key, record);
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

/// The exptime a set gives an item to leave it with `ttl` seconds to live
/// (-1: never expires), as memcached reads it: relative up to 30 days, a
/// unix time beyond.
pub(super) fn wire_exptime(ttl: i64) -> i64 {
    match ttl {
        -1 => 0,
        t if t > MAX_RELATIVE_TTL => unix_now() + t,
        // An item due this second still expires (T0 would keep it).
        t => t.max(1),
    }
}

/// The replica record of a delete of `key`, whose item had `cas`: `md <key>
/// b E<cas> Y q` (delete only an item not newer than that).
pub(super) fn delete_record(key: &[u8], cas: u64, record: &mut Vec<u8>) {
    record.extend_from_slice(b"md ");
    proto::base64::encode(key, record);
    record.extend_from_slice(format!(" b E{cas} Y q\r\n").as_bytes());
}

/// The reply to a write that a live replica may not hold: memcached's
/// proxy wording for a backend that failed, or nothing for a classic
/// noreply.
fn unconfirmed_reply(silent: bool, reply: &mut Vec<u8>) {
    reply.clear();
    if !silent {
        ErrorReply::Server(ServerError::BackendFailure).encode(reply);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
