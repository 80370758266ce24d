//! Warm-up: for its first `cluster.warmup_secs` after it starts, a node that
//! owns a key but does not hold it reads the key through from the key's
//! previous owner before the request runs (mcrouter's WarmUpRoute, done by
//! the server), so that a node that joins or comes back does not turn its
//! share of the hits into misses.
//!
//! ```text
//!   keyed request on the owning shard, key absent here, warm-up on
//!     previous owner p = the next live member clockwise (the owner without us)
//!     ─► mg <key b64> b v f t c Owarmup  to p  (the request waits, as a held reply)
//!   p's reply ─► VA: stored here as an add with p's flags, TTL and CAS
//!              ─► EN, failure: nothing stored
//!   then the request runs here, as if it had come now
//! ```
//!
//! What is read through: every keyed request but an unconditional set (the
//! get family, mg, me, add/replace/append/prepend/cas, incr/decr, touch,
//! delete, ma, md, ms with a mode or `C`), so that `incr` or `append` of a
//! key p holds acts on p's value, and `delete` answers `DELETED`. A multi-key
//! get's run of local keys waits for all of its absent keys at once.
//!
//! Stale copies. The fill is an add: it never replaces what this node
//! holds. And a key written here since the node started is never read
//! through again: its latest state is (or was, before a delete or an
//! eviction) here, and the previous owner's copy may be older. The shard
//! remembers such keys in a bitmap of 2^23 bits indexed by the key's hash
//! (1 MiB, kept only while the window is open): a fill whose key's bit is
//! set is neither sent nor stored when it arrives. Collisions only cost
//! read-throughs (the key is then a miss, as without warm-up): with a
//! million keys written during the window, about 11% of the others.
//!
//! Order. A request on a key whose earlier request waits for its read waits
//! behind it (the `chains`), whatever it is, so one connection's requests on
//! a key run in the order sent; a replica record or a warm-up read does not.
//!
//! Nothing to read. Each shard samples the answers: a sample of 1,024 reads
//! with fewer than 16 copies closes its window (a cluster's first start,
//! when the previous owners are as new as this node).
//!
//! Which keys: only those this node owns because it (re)joined. The window
//! closes early when membership declares any member down: the keys this
//! node then takes over are the dead member's, and the next live node
//! clockwise is not where they were (with replicas they are here already;
//! without, they are lost, and reading them from a neighbour could bring
//! back a copy the dead owner had since replaced).

use std::collections::HashMap;
use std::time::Instant;

use proto::client::{MetaCode, Reply, ReplyParse, parse_reply};
use proto::cmd::get::GetKind;
use proto::cmd::store::StoreCmd;
use proto::meta::set::SetMode;
use proto::{Parse, Request};
use store::{HashedKey, MetaSetArgs, MetaSetMode, StoreOutcome};

use super::Core;
use super::exec::exec;
use super::peer::replies::{Expect, OnFailure, Then, Waiting};
use super::replicate::{self, HeldFor};

/// The opaque token of a warm-up read: a node never reads such a request
/// through again, so two warming nodes that disagree on a ring cannot pass
/// one miss around.
const WARMUP_OPAQUE: &[u8] = b"warmup";

/// Most warm-up reads one shard has in flight; past it a miss is a miss.
const MAX_FILLS: usize = 1024;

/// A shard's warm-up state.
#[derive(Default)]
pub(super) struct WarmUp {
    /// Seconds after start the window lasts (0: off, or closed early).
    secs: u32,
    /// Whether the window is open, set once per turn.
    active: bool,
    fills: HashMap<u64, Fill>,
    /// The last fill (by id) that holds a request on each key hash: a later
    /// request on the key waits behind it, so that one connection's
    /// requests on a key still run in the order it sent them.
    chains: HashMap<u64, u64>,
    /// Keys written here since start, by hash bit (see the module's text);
    /// empty once the window has closed.
    written: Vec<u64>,
    /// Reads answered in the current sample, and how many brought a copy.
    sample: u32,
    sample_copies: u32,
}

/// Reads per sample of the previous owners' answers.
const SAMPLE: u32 = 1024;
/// A sample with fewer copies than this closes the window: the previous
/// owners hold (almost) nothing, as at a cluster's first start, when every
/// node is new and a read-through only adds a round trip to a miss.
const MIN_COPIES: u32 = SAMPLE / 64;

/// Bits in the map of written keys: 2^23 (1 MiB).
const WRITTEN_BITS: u32 = 23;

/// A request waiting for the reads of its absent keys, and for the
/// requests on its keys held before it.
pub(super) struct Fill {
    /// The keys read through (decoded) and their hashes.
    keys: Vec<(Vec<u8>, u64)>,
    /// Reads not answered plus earlier fills not run.
    remaining: u32,
    rerun: Rerun,
    to: Option<HeldFor>,
    /// The hashes of every key of the request (its place in `chains`).
    hashes: Vec<u64>,
    /// Fills waiting for this one to run, in the order they came.
    next: Vec<u64>,
}

/// What runs once a fill's reads are answered.
enum Rerun {
    /// A keyed request: its bytes (parsed again) and its key's hash.
    Request(Vec<u8>, u64),
    /// A run of a multi-key get: its `VALUE` blocks, no `END`.
    Values {
        kind: GetKind,
        exptime: i32,
        keys: Vec<(Vec<u8>, u64)>,
    },
}

impl WarmUp {
    /// Off for one node, and with forwarding off: then clients or a proxy
    /// place keys, and the ring this node knows need not be theirs.
    pub(super) fn new(plan: Option<&crate::config::ClusterPlan>) -> WarmUp {
        let secs = plan.filter(|p| p.forward).map_or(0, |p| p.warmup_secs);
        WarmUp {
            secs,
            written: if secs > 0 {
                vec![0; 1 << (WRITTEN_BITS - 6)]
            } else {
                Vec::new()
            },
            ..WarmUp::default()
        }
    }

    /// Once per turn: `uptime` seconds since the server started.
    pub(super) fn set_uptime(&mut self, uptime: u32) {
        self.active = uptime < self.secs;
        if !self.active && !self.written.is_empty() {
            self.written = Vec::new();
        }
    }

    /// Closes the window for good (a member went down).
    pub(super) fn close(&mut self) {
        self.secs = 0;
        self.set_uptime(0);
    }

    /// One read was answered, with a copy or not; true when the sample it
    /// completes closed the window.
    fn answered(&mut self, copy: bool) -> bool {
        self.sample += 1;
        self.sample_copies += u32::from(copy);
        if self.sample < SAMPLE {
            return false;
        }
        let empty = self.sample_copies < MIN_COPIES;
        (self.sample, self.sample_copies) = (0, 0);
        if empty && self.active {
            self.close();
            return true;
        }
        false
    }

    fn bit(hash: u64) -> (usize, u64) {
        let i = (hash >> 24) as usize & ((1 << WRITTEN_BITS) - 1);
        (i / 64, 1 << (i % 64))
    }

    fn mark_written(&mut self, hash: u64) {
        let (word, bit) = WarmUp::bit(hash);
        if let Some(w) = self.written.get_mut(word) {
            *w |= bit;
        }
    }

    /// Whether a key with `hash` may be read through: the window is open and
    /// no key with its bit was written here.
    fn may_fill(&self, hash: u64) -> bool {
        let (word, bit) = WarmUp::bit(hash);
        self.written.get(word).is_some_and(|w| w & bit == 0)
    }
}

/// Whether a request keeps its place behind an earlier request on its key
/// that waits for a read-through: every client request does. A replica
/// record is ordered by its CAS, and a warm-up read must not wait (two
/// warming nodes reading from each other would wait for each other).
fn ordered(request: &Request<'_>) -> bool {
    match request {
        Request::MetaSet(m) => !m.flags.if_newer(),
        Request::MetaDelete(m) => !m.flags.if_newer(),
        Request::MetaGet(m) => m.flags.opaque() != Some(WARMUP_OPAQUE),
        _ => true,
    }
}

/// Whether a request needs its key's current value (an unconditional set
/// does not; a replica record or a warm-up read never reads through).
fn reads_through(request: &Request<'_>) -> bool {
    match request {
        Request::Store(s) => s.cmd != StoreCmd::Set,
        Request::MetaSet(m) => {
            !m.flags.if_newer()
                && (m.mode != SetMode::Set
                    || m.flags.compare_cas().is_some()
                    || m.flags.invalidate())
        }
        Request::MetaDelete(m) => !m.flags.if_newer(),
        Request::MetaGet(m) => m.flags.opaque() != Some(WARMUP_OPAQUE),
        Request::Get(_)
        | Request::Delete(_)
        | Request::Arith(_)
        | Request::Touch(_)
        | Request::MetaArith(_)
        | Request::MetaDebug(_) => true,
        _ => false,
    }
}

impl Core {
    /// Whether this shard's warm-up window is open (`stats cluster`).
    pub(super) fn warming(&self) -> bool {
        self.warm.active
    }

    /// Once per turn, from the store's clock.
    pub(super) fn update_warmup(&mut self) {
        let uptime = self.life.now.saturating_sub(crate::config::CLOCK_START);
        self.warm.set_uptime(uptime);
    }

    /// The node this one took `key` (decoded) over from: when this node is
    /// the key's acting owner, the next live member clockwise.
    fn previous_owner(&self, key: &[u8]) -> Option<usize> {
        let (plan, view) = (self.shared.cluster.as_ref()?, self.view.as_ref()?);
        let this = plan.peers.this_node;
        let mut set = view.ring.replicas(key, 2);
        if set.next()? != this {
            return None;
        }
        set.next().filter(|&n| n != this)
    }

    /// The node to read `key` through from, if it is absent here, this node
    /// owns it and the link can take the read now.
    fn fill_source(&mut self, key: &[u8], hash: u64) -> Option<usize> {
        if self.warm.fills.len() >= MAX_FILLS || !self.warm.may_fill(hash) {
            return None;
        }
        let node = self.previous_owner(key)?;
        let now = Instant::now();
        if self.links.failed(node) || !self.links.has_room(node) || self.links.refuses(node, now) {
            return None;
        }
        self.store
            .peek(HashedKey::with_hash(key, hash))
            .is_none()
            .then_some(node)
    }

    /// Before a keyed request (`raw`, its bytes) runs on this shard: during
    /// warm-up, when it needs a key this node owns but lacks, the key is read
    /// through first and the returned id holds the request, as a held reply
    /// ([`Core::hold_for`] says where its reply goes).
    pub(super) fn fill_before(
        &mut self,
        request: &Request<'_>,
        hash: u64,
        raw: &[u8],
    ) -> Option<u64> {
        let before = self.held_before(hash).filter(|_| ordered(request));
        let reads = self.warm.active && reads_through(request);
        if !reads && before.is_none() {
            return None;
        }
        let mut buf: proto::meta::KeyBuf = [0; _];
        let key = request.key()?.decode(&mut buf);
        let node = if reads {
            self.fill_source(key, hash)
        } else {
            None
        };
        if node.is_none() && before.is_none() {
            // Nothing to wait for: the request runs now, nothing copied.
            return None;
        }
        let keys = node.map(|_| (key.to_vec(), hash)).into_iter().collect();
        let rerun = Rerun::Request(raw.to_vec(), hash);
        let nodes: Vec<usize> = node.into_iter().collect();
        self.start_fill(rerun, keys, &nodes, vec![hash], before.as_slice())
    }

    /// The fill holding the last request on the key with `hash`, if any.
    fn held_before(&self, hash: u64) -> Option<u64> {
        if self.warm.chains.is_empty() {
            return None;
        }
        self.warm.chains.get(&hash).copied()
    }

    /// [`Core::fill_before`] for a run of a multi-key get's keys this shard
    /// owns: those absent here are read through, then the run is answered.
    pub(super) fn fill_values<'k>(
        &mut self,
        kind: GetKind,
        exptime: i32,
        keys: impl Iterator<Item = (&'k [u8], u64)> + Clone,
    ) -> Option<u64> {
        let mut before: Vec<u64> = Vec::new();
        for (_, hash) in keys.clone() {
            if let Some(id) = self.held_before(hash)
                && !before.contains(&id)
            {
                before.push(id);
            }
        }
        if !self.warm.active && before.is_empty() {
            return None;
        }
        let (mut absent, mut nodes) = (Vec::new(), Vec::new());
        if self.warm.active {
            for (key, hash) in keys.clone() {
                if let Some(node) = self.fill_source(key, hash) {
                    absent.push((key.to_vec(), hash));
                    nodes.push(node);
                }
            }
        }
        if absent.is_empty() && before.is_empty() {
            return None;
        }
        let keys: Vec<(Vec<u8>, u64)> = keys.map(|(k, h)| (k.to_vec(), h)).collect();
        let hashes = keys.iter().map(|&(_, h)| h).collect();
        let rerun = Rerun::Values {
            kind,
            exptime,
            keys,
        };
        self.start_fill(rerun, absent, &nodes, hashes, &before)
    }

    /// Sends a read of each of `keys` to its node in `nodes`, and holds the
    /// request until they are answered and the fills `before` have run;
    /// `hashes` are those of all the request's keys. `None` when there is
    /// nothing to wait for (no read could be sent, nothing before): the
    /// request then runs at once.
    fn start_fill(
        &mut self,
        rerun: Rerun,
        keys: Vec<(Vec<u8>, u64)>,
        nodes: &[usize],
        hashes: Vec<u64>,
        before: &[u64],
    ) -> Option<u64> {
        self.next_ack += 1;
        let id = self.next_ack;
        let mut sent = 0;
        let mut line = Vec::new();
        let now = Instant::now();
        for (i, ((key, _), &node)) in keys.iter().zip(nodes).enumerate() {
            line.clear();
            line.extend_from_slice(b"mg ");
            proto::base64::encode(key, &mut line);
            line.extend_from_slice(b" b v f t c O");
            line.extend_from_slice(WARMUP_OPAQUE);
            line.extend_from_slice(b"\r\n");
            let w = Waiting {
                client: None,
                part: 0,
                expect: Expect::One,
                on_failure: OnFailure::Nothing,
                since: now,
                then: Then::Fill {
                    fill: id,
                    key: i as u32,
                },
                replay: None,
            };
            if self.links.push(&mut self.net.ring, node, &[&line], w) {
                self.stats.warmup_reads += 1;
                sent += 1;
            }
        }
        let mut waits = sent;
        for b in before {
            if let Some(f) = self.warm.fills.get_mut(b) {
                f.next.push(id);
                waits += 1;
            }
        }
        if waits == 0 {
            return None;
        }
        for &h in &hashes {
            self.warm.chains.insert(h, id);
        }
        let fill = Fill {
            keys,
            remaining: waits,
            rerun,
            to: None,
            hashes,
            next: Vec::new(),
        };
        self.warm.fills.insert(id, fill);
        Some(id)
    }

    /// Says where fill `id`'s reply goes; false when `id` is not a fill.
    pub(super) fn hold_fill_for(&mut self, id: u64, to: HeldFor) -> bool {
        match self.warm.fills.get_mut(&id) {
            Some(f) => {
                f.to = Some(to);
                true
            }
            None => false,
        }
    }

    /// The read of key `key` of fill `fill` was answered (`reply`, the
    /// previous owner's whole reply) or failed (`None`).
    pub(super) fn fill_arrived(&mut self, fill: u64, key: u32, reply: Option<&[u8]>) {
        let Some(f) = self.warm.fills.get_mut(&fill) else {
            return;
        };
        let Some((k, hash)) = f.keys.get(key as usize).cloned() else {
            return;
        };
        // Not when the key was written here meanwhile, or the window closed.
        if let Some(bytes) = reply.filter(|_| self.warm.may_fill(hash)) {
            self.store_fill(&k, hash, bytes);
        }
        // A failed read says nothing of what the previous owners hold.
        if let Some(bytes) = reply
            && self.warm.answered(bytes.starts_with(b"VA "))
        {
            tracing::info!(
                shard = self.id,
                "warm-up closed: fewer than {MIN_COPIES} of the last {SAMPLE} reads through found a copy (the previous owners hold nothing, as when a whole cluster starts)"
            );
        }
        self.one_less(fill);
    }

    /// One thing fill `id` waited for is done; when it was the last, its
    /// request runs, then each fill that waited only for it, in order.
    fn one_less(&mut self, id: u64) {
        let mut ready = std::collections::VecDeque::from([id]);
        while let Some(id) = ready.pop_front() {
            let Some(f) = self.warm.fills.get_mut(&id) else {
                continue;
            };
            f.remaining -= 1;
            if f.remaining > 0 {
                continue;
            }
            let Some(mut f) = self.warm.fills.remove(&id) else {
                continue;
            };
            for h in &f.hashes {
                if self.warm.chains.get(h) == Some(&id) {
                    self.warm.chains.remove(h);
                }
            }
            ready.extend(std::mem::take(&mut f.next));
            self.rerun(f);
        }
    }

    /// Stores the previous owner's copy (an `mg … v f t c` reply) as an add
    /// with its flags, TTL and CAS.
    fn store_fill(&mut self, key: &[u8], hash: u64, reply: &[u8]) {
        let ReplyParse::Complete {
            reply: Reply::Meta(m),
            ..
        } = parse_reply(reply)
        else {
            return;
        };
        let (MetaCode::Va, Some(data)) = (m.code, m.value) else {
            return;
        };
        let cas = m.flags.cas();
        let args = MetaSetArgs {
            mode: MetaSetMode::Add,
            flags: m.flags.client_flags().unwrap_or(0),
            exptime: replicate::wire_exptime(m.flags.ttl().unwrap_or(-1)),
            compare_cas: None,
            invalidate: false,
            new_cas: cas,
            vivify: None,
            return_cas: false,
        };
        if let Some(cas) = cas {
            self.store.observe_cas(cas);
        }
        let stored = self
            .store
            .meta_set(HashedKey::with_hash(key, hash), data, &args);
        if matches!(stored, StoreOutcome::Stored { .. }) {
            self.stats.warmup_filled += 1;
        }
    }

    /// Runs what fill `f` held, now that its keys are here (or are not
    /// anywhere), and sends its reply on.
    fn rerun(&mut self, f: Fill) {
        self.log_cfd = -1;
        let mut out = Vec::new();
        match f.rerun {
            Rerun::Request(raw, hash) => {
                let Parse::Complete { request, .. } = proto::parse(&raw, &self.limits) else {
                    return;
                };
                let (_, held) = self.run_and_ship(&request, hash, &mut out);
                if let Some(id) = held {
                    if let Some(to) = f.to {
                        self.hold_for(id, to);
                    }
                    return;
                }
            }
            Rerun::Values {
                kind,
                exptime,
                keys,
            } => {
                let keys = keys.iter().map(|(k, h)| (&k[..], *h));
                exec!(self).values(kind, exptime, keys, &mut out);
            }
        }
        self.send_held(f.to, &out);
    }

    /// After a write of a key with `hash` ran here during warm-up: it is
    /// not read through again.
    pub(super) fn warm_wrote(&mut self, hash: u64) {
        if self.warm.active {
            self.warm.mark_written(hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Vec<u8> {
        line.as_bytes().to_vec()
    }

    fn reads(line: &str) -> bool {
        let bytes = request(line);
        match proto::parse(&bytes, &proto::Limits::default()) {
            Parse::Complete { request, .. } => reads_through(&request),
            _ => panic!("{line:?} does not parse"),
        }
    }

    #[test]
    fn everything_but_a_plain_set_and_replica_records_reads_through() {
        for line in [
            "get k\r\n",
            "gets k\r\n",
            "gat 10 k\r\n",
            "mg k v\r\n",
            "me k\r\n",
            "add k 0 0 1\r\nx\r\n",
            "append k 0 0 1\r\nx\r\n",
            "cas k 0 0 1 5\r\nx\r\n",
            "incr k 1\r\n",
            "touch k 10\r\n",
            "delete k\r\n",
            "ma k\r\n",
            "md k\r\n",
            "ms k 1 MA\r\nx\r\n",
            "ms k 1 C5\r\nx\r\n",
        ] {
            assert!(reads(line), "{line:?}");
        }
        for line in [
            "set k 0 0 1\r\nx\r\n",
            "ms k 1\r\nx\r\n",
            "ms k 1 E5 Y q\r\nx\r\n",
            "md k E5 Y q\r\n",
            "mg k v f t c Owarmup\r\n",
            "version\r\n",
        ] {
            assert!(!reads(line), "{line:?}");
        }
    }

    #[test]
    fn client_requests_keep_their_order_and_replica_records_and_warm_up_reads_do_not_wait() {
        let ordered_line = |line: &str| {
            let bytes = request(line);
            match proto::parse(&bytes, &proto::Limits::default()) {
                Parse::Complete { request, .. } => ordered(&request),
                _ => panic!("{line:?} does not parse"),
            }
        };
        for line in [
            "set k 0 0 1\r\nx\r\n",
            "ms k 1\r\nx\r\n",
            "get k\r\n",
            "md k\r\n",
        ] {
            assert!(ordered_line(line), "{line:?}");
        }
        for line in [
            "ms k 1 E5 Y q\r\nx\r\n",
            "md k E5 Y q\r\n",
            "mg k v f t c Owarmup\r\n",
        ] {
            assert!(!ordered_line(line), "{line:?}");
        }
    }

    #[test]
    fn a_written_key_is_not_read_through_and_nothing_is_once_closed() {
        let mut w = WarmUp {
            secs: 120,
            written: vec![0; 1 << (WRITTEN_BITS - 6)],
            ..WarmUp::default()
        };
        let (a, b) = (store::key_hash(b"a"), store::key_hash(b"b"));
        assert!(w.may_fill(a) && w.may_fill(b));
        w.mark_written(a);
        assert!(!w.may_fill(a));
        assert!(w.may_fill(b), "another key's bit");
        w.close();
        assert!(!w.active);
        assert!(!w.may_fill(b), "closed");
        w.set_uptime(0);
        assert!(!w.active, "closed for good");
    }

    #[test]
    fn a_sample_of_reads_that_find_almost_nothing_closes_the_window() {
        let open = || {
            let mut w = WarmUp::new(None);
            w.secs = 120;
            w.set_uptime(0);
            w
        };
        // One copy in 64 keeps it open, sample after sample.
        let mut w = open();
        for i in 0..3 * SAMPLE {
            assert!(!w.answered(i % 64 == 0));
        }
        assert!(w.active);
        // Fewer closes it at the sample's end, for good.
        let mut w = open();
        for i in 0..SAMPLE - 1 {
            assert!(!w.answered(i < MIN_COPIES - 1));
        }
        assert!(w.active);
        assert!(w.answered(false));
        assert!(!w.active);
        w.set_uptime(1);
        assert!(!w.active);
    }

    #[test]
    fn the_window_is_open_for_its_seconds_after_start() {
        let mut w = WarmUp::new(None);
        w.secs = 120;
        w.set_uptime(0);
        assert!(w.active);
        w.set_uptime(119);
        assert!(w.active);
        w.set_uptime(120);
        assert!(!w.active);
        let mut off = WarmUp::default();
        off.set_uptime(0);
        assert!(!off.active);
    }
}
