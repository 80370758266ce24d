//! The request path's side of peer links: where a key is served (node
//! first, then shard), requests queued for another node with their place in
//! the client's reply queue, and the links' completions turned into replies.

use std::time::Instant;

use cluster::Router;
use proto::meta::KeyBuf;
use proto::{ErrorReply, Parse, Request, ServerError};
use runtime::Completion;

use super::Failure;
use super::replies::{Expect, OnFailure, Then, Waiting, take_reply};
use crate::membership::view::View;
use crate::shard::Core;
use crate::shard::client::{Client, Handled};
use crate::shard::exec::exec;
use crate::shard::mesh::Kind;
use crate::shard::ops::{OP_PEER_CONNECT, OP_PEER_RECV, OP_PEER_SEND};
use crate::shard::route::{self, Target};

/// Sent after a request that may have no reply: its `MN` always comes.
const NOOP: &[u8] = b"mn\r\n";

impl Core {
    /// Where a request for `key` (decoded), whose hash is `hash`, is served:
    /// the cluster's ring first when this node forwards and the request did
    /// not come over a peer link (those run where they land), then the shard.
    pub(in crate::shard) fn place(&self, client: Client, key: &[u8], hash: u64) -> Target {
        self.place_key(key, hash, !self.on_peer_link(client))
    }

    /// [`Core::place`] for a request that may (`may_forward`) or may not
    /// leave this node.
    pub(in crate::shard) fn place_key(&self, key: &[u8], hash: u64, may_forward: bool) -> Target {
        let shards = self.mesh.shards();
        match (&self.shared.cluster, &self.view) {
            (Some(plan), Some(view)) if plan.forward && may_forward => Router {
                ring: &view.ring,
                this_node: plan.peers.this_node,
                this_shard: self.id,
                shards,
                forwarding: true,
            }
            .route(key, hash),
            _ => route::target(hash, self.id, shards),
        }
    }

    /// [`Core::place_key`] for a request that only reads its key. With
    /// replicas, a key whose acting owner's link has failed and not connected
    /// since (the owner is dead or unreachable but membership has not declared
    /// it down yet, or, static, never will) is read from the next replica
    /// whose link has not failed: this node's own copy when it holds one,
    /// else that node's. Writes still go to the owner (and its failed link
    /// opens again for them, which brings reads back once it connects).
    pub(in crate::shard) fn place_read(
        &mut self,
        key: &[u8],
        hash: u64,
        may_forward: bool,
    ) -> Target {
        let target = self.place_key(key, hash, may_forward);
        let Target::Node(owner) = target else {
            return target;
        };
        let (Some(plan), Some(view)) = (&self.shared.cluster, &self.view) else {
            return target;
        };
        if plan.replicas < 2 || !self.links.failed(owner) {
            return target;
        }
        let this = plan.peers.this_node;
        let next = view
            .ring
            .replicas(key, plan.replicas)
            .skip(1)
            .find(|&n| n == this || !self.links.failed(n));
        match next {
            Some(n) => {
                self.stats.replica_read_failovers += 1;
                if n == this {
                    route::target(hash, self.id, self.mesh.shards())
                } else {
                    Target::Node(n)
                }
            }
            None => target,
        }
    }

    /// [`Core::place_read`] for a request from `client` (one that came over
    /// a peer link runs here).
    pub(in crate::shard) fn place_read_from(
        &mut self,
        client: Client,
        key: &[u8],
        hash: u64,
    ) -> Target {
        let may_forward = !self.on_peer_link(client);
        self.place_read(key, hash, may_forward)
    }

    /// Whether a request (`raw`, its bytes) from `client` may be forwarded to
    /// another node: not when it came over a peer link (it runs where it
    /// lands), and not in the binary protocol, which the links do not carry
    /// (such a request is served by this node, as with forwarding off).
    pub(in crate::shard) fn may_forward(&self, client: Client, raw: &[u8]) -> bool {
        raw.first() != Some(&proto::binary::REQUEST_MAGIC) && !self.on_peer_link(client)
    }

    fn on_peer_link(&self, client: Client) -> bool {
        match client {
            Client::Conn { slot, generation } => self
                .net
                .conns
                .get(slot, generation)
                .is_some_and(|c| c.peer_link),
            Client::Udp { .. } => false,
        }
    }

    /// Whether a request for `node` can be queued now (else the connection
    /// stalls until the link drains).
    pub(in crate::shard) fn link_has_room(&self, node: usize) -> bool {
        self.links.has_room(node)
    }

    /// Forwards one keyed request (its bytes on the wire, `raw`) to `node`.
    pub(in crate::shard) fn forward_to_node(
        &mut self,
        client: Client,
        node: usize,
        request: &Request<'_>,
        raw: &[u8],
    ) -> Handled {
        if !self.links.has_room(node) {
            return Handled::Stall;
        }
        let quiet = request.noreply();
        let meta = request.is_meta();
        // A classic noreply hides errors too; meta's quiet mode only hides
        // the common outcomes, so a failure is still said.
        let on_failure = if quiet && !meta {
            OnFailure::Nothing
        } else {
            OnFailure::Error
        };
        let expect = if quiet {
            Expect::UntilNoop
        } else {
            Expect::One
        };
        let parts: &[&[u8]] = if quiet { &[raw, NOOP] } else { &[raw] };
        let replay = self.replicated() && super::super::replicate::reads_only(request);
        self.queue_for_node(client, node, parts, expect, on_failure, replay);
        Handled::Done
    }

    /// Whether keys have copies on other nodes (reads in flight to a node
    /// whose link fails are then sent to another replica).
    fn replicated(&self) -> bool {
        self.shared.cluster.as_ref().is_some_and(|p| p.replicas > 1)
    }

    /// Forwards one run of a multi-key get (`line`, a get-family request for
    /// keys `node` owns) whose `VALUE` blocks take their place in the reply;
    /// `reads` when it only reads (not gat).
    pub(in crate::shard) fn forward_values_to_node(
        &mut self,
        client: Client,
        node: usize,
        line: &[u8],
        reads: bool,
    ) {
        let replay = reads && self.replicated();
        let (expect, on_failure) = (Expect::Values, OnFailure::Nothing);
        self.queue_for_node(client, node, &[line], expect, on_failure, replay);
    }

    /// Runs `line` (a request that always has a reply, here a quiet delete)
    /// on `node` for its effect only; skipped (false) when the link cannot
    /// take it. `ack`: the held reply its answer counts for.
    pub(in crate::shard) fn effect_on_node(
        &mut self,
        node: usize,
        line: &[u8],
        ack: Option<u64>,
    ) -> bool {
        let now = Instant::now();
        if !self.links.has_room(node) || self.links.refuses(node, now) {
            return false;
        }
        let w = Waiting {
            client: None,
            part: 0,
            expect: Expect::UntilNoop,
            on_failure: OnFailure::Nothing,
            since: now,
            then: ack.map_or(Then::Nothing, Then::Ack),
            replay: None,
        };
        self.links.push(&mut self.net.ring, node, &[line, NOOP], w)
    }

    fn queue_for_node(
        &mut self,
        client: Client,
        node: usize,
        parts: &[&[u8]],
        expect: Expect,
        on_failure: OnFailure,
        replay: bool,
    ) {
        let now = Instant::now();
        let Some(queue) = self.net.queue(client) else {
            return;
        };
        let part = queue.await_remote();
        self.stats.node_forwarded += 1;
        let w = Waiting {
            client: Some(client),
            part,
            expect,
            on_failure,
            since: now,
            then: Then::Nothing,
            replay: None,
        };
        let ring = &mut self.net.ring;
        let queued = !self.links.refuses(node, now)
            && if replay {
                self.links.push_read(ring, node, parts, w)
            } else {
                self.links.push(ring, node, parts, w)
            };
        if !queued {
            self.links.count_failed(node);
            self.answer_failure(client, part, on_failure);
        }
    }

    /// A read that was in flight on the failed link to `failed` (`bytes`,
    /// as sent): sent to the next replica whose link has not failed, or run
    /// here when this node holds one, in its place in the client's reply.
    /// False when no other replica can take it now (it then fails as before).
    fn retry_read(&mut self, failed: usize, w: Waiting, bytes: &[u8]) -> bool {
        let Some(client) = w.client else {
            return false;
        };
        let Parse::Complete { request, .. } = proto::parse(bytes, &self.limits) else {
            return false;
        };
        let mut keybuf: KeyBuf = [0; _];
        let keys: Vec<(&[u8], u64)> = match &request {
            Request::Get(g) => g.keys.clone().map(|k| (k, route::key_hash(k))).collect(),
            other => match other.key() {
                Some(k) => {
                    let k = k.decode(&mut keybuf);
                    vec![(k, route::key_hash(k))]
                }
                None => return false,
            },
        };
        let mut targets = keys.iter().map(|&(k, h)| self.place_read(k, h, true));
        let Some(target) = targets.next() else {
            return false;
        };
        if targets.any(|t| t != target) {
            return false; // a run whose keys now live apart: it fails whole
        }
        let now = Instant::now();
        match target {
            Target::Node(n) if n == failed => false,
            Target::Node(n) => {
                if !self.links.has_room(n) || self.links.refuses(n, now) {
                    return false;
                }
                let again = Waiting {
                    since: now,
                    replay: None,
                    ..w
                };
                // `bytes` hold the request and, for a quiet one, its `mn`.
                let pushed = self.links.push_read(&mut self.net.ring, n, &[bytes], again);
                if pushed {
                    self.stats.replica_read_retries += 1;
                }
                pushed
            }
            Target::Shard(s) => {
                if !self.mesh.can_send(s) {
                    return false;
                }
                let mut hashes = Vec::new();
                let kind = match (&request, w.expect) {
                    (Request::Get(_), Expect::Values) => {
                        crate::shard::mesh::values_lead(keys.iter().map(|&(_, h)| h), &mut hashes);
                        Kind::Values
                    }
                    _ => {
                        hashes.extend_from_slice(&keys[0].1.to_le_bytes());
                        Kind::Exec
                    }
                };
                self.mesh
                    .push(s, kind, client.origin(w.part), &[&hashes, bytes]);
                self.stats.replica_read_retries += 1;
                true
            }
            Target::Local => {
                let mut out = Vec::new();
                match (&request, w.expect) {
                    (Request::Get(g), Expect::Values) => {
                        exec!(self).values(g.kind, g.exptime, keys.iter().copied(), &mut out)
                    }
                    _ => {
                        exec!(self).run(&request, keys[0].1, &mut out);
                    }
                }
                self.deliver_to(client, w.part, &out);
                self.stats.replica_read_retries += 1;
                true
            }
        }
    }

    fn answer_failure(&mut self, client: Client, part: u32, on_failure: OnFailure) {
        self.stats.node_failed += 1;
        let mut line = Vec::new();
        if on_failure == OnFailure::Error {
            ErrorReply::Server(ServerError::BackendFailure).encode(&mut line);
        }
        self.deliver_to(client, part, &line);
    }

    /// A completion of a peer link's connect, send or receive.
    pub(in crate::shard) fn on_peer_completion(&mut self, c: &Completion) {
        let t = c.token();
        let node = t.slot as usize;
        let ring = &mut self.net.ring;
        let failure = match t.op {
            OP_PEER_CONNECT => self.links.on_connect(ring, t, c.result),
            OP_PEER_SEND => self.links.on_send(ring, t, c.result),
            OP_PEER_RECV => match self.links.on_recv(t, c.result) {
                Ok(true) => self.match_replies(node),
                Ok(false) => None,
                Err(f) => Some(f),
            },
            _ => None,
        };
        if let Some(why) = failure {
            self.fail_link(node, why);
        }
    }

    /// Hands every complete reply in the link's buffer to the request
    /// waiting for it, in order; then receives again.
    fn match_replies(&mut self, node: usize) -> Option<Failure> {
        let failure = if self.links.is_tls(node) {
            let mut rx = self.links.take_tls(node)?;
            let failure = rx.receive(|plain| self.match_from(node, plain));
            self.links.put_tls(node, rx);
            failure
        } else {
            let mut rbuf = self.links.take_rbuf(node);
            let (used, failure) = self.match_from(node, &rbuf);
            rbuf.drain(..used);
            self.links.put_rbuf(node, rbuf);
            failure
        };
        if failure.is_none() {
            self.links.rearm(&mut self.net.ring, node);
        }
        failure
    }

    /// Delivers the complete replies at the start of `buf` (plaintext from
    /// the link to `node`); returns the bytes they took and whether the
    /// stream is broken.
    fn match_from(&mut self, node: usize, buf: &[u8]) -> (usize, Option<Failure>) {
        let mut pos = 0;
        let mut failure = None;
        while let Some(front) = self.links.front(node) {
            match take_reply(&buf[pos..], front.expect) {
                Ok(Some((deliver, consumed))) => {
                    self.links.pop_front(node);
                    if let Some(client) = front.client {
                        self.deliver_to(client, front.part, &buf[pos..pos + deliver]);
                    }
                    match front.then {
                        Then::Nothing => {}
                        Then::Ack(id) => self.ack_arrived(id),
                        Then::Fill { fill, key } => {
                            self.fill_arrived(fill, key, Some(&buf[pos..pos + deliver]))
                        }
                    }
                    pos += consumed;
                }
                Ok(None) => break,
                Err(_) => {
                    failure = Some(Failure::Garbage);
                    break;
                }
            }
        }
        if pos < buf.len() && self.links.front(node).is_none() {
            // Bytes nobody asked for: the stream is not what we sent it.
            failure = Some(Failure::Garbage);
        }
        if pos > 0 {
            self.links.healthy(node);
        }
        (pos, failure)
    }

    /// Drops the link to `node`, answering what waited on it.
    fn fail_link(&mut self, node: usize, why: Failure) {
        let (base, replay) = self.links.take_replay(node);
        let waiting = self
            .links
            .fail(&mut self.net.ring, node, why, Instant::now());
        for w in waiting {
            if let Some((start, len)) = w.replay
                && let Some(at) = start.checked_sub(base).map(|a| a as usize)
                && let Some(bytes) = replay.get(at..at + len as usize)
                && self.retry_read(node, w, bytes)
            {
                continue;
            }
            if let Some(client) = w.client {
                self.answer_failure(client, w.part, w.on_failure);
            }
            match w.then {
                Then::Nothing => {}
                Then::Ack(id) => self.ack_failed(id, node),
                Then::Fill { fill, key } => self.fill_arrived(fill, key, None),
            }
        }
    }

    /// Every turn: a new membership view is taken (one atomic load when
    /// nothing changed); the links to members it declares down are dropped,
    /// failing what waited on them, so nothing waits on a dead node. A
    /// member new to the list gets its link (and re-sync slot) here, before
    /// any request routes to it; as it was not live before, it is then
    /// re-synced like a member that came back.
    pub(in crate::shard) fn check_membership(&mut self) {
        let Some(published) = &self.shared.membership else {
            return;
        };
        let version = published.version();
        if version == self.view_version {
            return;
        }
        self.view_version = version;
        let view = published.load();
        let Some(old) = self.view.replace(view.clone()) else {
            return;
        };
        if !std::sync::Arc::ptr_eq(&old.roster, &view.roster) {
            self.follow_roster(&view.roster);
        }
        for node in 0..view.members.len() {
            match (old.is_live(node), view.is_live(node)) {
                (true, false) => {
                    self.warm.close();
                    self.resync.member_down(node, self.store.now());
                    if self.links.in_flight(node) > 0 {
                        self.fail_link(node, Failure::MemberDown)
                    }
                }
                (false, true) => {
                    self.links.revive(node);
                    self.start_resync(node);
                }
                // Live all along, but a new identity: the member restarted
                // before anyone declared it down, and lost (or brought back
                // from its file an older copy of) what it held.
                (true, true) => match new_identity(&old, &view, node) {
                    Identity::Same => {}
                    // Declared down somewhere, not here: it may have missed
                    // writes others sent while they counted it down.
                    Identity::Renewed => self.start_resync(node),
                    Identity::Restarted => {
                        // The link may not have seen its connection close
                        // yet: the re-sync must not go down it.
                        if self.links.open(node) {
                            self.fail_link(node, Failure::Restarted);
                        }
                        self.links.revive(node);
                        self.start_resync(node);
                    }
                },
                _ => {}
            }
        }
    }

    /// The member list grew (links and per-member state for the new
    /// indices), or an added index went to another member (its link is
    /// failed and pointed at the new address).
    fn follow_roster(&mut self, roster: &crate::membership::view::Roster) {
        if roster.len() > self.links.len() {
            self.links.grow(&roster.members, &roster.addrs);
            self.resync.grow(roster.len());
        }
        let this = self.shared.cluster.as_ref().map(|p| p.peers.this_node);
        for node in roster.listed..roster.len() {
            if Some(node) == this || self.links.goes_to(node, roster.addrs[node]) {
                continue;
            }
            self.fail_link(node, Failure::MemberDown);
            self.links
                .replace(node, &roster.members[node], roster.addrs[node]);
        }
    }

    /// Every turn: links whose connect or oldest reply is overdue are dropped.
    pub(in crate::shard) fn check_links(&mut self) {
        if !self.links.has_deadlines() {
            return;
        }
        for (node, why) in self.links.expired(Instant::now()) {
            self.fail_link(node, why);
        }
    }
}

/// How a member live in both views changed its gossip identity.
enum Identity {
    Same,
    /// Its generation went up by a few: it renewed its identity (foca does
    /// when it learns that it was declared down), the process is the same.
    Renewed,
    /// A new start time: the process was started again.
    Restarted,
}

/// Generations are start times in microseconds, +1 per renewal: a process
/// that renews a thousand times is as unlikely as one that restarts within
/// a millisecond of its start.
const RENEWALS: u64 = 1_000;

/// What `node`'s identity did from `old` to `new` (one never heard is the
/// same).
fn new_identity(old: &View, new: &View, node: usize) -> Identity {
    let (Some(a), Some(b)) = (old.members.get(node), new.members.get(node)) else {
        return Identity::Same;
    };
    if a.generation == 0 || b.generation == a.generation {
        Identity::Same
    } else if b.generation > a.generation && b.generation - a.generation < RENEWALS {
        Identity::Renewed
    } else {
        Identity::Restarted
    }
}
