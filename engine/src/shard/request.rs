//! The request path, top-down: bytes → parse → route → execute or forward →
//! reply queue.
//!
//! Requests are parsed as far as the buffered bytes allow, straight from the
//! kernel's receive buffer when nothing is left over from before ([`on_data`]).
//! Each complete request is routed by its key's owner ([`handle`]): a key this
//! shard owns runs on the store inline ([`exec`]); one for another shard's key
//! is forwarded as its raw bytes (the owner parses it again) and its reply
//! takes its place in the connection's [`ReplyQueue`]. A multi-key get is
//! split into runs of keys by owner and put back together in order. A UDP
//! datagram's requests take the same path ([`on_datagram`]).
//!
//! [`on_data`]: Core::on_data
//! [`handle`]: Core::handle
//! [`on_datagram`]: Core::on_datagram
//! [`exec`]: super::exec
//! [`ReplyQueue`]: super::order::ReplyQueue

use proto::binary::{self, BinParse};
use proto::meta::KeyBuf;
use proto::{Parse, Request};

use super::Core;
use super::binary::Packets;
use super::client::{Client, Handled, ORIGIN_NONE};
use super::exec::{Outcome, exec};
use super::long_get;
use super::mesh::{self, Kind, Origin};
use super::net::conn::{MAX_AWAITED, Pause, Wire};
use super::prefetch::ITEMS_AHEAD;
use super::replicate::{self, HeldFor};
use super::route::{self, Target};
use super::stats::latency::{self, Timed};
use crate::config::Protocol;
use crate::logger::line::CloseReason;

/// What the parse loop does after one request: go on past its bytes, or stop
/// (after them) until more arrive or the connection can go on.
pub(super) enum Step {
    Next(usize),
    Stop(usize),
}

impl Core {
    /// Bytes arrived on connection `slot`.
    ///
    /// They are parsed where the kernel put them. Only a request split across
    /// two receives is assembled in the connection's read buffer, and only
    /// with the bytes it still needs (the rest of its line, or of its data
    /// block): copying every following byte there too would double the
    /// memory traffic of pipelined clients.
    pub(super) fn on_data(&mut self, slot: u32, data: &[u8]) {
        let Some(mut conn) = self.net.conns.slot_mut(slot) else {
            return;
        };
        if conn.closing {
            return;
        }
        if conn.pause != Pause::No {
            // Not parsing now: keep what already arrived (the receive is
            // being cancelled, so this is bounded).
            conn.rbuf.extend_from_slice(data);
            return;
        }
        // Invariant here: `rbuf` is empty or holds one unfinished request, a
        // data block short of `need` bytes or a line without its newline.
        let mut rest = data;
        while !conn.rbuf.is_empty() {
            let (take, line_end) = if conn.need > conn.rbuf.len() {
                ((conn.need - conn.rbuf.len()).min(rest.len()), false)
            } else {
                match memchr::memchr(b'\n', rest) {
                    Some(i) => (i + 1, true),
                    None => (rest.len(), false),
                }
            };
            conn.rbuf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if conn.rbuf.len() < conn.need {
                return; // all of `rest` went into the data block
            }
            self.resume_input(slot);
            let Some(c) = self.net.conns.slot_mut(slot) else {
                return;
            };
            if c.closing || rest.is_empty() {
                return;
            }
            let stuck = line_end && !c.rbuf.is_empty() && c.need <= c.rbuf.len();
            if c.pause != Pause::No || stuck {
                // Paused again, or a line ended and still did not parse:
                // buffer the rest and let the general path sort it out.
                c.rbuf.extend_from_slice(rest);
                if stuck {
                    self.resume_input(slot);
                }
                return;
            }
            conn = c;
        }
        if rest.is_empty() {
            return;
        }
        let consumed = self.process(slot, rest);
        if let Some(conn) = self.net.conns.slot_mut(slot)
            && consumed < rest.len()
            && !conn.closing
        {
            conn.rbuf.extend_from_slice(&rest[consumed..]);
        }
    }

    /// Ciphertext arrived on TLS connection `slot`, whose record layer the
    /// caller took out of it: what it decrypts goes to [`Core::on_data`].
    pub(super) fn on_tls_data(
        &mut self,
        slot: u32,
        mut tls: Box<crate::tls::TlsConn>,
        data: &mut [u8],
    ) {
        let got = tls.receive(data, &mut |plain| self.on_data(slot, plain));
        let Some(conn) = self.net.conns.slot_mut(slot) else {
            return;
        };
        conn.tls = Some(tls);
        match got {
            crate::tls::Received::Open => {}
            crate::tls::Received::PeerClosed => {
                conn.eof = true;
                if conn.pause != Pause::Yield {
                    conn.closing = true;
                }
            }
            crate::tls::Received::Failed { handshake } => {
                if handshake {
                    self.stats.ssl_handshake_errors += 1;
                }
                conn.eof = true;
                conn.closing = true;
            }
        }
    }

    /// Parses what is buffered on connection `slot` (after a pause, or when
    /// more of a request arrived).
    pub(super) fn resume_input(&mut self, slot: u32) {
        let Some(conn) = self.net.conns.slot_mut(slot) else {
            return;
        };
        let mut buf = std::mem::take(&mut conn.rbuf);
        let off = std::mem::take(&mut conn.rbuf_off);
        let consumed = off + self.process(slot, &buf[off..]);
        if let Some(conn) = self.net.conns.slot_mut(slot)
            && !conn.closing
        {
            // Paused again with most of the input left: keep the offset (the
            // rest is moved down only once as much has been parsed, so each
            // byte moves at most once per doubling).
            if conn.pause != Pause::No && consumed * 2 < buf.len() {
                conn.rbuf_off = consumed;
            } else {
                buf.drain(..consumed);
            }
            if buf.capacity() > 4 << 20 && buf.len() < 1 << 16 {
                buf.shrink_to(1 << 16);
            }
            conn.rbuf = buf;
        }
    }

    /// Connections paused on a full channel: try them again.
    pub(super) fn retry_stalled(&mut self) {
        for slot in self.net.take_stalled() {
            self.resume_input(slot);
            self.net.mark_dirty(slot);
        }
    }

    /// Parses and handles requests from `input`; returns the bytes consumed.
    pub(super) fn process(&mut self, slot: u32, input: &[u8]) -> usize {
        let mut ran_keys = 0;
        let max_output = self.shared.config.network.max_pending_output.0 as usize;
        let mut pos = 0;
        loop {
            let Some(conn) = self.net.conns.slot_mut(slot) else {
                return pos;
            };
            if conn.swallow > 0 {
                let n = conn.swallow.min(input.len() - pos);
                conn.swallow -= n;
                pos += n;
                if conn.swallow > 0 {
                    return pos;
                }
            }
            let rest = &input[pos..];
            if rest.is_empty() || conn.closing || conn.pause != Pause::No || rest.len() < conn.need
            {
                return pos;
            }
            // Replies awaited from other shards are output too, of a size
            // not known yet: bound how many are outstanding.
            if conn.pending_output() > max_output || conn.replies.awaiting() > MAX_AWAITED {
                self.net.pause(slot, Pause::Output);
                return pos;
            }
            if conn.served >= self.reqs_per_event {
                // -R: this connection has had its turn; the rest of its input
                // waits for the next one, so that others progress.
                self.stats.conn_yields += 1;
                self.net.pause(slot, Pause::Yield);
                return pos;
            }
            if conn.wire == Wire::Undecided {
                conn.authenticated = !self.shared.auth_required();
                conn.wire = match self.shared.config.wire_protocol() {
                    Protocol::Auto if rest[0] == binary::REQUEST_MAGIC => Wire::Binary,
                    Protocol::Auto | Protocol::Ascii => Wire::Text,
                    Protocol::Binary => Wire::Binary,
                };
                if conn.wire == Wire::Binary && self.shared.cluster.is_some() {
                    // The memcached request path knows nodes; the binary
                    // one does not (shard/binary/session.rs).
                    conn.binary = Some(Box::default());
                }
            }
            let client = Client::Conn {
                slot,
                generation: conn.generation,
            };
            let step = match conn.wire {
                Wire::Binary => self.step_binary(slot, client, rest),
                Wire::Http => self.step_http(slot, client, rest),
                Wire::Text | Wire::Undecided => self.step_text(slot, client, rest, &mut ran_keys),
            };
            match step {
                Step::Next(n) => {
                    pos += n;
                    // A request (or a piece of a long get line) ran: it counts
                    // towards -R, and the connection is not idle.
                    if let Some(conn) = self.net.conns.slot_mut(slot) {
                        conn.served += 1;
                        conn.last_cmd = self.life.now;
                    }
                }
                Step::Stop(n) => return pos + n,
            }
        }
    }

    /// Parses and handles one text request at the start of `rest`.
    fn step_text(&mut self, slot: u32, client: Client, rest: &[u8], ran_keys: &mut usize) -> Step {
        let (authenticated, in_tail) = self
            .net
            .conns
            .slot(slot)
            .map_or((true, false), |c| (c.authenticated, c.get_tail.is_some()));
        if !authenticated {
            return self.step_ascii_auth(slot, rest);
        }
        // A long get line is read in pieces (long_get.rs). Only a line that
        // did not parse whole, or a get line longer than a piece's keys
        // could fill, may start one: an ordinary request is framed once.
        if in_tail && let Some(step) = self.long_get(slot, client, rest) {
            return step;
        }
        let parsed = proto::parse(rest, &self.limits);
        if long_get::may_start(&parsed)
            && let Some(step) = self.long_get(slot, client, rest)
        {
            return step;
        }
        match parsed {
            // By reference: moving the request out would copy its 152 bytes.
            Parse::Complete {
                ref request,
                consumed,
            } => {
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.need = 0;
                }
                let first_key = *ran_keys;
                *ran_keys += request.key_count();
                self.prefetch
                    .items_until(&self.store, *ran_keys + ITEMS_AHEAD);
                let handled = self.handle(client, request, &rest[..consumed], first_key);
                self.after(slot, handled, consumed)
            }
            Parse::Incomplete { more } => {
                // Known: the rest of a data block. Unknown (0): the line
                // itself is unfinished; parse again when a newline comes.
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.need = more.map_or(0, |m| rest.len() + m);
                }
                Step::Stop(0)
            }
            Parse::Invalid(invalid) => {
                self.stats.protocol_errors += 1;
                let Some(conn) = self.net.conns.slot_mut(slot) else {
                    return Step::Stop(0);
                };
                if invalid.reply {
                    invalid.error.encode(conn.replies.sink());
                }
                conn.swallow = invalid.swallow;
                conn.need = 0;
                if invalid.close {
                    conn.closing = true;
                }
                if let Some(key) = invalid.unlink {
                    let mut buf: KeyBuf = [0; _];
                    self.unlink_refused(key.decode(&mut buf));
                }
                Step::Next(invalid.consumed)
            }
        }
    }

    /// Parses and handles one binary request at the start of `rest`.
    fn step_binary(&mut self, slot: u32, client: Client, rest: &[u8]) -> Step {
        match binary::parse(rest, &self.limits) {
            BinParse::Complete { request, consumed } => {
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.need = 0;
                }
                let cluster = self.shared.cluster.is_some();
                if !self.binary_allowed(slot, &request) {
                    if cluster {
                        self.binary_session(client, |s| s.push_packets(Packets::Exactly(1)));
                    }
                    return Step::Stop(consumed);
                }
                if cluster {
                    return self.step_binary_session(slot, client, &request, consumed);
                }
                let handled = self.handle_binary(client, &request, &rest[..consumed]);
                self.after(slot, handled, consumed)
            }
            BinParse::Incomplete { more } => {
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.need = rest.len() + more.unwrap_or(1);
                }
                Step::Stop(0)
            }
            BinParse::Invalid(invalid) => {
                self.stats.protocol_errors += 1;
                let Some(conn) = self.net.conns.slot_mut(slot) else {
                    return Step::Stop(0);
                };
                match invalid.reply {
                    Some(reply) => {
                        reply.encode(conn.replies.sink());
                        if let Some(s) = conn.binary.as_deref_mut() {
                            s.push_packets(Packets::Exactly(1));
                        }
                    }
                    // A bad magic byte: memcached hangs up without a word.
                    None => conn.closing = true,
                }
                conn.swallow = invalid.swallow;
                conn.need = 0;
                if invalid.close {
                    conn.closing = true;
                }
                if let Some(key) = invalid.unlink {
                    self.unlink_refused(key);
                }
                Step::Next(invalid.consumed)
            }
        }
    }

    /// What the parse loop does after a complete request of `consumed` bytes.
    pub(super) fn after(&mut self, slot: u32, handled: Handled, consumed: usize) -> Step {
        match handled {
            Handled::Done => Step::Next(consumed),
            Handled::Stall => {
                self.net.pause(slot, Pause::Mesh);
                Step::Stop(0)
            }
            Handled::Close => {
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.closing = true;
                    conn.close_reason.get_or_insert(CloseReason::Normal);
                }
                Step::Stop(consumed)
            }
        }
    }

    /// The requests of one UDP datagram (`body`), answered in one reply.
    pub(super) fn on_datagram(&mut self, slot: u32, generation: u32, body: &[u8]) {
        self.stats.udp_requests += 1;
        let client = Client::Udp { slot, generation };
        if body.first() == Some(&binary::REQUEST_MAGIC)
            && self.shared.config.wire_protocol() != Protocol::Ascii
        {
            self.on_binary_datagram(client, body);
        } else {
            self.on_text_datagram(client, body);
        }
        if let Some(udp) = self.net.udp.as_mut() {
            udp.parsed(slot, generation);
        }
    }

    /// Whether a UDP request's reply is already over `network.udp_max_reply`:
    /// it will be dropped, so the rest of its datagram is not run.
    fn udp_over_limit(&self, client: Client) -> bool {
        match (client, self.net.udp.as_ref()) {
            (Client::Udp { slot, generation }, Some(udp)) => udp.over_limit(slot, generation),
            _ => false,
        }
    }

    fn on_text_datagram(&mut self, client: Client, body: &[u8]) {
        let mut pos = 0;
        while pos < body.len() {
            match proto::parse(&body[pos..], &self.limits) {
                Parse::Complete {
                    ref request,
                    consumed,
                } => {
                    let raw = &body[pos..pos + consumed];
                    match self.handle(client, request, raw, usize::MAX) {
                        Handled::Done if self.udp_over_limit(client) => break,
                        Handled::Done => pos += consumed,
                        // A full channel: drop the rest, as a busy memcached drops datagrams.
                        Handled::Stall | Handled::Close => break,
                    }
                }
                // A request cut short: nothing more can come for it.
                Parse::Incomplete { .. } => break,
                Parse::Invalid(invalid) => {
                    if invalid.reply
                        && let Some(q) = self.net.queue(client)
                    {
                        invalid.error.encode(q.sink());
                    }
                    if invalid.close || invalid.swallow > 0 {
                        break;
                    }
                    pos += invalid.consumed;
                }
            }
        }
    }

    fn on_binary_datagram(&mut self, client: Client, body: &[u8]) {
        // In a cluster the datagram's requests take the memcached request
        // path as meta requests, as a binary connection's do, and its reply
        // is answered as binary packets when complete (shard/binary/session.rs).
        let cluster = self.shared.cluster.is_some();
        if cluster
            && let (Client::Udp { slot, generation }, Some(udp)) = (client, self.net.udp.as_mut())
        {
            udp.start_session(slot, generation);
        }
        let mut pos = 0;
        while pos < body.len() {
            match binary::parse(&body[pos..], &self.limits) {
                BinParse::Complete { request, consumed } => {
                    let raw = &body[pos..pos + consumed];
                    let handled = if cluster {
                        self.run_in_session(client, &request)
                    } else {
                        self.handle_binary(client, &request, raw)
                    };
                    match handled {
                        Handled::Done if self.udp_over_limit(client) => break,
                        Handled::Done => pos += consumed,
                        Handled::Stall | Handled::Close => break,
                    }
                }
                BinParse::Incomplete { .. } => break,
                BinParse::Invalid(invalid) => {
                    if let Some(reply) = invalid.reply
                        && let Some(q) = self.net.queue(client)
                    {
                        reply.encode(q.sink());
                        self.binary_session(client, |s| s.push_packets(Packets::Exactly(1)));
                    }
                    if invalid.close || invalid.swallow > 0 {
                        break;
                    }
                    pos += invalid.consumed;
                }
            }
        }
    }

    /// Routes one complete request and runs or forwards it; `raw` is its bytes
    /// on the wire, `first_key` the index of its first key among the keys of
    /// the receive being handled (for the hash the prefetch scan computed).
    /// Timed when the latency histograms sample it.
    pub(super) fn handle(
        &mut self,
        client: Client,
        request: &Request<'_>,
        raw: &[u8],
        first_key: usize,
    ) -> Handled {
        // The connection's descriptor for log lines: looked up only while
        // someone watches the events that carry it.
        self.log_cfd = if self
            .log
            .wants(crate::logger::EV_FETCHERS | crate::logger::EV_MUTATIONS)
        {
            self.net.client_fd(client)
        } else {
            -1
        };
        let Some(timed) = self.sample_latency(|| latency::family(request)) else {
            return self.route_request(client, request, raw, first_key);
        };
        let before = self.net.queue(client).map(|q| q.next_part());
        let handled = self.route_request(client, request, raw, first_key);
        self.finish_timing(client, before, handled, timed);
        handled
    }

    /// Whether the latency histograms time this request: its start when so.
    #[inline]
    pub(super) fn sample_latency(&mut self, family: impl FnOnce() -> usize) -> Option<Timed> {
        let l = self.stats.latency.as_deref_mut()?;
        l.sample().then(|| Timed::start(family()))
    }

    /// A timed request has been routed: it is done now if its whole reply
    /// is in the queue, else when the last part it awaits (numbered from
    /// `before` on) is placed, in order.
    pub(super) fn finish_timing(
        &mut self,
        client: Client,
        before: Option<u32>,
        handled: Handled,
        timed: Timed,
    ) {
        let Some(l) = self.stats.latency.as_deref_mut() else {
            return;
        };
        if handled == Handled::Stall {
            // Nothing ran; it is parsed again later.
            l.resample();
            return;
        }
        let Some(queue) = self.net.queue(client) else {
            return;
        };
        let last = queue.next_part().wrapping_sub(1);
        let awaits = before.is_some_and(|b| b != queue.next_part()) && queue.time_part(last, timed);
        if !awaits {
            l.finish(timed);
        }
    }

    /// [`Core::handle`] without the clock.
    fn route_request(
        &mut self,
        client: Client,
        request: &Request<'_>,
        raw: &[u8],
        first_key: usize,
    ) -> Handled {
        if let Request::Get(get) = request
            && get.keys.len() != 1
        {
            return self.route_multi_get(client, get, first_key, true);
        }
        let Some(key) = request.key() else {
            return self.handle_keyless(client, request);
        };
        // Filled only for a base64 key: zeroing its 190 bytes for every
        // request was a visible share of a plain get's cost.
        let mut keybuf: KeyBuf;
        let (name, hash) = if key.is_base64() {
            keybuf = [0; _];
            let decoded = key.decode(&mut keybuf);
            (decoded, route::key_hash(decoded))
        } else {
            (key.raw(), self.prefetch.hash_of(first_key, key.raw()))
        };
        let target = if self.shared.cluster.is_none() {
            // Outside a cluster a key is placed by its shard alone.
            route::target(hash, self.id, self.mesh.shards())
        } else {
            let may_forward = self.may_forward(client, raw)
                && !(replicate::reads_only(request) && self.read_here(name));
            if replicate::reads_only(request) {
                self.place_read(name, hash, may_forward)
            } else {
                self.place_key(name, hash, may_forward)
            }
        };
        match target {
            Target::Local => self.execute_local(client, request, hash, raw),
            Target::Shard(owner) => {
                if !self.mesh.can_send(owner) {
                    return Handled::Stall;
                }
                self.forward(client, owner, Kind::Exec, &hash.to_le_bytes(), raw);
                Handled::Done
            }
            Target::Node(node) => self.forward_to_node(client, node, request, raw),
        }
    }

    /// Runs `request` on this shard's store, replying into the client's queue.
    fn execute_local(
        &mut self,
        client: Client,
        request: &Request<'_>,
        hash: u64,
        raw: &[u8],
    ) -> Handled {
        // A node outside a cluster never holds a reply (no replica to
        // await, nothing read through), so it is written straight into the
        // queue; else into scratch space first.
        let direct = self.shared.cluster.is_none();
        let mut out = match self.net.queue(client) {
            None => return Handled::Done,
            Some(queue) if direct => std::mem::take(queue.sink()),
            Some(_) => {
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                out
            }
        };
        let (outcome, held) = self.run_replicated(request, hash, raw, &mut out);
        debug_assert!(!direct || held.is_none());
        if let Some(queue) = self.net.queue(client) {
            match held {
                Some(id) => {
                    let part = queue.await_remote();
                    self.hold_for(id, HeldFor::Client { client, part });
                }
                None if direct => *queue.sink() = std::mem::take(&mut out),
                None => queue.sink().extend_from_slice(&out),
            }
        }
        if !direct {
            self.scratch = out;
        }
        match outcome {
            Outcome::Done => Handled::Done,
            Outcome::Close => Handled::Close,
        }
    }

    /// Sends `payload` (after its keys' `hashes`, see [`Kind`]) to `owner` as
    /// a record whose reply takes a place in the client's queue.
    pub(super) fn forward(
        &mut self,
        client: Client,
        owner: usize,
        kind: Kind,
        hashes: &[u8],
        payload: &[u8],
    ) {
        let Some(queue) = self.net.queue(client) else {
            return;
        };
        let part = queue.await_remote();
        self.mesh
            .push(owner, kind, client.origin(part), &[hashes, payload]);
        self.stats.forwarded += 1;
    }

    /// `get k1 k2 ...` over keys of several shards: each run of keys with the
    /// same owner is answered by that owner, in order; END closes it here
    /// when `end` (not for a piece of a long get line, see `long_get`).
    pub(super) fn route_multi_get(
        &mut self,
        client: Client,
        get: &proto::cmd::get::Get<'_>,
        first_key: usize,
        end: bool,
    ) -> Handled {
        let shards = self.mesh.shards();
        if shards == 1 && self.shared.cluster.is_none() {
            let Some(queue) = self.net.queue(client) else {
                return Handled::Done;
            };
            let mut exec = exec!(self);
            let prefetch = &self.prefetch;
            let keys = get
                .keys
                .clone()
                .enumerate()
                .map(|(i, k)| (k, prefetch.hash_of(first_key.saturating_add(i), k)));
            exec.values(get.kind, get.exptime, keys, queue.sink());
            if end {
                proto::cmd::get::encode_end(queue.sink());
            }
            return Handled::Done;
        }
        let owners: Vec<(&[u8], u64, Target)> = get
            .keys
            .clone()
            .enumerate()
            .map(|(i, k)| {
                let hash = self.prefetch.hash_of(first_key.saturating_add(i), k);
                let here = !get.kind.touches() && self.read_here(k);
                let target = if here {
                    self.place_key(k, hash, false)
                } else if get.kind.touches() {
                    self.place(client, k, hash)
                } else {
                    self.place_read_from(client, k, hash)
                };
                (k, hash, target)
            })
            .collect();
        // Check room towards every owner first: a request is either routed
        // whole or not at all.
        for (_, _, target) in &owners {
            let room = match *target {
                Target::Local => true,
                Target::Shard(owner) => self.mesh.can_send(owner),
                Target::Node(node) => self.link_has_room(node),
            };
            if !room {
                return Handled::Stall;
            }
        }
        let (mut line, mut hashes) = (Vec::new(), Vec::new());
        for run in owners.chunk_by(|a, b| a.2 == b.2) {
            match run[0].2 {
                Target::Local => {
                    let keys = run.iter().map(|&(k, h, _)| (k, h));
                    let fill = self.fill_values(get.kind, get.exptime, keys.clone());
                    let Some(queue) = self.net.queue(client) else {
                        return Handled::Done;
                    };
                    match fill {
                        Some(id) => {
                            let part = queue.await_remote();
                            self.hold_for(id, HeldFor::Client { client, part });
                        }
                        None => {
                            let mut exec = exec!(self);
                            exec.values(get.kind, get.exptime, keys, queue.sink());
                        }
                    }
                }
                Target::Shard(owner) => {
                    line.clear();
                    hashes.clear();
                    mesh::values_lead(run.iter().map(|&(_, h, _)| h), &mut hashes);
                    let keys = run.iter().map(|&(k, _, _)| k);
                    proto::cmd::get::encode_request(&mut line, get.kind, get.exptime, keys);
                    self.forward(client, owner, Kind::Values, &hashes, &line);
                }
                Target::Node(node) => {
                    line.clear();
                    let keys = run.iter().map(|&(k, _, _)| k);
                    proto::cmd::get::encode_request(&mut line, get.kind, get.exptime, keys);
                    self.forward_values_to_node(client, node, &line, !get.kind.touches());
                }
            }
        }
        if end && let Some(queue) = self.net.queue(client) {
            proto::cmd::get::encode_end(queue.sink());
        }
        Handled::Done
    }

    /// A refused store drops the old item, as memcached does, so that stale
    /// data does not outlive a write the client believes failed. `key` is
    /// the key itself (decoded from base64 if it was sent so).
    pub(super) fn unlink_refused(&mut self, key: &[u8]) {
        let hash = route::key_hash(key);
        let owner = match self.place_key(key, hash, true) {
            Target::Local => {
                self.store.delete(store::HashedKey::with_hash(key, hash));
                return;
            }
            Target::Shard(owner) => owner,
            Target::Node(node) => {
                // Peer links speak text: the key goes in base64, which
                // carries any bytes.
                let mut line = Vec::with_capacity(key.len() * 4 / 3 + 12);
                line.extend_from_slice(b"md ");
                proto::base64::encode(key, &mut line);
                line.extend_from_slice(b" b q\r\n");
                self.effect_on_node(node, &line, None);
                return;
            }
        };
        // A binary `deleteq`, run for its effect only: the client has had
        // its one reply, so no place is kept for this one and whatever comes
        // back is dropped. Binary, because it carries any key bytes as they are.
        let mut request = Vec::with_capacity(binary::HEADER_LEN + key.len());
        binary::BinRequest::new(binary::BinOp::Delete { key }, true, 0, 0).encode(&mut request);
        let origin = Origin {
            kind: ORIGIN_NONE,
            slot: 0,
            generation: 0,
            part: 0,
        };
        self.mesh
            .push(owner, Kind::Exec, origin, &[&hash.to_le_bytes(), &request]);
        self.stats.forwarded += 1;
    }

    /// Places reply `part` in `client`'s queue.
    pub(super) fn deliver_to(&mut self, client: Client, part: u32, bytes: &[u8]) {
        let latency = self.stats.latency.as_deref_mut();
        match client {
            Client::Conn { slot, generation } => {
                if let Some(conn) = self.net.conns.get_mut(slot, generation) {
                    conn.replies.resolve(part, bytes, latency);
                    self.net.mark_dirty(slot);
                }
            }
            Client::Udp { slot, generation } => {
                if let Some(udp) = self.net.udp.as_mut() {
                    udp.resolve(slot, generation, part, bytes, latency);
                }
            }
        }
    }
}
