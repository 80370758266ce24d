//! Cross-shard messaging: one bounded single-producer/single-consumer channel
//! per ordered pair of shards, wired at start-up, carrying batches of records.
//!
//! A shard appends every record for a peer produced during one loop turn to
//! one batch, and at the end of the turn moves the batch into the channel and
//! wakes the peer's ring (at most one wake-up in flight, see
//! [`WakeTarget`]). A batch buffer travels to the peer and is reused there for
//! traffic in the other direction, so steady state allocates nothing.
//!
//! A full channel is backpressure: the batch keeps growing locally until
//! [`Mesh::can_send`] says no, and connections that need that peer stop being
//! parsed until the batch drains. Nothing panics, nothing grows without bound.
//!
//! ```text
//! record = | kind u8 | origin u8 | 0 u16 | slot u32 | generation u32 | part u32 | len u32 | payload (len bytes) |
//! ```
//! Channels are FIFO, so requests one connection sends to one peer are
//! executed in the order they were sent (a `set ... noreply` followed by a
//! `get` reads its own write).

use runtime::{Ring, Token, WakeTarget};

/// What a record asks for or carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Parse and execute the payload (one complete request, after the 8-byte
    /// little-endian hash of its key, computed once by the sender); reply
    /// with its bytes.
    Exec = 1,
    /// The payload is a get-family request line for keys this peer owns,
    /// after a u32 key count and the 8-byte hash of each of its keys; reply
    /// with the VALUE blocks only (no END).
    Values = 2,
    /// Reply with this shard's counters.
    Stats = 3,
    /// flush_all with the payload's delay; no reply.
    Flush = 4,
    /// `stats reset`; no reply.
    StatsReset = 5,
    /// `debugtime` moved the shared debug clock: read it now; an empty reply
    /// part when a client waits.
    Clock = 6,
    /// Reply bytes for an `Exec` or `Values` record.
    Reply = 16,
    /// Reply to `Stats`: the counters, serialised.
    StatsReply = 17,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Exec,
            2 => Kind::Values,
            3 => Kind::Stats,
            4 => Kind::Flush,
            5 => Kind::StatsReset,
            6 => Kind::Clock,
            16 => Kind::Reply,
            17 => Kind::StatsReply,
            _ => return None,
        })
    }
}

/// The key hashes that lead an `Exec` or `Values` payload (see [`Kind`]), and
/// the request after them.
pub fn split_hashes(kind: Kind, payload: &[u8]) -> (&[u8], &[u8]) {
    let (skip, len) = match kind {
        Kind::Exec => (0, 8),
        Kind::Values => match payload.get(..4) {
            Some(n) => (
                4,
                u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize * 8,
            ),
            None => (0, 0),
        },
        _ => (0, 0),
    };
    let end = (skip + len).min(payload.len());
    (&payload[skip.min(end)..end], &payload[end..])
}

/// The lead of a `Values` payload for `hashes`.
pub fn values_lead(hashes: impl ExactSizeIterator<Item = u64>, out: &mut Vec<u8>) {
    out.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
    for h in hashes {
        out.extend_from_slice(&h.to_le_bytes());
    }
}

/// Who on the sending shard awaits the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// 0 = a TCP connection, 1 = a UDP request; the shard's own meaning.
    pub kind: u8,
    pub slot: u32,
    pub generation: u32,
    pub part: u32,
}

/// A record read out of a batch.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub kind: Kind,
    pub origin: Origin,
    pub payload: &'a [u8],
}

const HEADER: usize = 20;

/// The records of a batch, in order.
pub fn records(batch: &[u8]) -> Records<'_> {
    Records { rest: batch }
}

pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.rest.len() < HEADER {
            return None;
        }
        let h = &self.rest[..HEADER];
        let word = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let len = word(16) as usize;
        // Batches are written only by `Mesh::push`; a malformed one is a bug,
        // but stopping beats reading past the end.
        let (kind, payload) = match (Kind::from_u8(h[0]), self.rest.get(HEADER..HEADER + len)) {
            (Some(kind), Some(payload)) => (kind, payload),
            _ => {
                debug_assert!(false, "malformed cross-shard batch");
                self.rest = &[];
                return None;
            }
        };
        let origin = Origin {
            kind: h[1],
            slot: word(4),
            generation: word(8),
            part: word(12),
        };
        self.rest = &self.rest[HEADER + len..];
        Some(Record {
            kind,
            origin,
            payload,
        })
    }
}

struct Link {
    tx: rtrb::Producer<Vec<u8>>,
    rx: rtrb::Consumer<Vec<u8>>,
    /// The batch being built for this peer.
    outgoing: Vec<u8>,
    /// Emptied batch buffers, reused for `outgoing`.
    spare: Vec<Vec<u8>>,
    target: WakeTarget,
    /// A batch went into the channel this turn, so the peer needs a wake-up.
    sent: bool,
}

/// One shard's ends of all channels.
pub struct Mesh {
    me: usize,
    links: Vec<Option<Link>>,
    batch_bytes: usize,
    wake_token: Token,
    wake_failed_token: Token,
}

/// Spare buffers kept per peer; more are freed.
const MAX_SPARE: usize = 8;

impl Mesh {
    /// Wires `wakes.len()` shards together; returns each shard's mesh, in
    /// shard order. `capacity` is in batches.
    pub fn wire(
        wakes: &[WakeTarget],
        capacity: usize,
        batch_bytes: usize,
        wake_token: Token,
        wake_failed_token: Token,
    ) -> Vec<Mesh> {
        let n = wakes.len();
        type Tx = rtrb::Producer<Vec<u8>>;
        type Rx = rtrb::Consumer<Vec<u8>>;
        let mut tx: Vec<Vec<Option<Tx>>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut rx: Vec<Vec<Option<Rx>>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let pairs = (0..n).flat_map(|from| (0..n).map(move |to| (from, to)));
        for (from, to) in pairs.filter(|(from, to)| from != to) {
            let (producer, consumer) = rtrb::RingBuffer::new(capacity);
            tx[from][to] = Some(producer);
            rx[to][from] = Some(consumer);
        }
        let ends: Vec<Vec<Option<(Tx, Rx)>>> = tx
            .into_iter()
            .zip(rx)
            .map(|(t, r)| t.into_iter().zip(r).map(|(t, r)| t.zip(r)).collect())
            .collect();
        ends.into_iter()
            .enumerate()
            .map(|(me, row)| Mesh {
                me,
                links: row
                    .into_iter()
                    .enumerate()
                    .map(|(peer, end)| {
                        end.map(|(tx, rx)| Link {
                            tx,
                            rx,
                            outgoing: Vec::new(),
                            spare: Vec::new(),
                            target: wakes[peer].clone(),
                            sent: false,
                        })
                    })
                    .collect(),
                batch_bytes,
                wake_token,
                wake_failed_token,
            })
            .collect()
    }

    pub fn me(&self) -> usize {
        self.me
    }

    pub fn shards(&self) -> usize {
        self.links.len()
    }

    /// Whether a request for `peer` may be queued now. Replies to a peer's
    /// requests are always queued (their number is bounded by the peer's
    /// own backpressure).
    pub fn can_send(&self, peer: usize) -> bool {
        self.links[peer]
            .as_ref()
            .is_some_and(|l| l.outgoing.len() < self.batch_bytes * 4)
    }

    /// Appends a record for `peer`; its payload is the concatenation of `parts`.
    pub fn push(&mut self, peer: usize, kind: Kind, origin: Origin, parts: &[&[u8]]) {
        let link = self.links[peer].as_mut().expect("no channel to self");
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let out = &mut link.outgoing;
        if out.capacity() == 0
            && let Some(spare) = link.spare.pop()
        {
            *out = spare;
        }
        out.reserve(HEADER + len);
        out.push(kind as u8);
        out.push(origin.kind);
        out.extend_from_slice(&[0, 0]);
        for word in [origin.slot, origin.generation, origin.part, len as u32] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for p in parts {
            out.extend_from_slice(p);
        }
        if out.len() >= self.batch_bytes {
            Self::try_send(link);
        }
    }

    fn try_send(link: &mut Link) -> bool {
        if link.outgoing.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut link.outgoing);
        match link.tx.push(batch) {
            Ok(()) => {
                link.sent = true;
                true
            }
            Err(rtrb::PushError::Full(batch)) => {
                link.outgoing = batch;
                false
            }
        }
    }

    /// End of a loop turn: moves every pending batch into its channel and
    /// queues wake-ups on `ring`. Returns whether some batch is still waiting
    /// for room (call again next turn).
    pub fn flush(&mut self, ring: &mut Ring) -> bool {
        let mut blocked = false;
        for link in self.links.iter_mut().flatten() {
            blocked |= !Self::try_send(link);
            if link.sent {
                link.sent = false;
                if link.target.claim() {
                    // A failed wake-up is reported on our own ring and retried there.
                    let _ = ring.queue_msg_ring(
                        link.target.ring_fd(),
                        self.wake_token,
                        0,
                        self.wake_failed_token,
                    );
                }
            }
        }
        blocked
    }

    /// A wake-up to `peer` failed (its completion queue was full, say): the
    /// peer's pending flag would stay set and no later wake-up would be sent,
    /// so clear it and send again at the end of this turn.
    pub fn wake_failed(&mut self, peer: usize, error: i32) {
        if let Some(link) = self.links.get_mut(peer).and_then(Option::as_mut) {
            tracing::debug!(
                peer,
                "wake-up failed: {}",
                std::io::Error::from_raw_os_error(-error)
            );
            link.target.clear();
            link.sent = true;
        }
    }

    /// Takes the next batch a peer sent, if any.
    pub fn receive(&mut self, peer: usize) -> Option<Vec<u8>> {
        self.links[peer].as_mut()?.rx.pop().ok()
    }

    /// Returns a processed batch buffer for reuse towards `peer`.
    pub fn recycle(&mut self, peer: usize, mut batch: Vec<u8>) {
        if let Some(link) = self.links[peer].as_mut()
            && link.spare.len() < MAX_SPARE
            && batch.capacity() <= self.batch_bytes * 8
        {
            batch.clear();
            link.spare.push(batch);
        }
    }

    /// Whether any batch is built but not yet in its channel.
    pub fn has_outgoing(&self) -> bool {
        self.links.iter().flatten().any(|l| !l.outgoing.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::RingConfig;

    #[test]
    fn keyed_payloads_carry_their_hashes_ahead_of_the_request() {
        let mut exec = 42u64.to_le_bytes().to_vec();
        exec.extend_from_slice(b"get k\r\n");
        assert_eq!(
            split_hashes(Kind::Exec, &exec),
            (&42u64.to_le_bytes()[..], &b"get k\r\n"[..])
        );
        let mut values = Vec::new();
        values_lead([1u64, 2, 3].into_iter(), &mut values);
        values.extend_from_slice(b"gets a b c\r\n");
        let (hashes, line) = split_hashes(Kind::Values, &values);
        assert_eq!(line, b"gets a b c\r\n");
        let got: Vec<u64> = hashes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, [1, 2, 3]);
        // Other kinds have no lead; a short payload never reads out of bounds.
        assert_eq!(split_hashes(Kind::Flush, b"abc"), (&b""[..], &b"abc"[..]));
        assert_eq!(split_hashes(Kind::Values, &[9, 0, 0, 0, 1]).1, b"");
        assert_eq!(split_hashes(Kind::Exec, b"abc"), (&b"abc"[..], &b""[..]));
    }

    fn origin(slot: u32, part: u32) -> Origin {
        Origin {
            kind: 0,
            slot,
            generation: 7,
            part,
        }
    }

    #[test]
    fn records_round_trip_through_a_batch() {
        let wakes = [WakeTarget::new(-1), WakeTarget::new(-1)];
        let mut meshes = Mesh::wire(&wakes, 4, 1 << 16, Token::op(1), Token::op(2));
        let mut ring = Ring::new(RingConfig {
            sq_entries: 8,
            cq_entries: 16,
        })
        .unwrap();
        meshes[0].push(1, Kind::Exec, origin(3, 0), &[b"get ", b"foo\r\n"]);
        meshes[0].push(1, Kind::Flush, origin(0, 0), &[&5i64.to_le_bytes()]);
        assert!(meshes[0].has_outgoing());
        // fd -1 wake-ups fail on our own ring; the batch still moves.
        assert!(!meshes[0].flush(&mut ring));
        let batch = meshes[1].receive(0).expect("a batch");
        let got: Vec<_> = records(&batch).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, Kind::Exec);
        assert_eq!(got[0].origin, origin(3, 0));
        assert_eq!(got[0].payload, b"get foo\r\n");
        assert_eq!(got[1].kind, Kind::Flush);
        assert_eq!(got[1].payload, 5i64.to_le_bytes());
        assert!(meshes[1].receive(0).is_none());
    }

    #[test]
    fn a_full_channel_is_backpressure_not_a_panic() {
        let wakes = [WakeTarget::new(-1), WakeTarget::new(-1)];
        let mut meshes = Mesh::wire(&wakes, 2, 4096, Token::op(1), Token::op(2));
        let mut ring = Ring::new(RingConfig {
            sq_entries: 64,
            cq_entries: 128,
        })
        .unwrap();
        let value = vec![b'x'; 1000];
        let mut pushed = 0;
        while meshes[0].can_send(1) {
            meshes[0].push(1, Kind::Exec, origin(1, pushed), &[&value]);
            pushed += 1;
            assert!(pushed < 100, "can_send never said no");
        }
        // Two batches fit in the channel; the rest waits locally.
        assert!(meshes[0].flush(&mut ring), "still blocked");
        let mut seen = 0;
        while let Some(batch) = meshes[1].receive(0) {
            seen += records(&batch).count() as u32;
            meshes[1].recycle(0, batch);
        }
        assert!(!meshes[0].can_send(1), "the held batch is still too big");
        assert!(
            !meshes[0].flush(&mut ring),
            "room again: the held batch moves"
        );
        assert!(meshes[0].can_send(1));
        while let Some(batch) = meshes[1].receive(0) {
            seen += records(&batch).count() as u32;
        }
        assert_eq!(seen, pushed, "nothing lost, nothing duplicated");
    }

    #[test]
    fn records_stop_at_a_truncated_tail() {
        let wakes = [WakeTarget::new(-1), WakeTarget::new(-1)];
        let mut meshes = Mesh::wire(&wakes, 2, 1 << 16, Token::op(1), Token::op(2));
        meshes[0].push(1, Kind::Reply, origin(1, 1), &[b"STORED\r\n"]);
        let batch = std::mem::take(&mut meshes[0].links[1].as_mut().unwrap().outgoing);
        assert_eq!(records(&batch[..HEADER - 1]).count(), 0);
        assert_eq!(records(&batch).count(), 1);
    }
}
