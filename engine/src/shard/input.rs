//! From received bytes to requests routed to the shard that owns their keys.
//!
//! Requests are parsed as far as the buffered bytes allow, straight from the
//! kernel's receive buffer when nothing is left over from before. A request
//! for a key this shard owns runs on the store inline; one for another
//! shard's key is forwarded as its raw bytes (the owner parses it again) and
//! its reply takes its place in the connection's [`ReplyQueue`]. A multi-key
//! get is split into runs of keys by owner and put back together in order.
//!
//! [`ReplyQueue`]: super::order::ReplyQueue

use proto::meta::KeyBuf;
use proto::{Parse, Request};

use super::conn::Pause;
use super::exec::{Exec, Outcome};
use super::mesh::{Kind, Origin};
use super::order::ReplyQueue;
use super::route::{self, shard_of};
use super::{Core, udp};

/// Who a request came from: a TCP connection or a UDP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Client {
    Conn { slot: u32, generation: u32 },
    Udp { slot: u32, generation: u32 },
}

/// The key hashes of the requests in one receive, in request order (0 for a
/// key another shard owns). The first touch of the index slot and of the
/// item was most of the store's time, at depth 1 and at depth 16; these
/// hashes let both be prefetched ahead of use so that the latencies overlap
/// instead of adding up: index slots one receive ahead (`Shard::run_loop`),
/// items a few requests ahead (`Core::process`). Items are not all
/// prefetched at once: a receive's worth of item lines at once is more
/// misses than the core can have in flight, and the prefetches stall.
pub(super) struct Prefetch {
    hashes: [u64; PREFETCH_MAX],
    len: usize,
}

/// Items prefetched ahead of the request running.
const ITEMS_AHEAD: usize = 4;

/// Keys prefetched per receive; a receive holds at most a few dozen requests.
const PREFETCH_MAX: usize = 64;

impl Prefetch {
    pub(super) fn new() -> Prefetch {
        Prefetch {
            hashes: [0; PREFETCH_MAX],
            len: 0,
        }
    }

    fn push(&mut self, h: u64) {
        if self.len < PREFETCH_MAX {
            self.hashes[self.len] = h;
            self.len += 1;
        }
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }
}

pub(super) const ORIGIN_CONN: u8 = 0;
pub(super) const ORIGIN_UDP: u8 = 1;
pub(super) const ORIGIN_GATHER: u8 = 2;
/// Nobody awaits the reply: it is dropped on arrival.
pub(super) const ORIGIN_NONE: u8 = 3;

impl Client {
    pub(super) fn origin(self, part: u32) -> Origin {
        match self {
            Client::Conn { slot, generation } => Origin {
                kind: ORIGIN_CONN,
                slot,
                generation,
                part,
            },
            Client::Udp { slot, generation } => Origin {
                kind: ORIGIN_UDP,
                slot,
                generation,
                part,
            },
        }
    }
}

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handled {
    Done,
    /// A channel to its owner is full: try again later, nothing was done.
    Stall,
    /// The connection is to close once its replies are out (`quit`).
    Close,
}

/// How many keys a request names (what `peek_keys` reports for it).
fn key_count(request: &Request<'_>) -> usize {
    match request {
        Request::Get(g) => g.keys.len(),
        Request::Store(_)
        | Request::Delete(_)
        | Request::Arith(_)
        | Request::Touch(_)
        | Request::MetaGet(_)
        | Request::MetaSet(_)
        | Request::MetaDelete(_)
        | Request::MetaArith(_)
        | Request::MetaDebug(_) => 1,
        _ => 0,
    }
}

/// The reply queue of a client, borrowed from whichever table holds it.
pub(super) fn queue_of<'a>(
    conns: &'a mut super::conn::Conns,
    udp: &'a mut Option<udp::Udp>,
    client: Client,
) -> Option<&'a mut ReplyQueue> {
    match client {
        Client::Conn { slot, generation } => {
            conns.get_mut(slot, generation).map(|c| &mut c.replies)
        }
        Client::Udp { slot, generation } => udp.as_mut()?.queue(slot, generation),
    }
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
        let Some(mut conn) = self.conns.slot_mut(slot) else {
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
            let Some(c) = self.conns.slot_mut(slot) else {
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
        if let Some(conn) = self.conns.slot_mut(slot)
            && consumed < rest.len()
            && !conn.closing
        {
            conn.rbuf.extend_from_slice(&rest[consumed..]);
        }
    }

    /// Parses what is buffered on connection `slot` (after a pause, or when
    /// more of a request arrived).
    pub(super) fn resume_input(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let mut buf = std::mem::take(&mut conn.rbuf);
        let consumed = self.process(slot, &buf);
        buf.drain(..consumed);
        if let Some(conn) = self.conns.slot_mut(slot)
            && !conn.closing
        {
            if buf.capacity() > 4 << 20 && buf.len() < 1 << 16 {
                buf.shrink_to(1 << 16);
            }
            conn.rbuf = buf;
        }
    }

    /// Connections paused on a full channel: try them again.
    pub(super) fn retry_stalled(&mut self) {
        if self.stalled.is_empty() {
            return;
        }
        let stalled = std::mem::take(&mut self.stalled);
        for slot in stalled {
            if let Some(conn) = self.conns.slot_mut(slot)
                && conn.pause == Pause::Mesh
            {
                conn.pause = Pause::No;
                self.resume_input(slot);
                self.mark_dirty(slot);
            }
        }
    }

    /// First half of a receive's prefetch: for every local key of the requests
    /// in `input`, brings its index slot towards the cache and records its
    /// hash. `proto::peek_keys` finds the keys without parsing the requests
    /// (they are parsed once, when they run); a receive that starts inside a
    /// split request yields no keys until its first complete line, and a
    /// wrong guess only wastes a prefetch.
    pub(super) fn prefetch_index(&self, input: &[u8], hashes: &mut Prefetch) {
        let shards = self.mesh.shards();
        let room = PREFETCH_MAX - hashes.len;
        proto::peek_keys(input, room, |key| {
            let h = route::key_hash(key);
            if shards == 1 || route::shard_of_hash(h, shards) == self.id {
                self.store.prefetch_index(h);
                hashes.push(h);
            } else {
                hashes.push(0);
            }
        });
    }

    /// A receive is about to be handled: `keys` are its requests' keys, whose
    /// index slots were prefetched one receive ago. Takes them over (leaving
    /// the caller an empty list) and prefetches the first items.
    pub(super) fn begin_receive(&mut self, keys: &mut Prefetch) {
        std::mem::swap(&mut self.prefetch, keys);
        keys.clear();
        self.prefetched = 0;
        self.prefetch_items_until(ITEMS_AHEAD);
    }

    /// Keeps item prefetches `ITEMS_AHEAD` keys ahead of `ran`, the keys of
    /// the requests handled so far in this receive.
    fn prefetch_items_until(&mut self, until: usize) {
        let until = until.min(self.prefetch.len);
        while self.prefetched < until {
            let h = self.prefetch.hashes[self.prefetched];
            if h != 0 {
                self.store.prefetch_item(h);
            }
            self.prefetched += 1;
        }
    }

    /// Parses and handles requests from `input`; returns the bytes consumed.
    fn process(&mut self, slot: u32, input: &[u8]) -> usize {
        let mut ran_keys = 0;
        let max_output = self.shared.config.network.max_pending_output.0 as usize;
        let mut pos = 0;
        loop {
            let Some(conn) = self.conns.slot_mut(slot) else {
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
            if conn.pending_output() > max_output {
                self.pause(slot, Pause::Output);
                return pos;
            }
            let client = Client::Conn {
                slot,
                generation: conn.generation,
            };
            match proto::parse(rest, &self.limits) {
                Parse::Complete { request, consumed } => {
                    conn.need = 0;
                    ran_keys += key_count(&request);
                    self.prefetch_items_until(ran_keys + ITEMS_AHEAD);
                    match self.handle(client, request, &rest[..consumed]) {
                        Handled::Done => pos += consumed,
                        Handled::Stall => {
                            self.pause(slot, Pause::Mesh);
                            return pos;
                        }
                        Handled::Close => {
                            pos += consumed;
                            if let Some(conn) = self.conns.slot_mut(slot) {
                                conn.closing = true;
                            }
                            return pos;
                        }
                    }
                }
                Parse::Incomplete { more } => {
                    // Known: the rest of a data block. Unknown (0): the line
                    // itself is unfinished; parse again when a newline comes.
                    conn.need = more.map_or(0, |m| rest.len() + m);
                    return pos;
                }
                Parse::Invalid(invalid) => {
                    self.stats.protocol_errors += 1;
                    if invalid.reply {
                        invalid.error.encode(conn.replies.sink());
                    }
                    conn.swallow = invalid.swallow;
                    conn.need = 0;
                    if invalid.close {
                        conn.closing = true;
                    }
                    if let Some(key) = invalid.unlink {
                        self.unlink_refused(key);
                    }
                    pos += invalid.consumed;
                }
            }
        }
    }

    /// A refused store drops the old item, as memcached does, so that stale
    /// data does not outlive a write the client believes failed.
    fn unlink_refused(&mut self, key: proto::Key<'_>) {
        let mut buf: KeyBuf = [0; _];
        let decoded = key.decode(&mut buf);
        let hash = route::key_hash(decoded);
        let owner = route::shard_of_hash(hash, self.mesh.shards());
        if owner == self.id {
            self.store
                .delete(store::HashedKey::with_hash(decoded, hash));
            return;
        }
        // `md <key as sent> [b] q`, run for its effect only: the client has
        // had its one reply (`q` does not hide `NF`), so no place is kept
        // for this one and it is dropped when it comes back.
        let mut line = Vec::with_capacity(key.raw().len() + 8);
        line.extend_from_slice(b"md ");
        line.extend_from_slice(key.raw());
        if key.is_base64() {
            line.extend_from_slice(b" b");
        }
        line.extend_from_slice(b" q\r\n");
        let origin = Origin {
            kind: ORIGIN_NONE,
            slot: 0,
            generation: 0,
            part: 0,
        };
        self.mesh.push(owner, Kind::Exec, origin, &[&line]);
        self.stats.forwarded += 1;
    }

    /// Runs or forwards one complete request; `raw` is its bytes on the wire.
    pub(super) fn handle(&mut self, client: Client, request: Request<'_>, raw: &[u8]) -> Handled {
        let mut keybuf: KeyBuf = [0; _];
        let key: &[u8] = match &request {
            Request::Get(get) => {
                if get.keys.len() != 1 {
                    return self.route_multi_get(client, get);
                }
                get.keys.clone().next().unwrap_or_default()
            }
            Request::Store(s) => s.key,
            Request::Delete(d) => d.key,
            Request::Arith(a) => a.key,
            Request::Touch(t) => t.key,
            Request::MetaGet(m) => m.key.decode(&mut keybuf),
            Request::MetaSet(m) => m.key.decode(&mut keybuf),
            Request::MetaDelete(m) => m.key.decode(&mut keybuf),
            Request::MetaArith(m) => m.key.decode(&mut keybuf),
            Request::MetaDebug(m) => m.key.decode(&mut keybuf),
            _ => return self.handle_keyless(client, request),
        };
        let shards = self.mesh.shards();
        let owner = if shards == 1 {
            self.id
        } else {
            shard_of(key, shards)
        };
        if owner != self.id {
            if !self.mesh.can_send(owner) {
                return Handled::Stall;
            }
            self.forward(client, owner, Kind::Exec, raw);
            return Handled::Done;
        }
        self.execute_local(client, &request)
    }

    /// Runs `request` on this shard's store, replying into the client's queue.
    fn execute_local(&mut self, client: Client, request: &Request<'_>) -> Handled {
        let Some(queue) = queue_of(&mut self.conns, &mut self.udp, client) else {
            return Handled::Done;
        };
        let mut exec = Exec {
            store: &mut self.store,
            stats: &mut self.stats,
        };
        match exec.run(request, queue.sink()) {
            Outcome::Done => Handled::Done,
            Outcome::Close => Handled::Close,
        }
    }

    /// Sends `payload` to `owner` as a record whose reply takes a place in the
    /// client's queue.
    pub(super) fn forward(&mut self, client: Client, owner: usize, kind: Kind, payload: &[u8]) {
        let Some(queue) = queue_of(&mut self.conns, &mut self.udp, client) else {
            return;
        };
        let part = queue.await_remote();
        self.mesh.push(owner, kind, client.origin(part), &[payload]);
        self.stats.forwarded += 1;
    }

    /// `get k1 k2 ...` over keys of several shards: each run of keys with the
    /// same owner is answered by that owner, in order; END closes it here.
    fn route_multi_get(&mut self, client: Client, get: &proto::cmd::get::Get<'_>) -> Handled {
        let shards = self.mesh.shards();
        if shards == 1 || get.keys.clone().all(|k| shard_of(k, shards) == self.id) {
            return self.execute_local(client, &Request::Get(get.clone()));
        }
        // Check room towards every owner first: a request is either routed
        // whole or not at all.
        for k in get.keys.clone() {
            let owner = shard_of(k, shards);
            if owner != self.id && !self.mesh.can_send(owner) {
                return Handled::Stall;
            }
        }
        let mut keys = get.keys.clone().peekable();
        let mut line = Vec::new();
        while let Some(first) = keys.next() {
            let owner = shard_of(first, shards);
            let mut run = vec![first];
            while let Some(k) = keys.next_if(|k| shard_of(k, shards) == owner) {
                run.push(k);
            }
            if owner == self.id {
                let Some(queue) = queue_of(&mut self.conns, &mut self.udp, client) else {
                    return Handled::Done;
                };
                let mut exec = Exec {
                    store: &mut self.store,
                    stats: &mut self.stats,
                };
                exec.values(get.kind, get.exptime, run.iter().copied(), queue.sink());
            } else {
                line.clear();
                proto::cmd::get::encode_request(
                    &mut line,
                    get.kind,
                    get.exptime,
                    run.iter().copied(),
                );
                self.forward(client, owner, Kind::Values, &line);
            }
        }
        if let Some(queue) = queue_of(&mut self.conns, &mut self.udp, client) {
            proto::cmd::get::encode_end(queue.sink());
        }
        Handled::Done
    }
}
