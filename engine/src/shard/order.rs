//! Replies leave a connection in request order, even when some of them are
//! produced by other shards and arrive later.
//!
//! While no reply is awaited from another shard, local replies go straight to
//! `out`, the bytes ready to send. Once one is awaited, later local replies
//! are held back in `held`, and each awaited part records where in `held` it
//! belongs:
//!
//! ```text
//!   out: [ ready to send ........ ]
//!   held:            [ local A | local B | local C ]
//!   remotes:   part 7 ^ at 0      part 8 ^ at |A|+|B|
//!   => sent order: out, part 7, A, B, part 8, C
//! ```
//! A part that arrives while it is at the front is copied straight into
//! `out` (the common case: one request awaited at a time); one that arrives
//! early waits in its own buffer.

use std::collections::VecDeque;

use super::stats::latency::{Latency, Timed};

/// Released bytes at the front of `held` are dropped once there are this many
/// and they are at least half of it.
const COMPACT_AT: usize = 256 << 10;

/// One awaited reply.
#[derive(Debug)]
struct Remote {
    part: u32,
    /// Offset in `held` where this part's bytes go.
    at: usize,
    /// The reply, when it arrived before the parts ahead of it.
    early: Option<Vec<u8>>,
    /// The last part of a request the latency histograms time: it is done
    /// when this part leaves for `out`, after every part ahead of it.
    timed: Option<Timed>,
}

/// The ordered output of one connection (or one UDP request).
#[derive(Debug, Default)]
pub struct ReplyQueue {
    out: Vec<u8>,
    held: Vec<u8>,
    /// How much of `held` has already moved to `out`.
    held_done: usize,
    remotes: VecDeque<Remote>,
    next_part: u32,
}

impl ReplyQueue {
    /// Where the next local reply is written.
    #[inline]
    pub fn sink(&mut self) -> &mut Vec<u8> {
        if self.remotes.is_empty() {
            &mut self.out
        } else {
            &mut self.held
        }
    }

    /// Reserves the place of a reply another shard will produce; returns the
    /// part number to send along with the request.
    pub fn await_remote(&mut self) -> u32 {
        let part = self.next_part;
        self.next_part = self.next_part.wrapping_add(1);
        self.remotes.push_back(Remote {
            part,
            at: self.held.len(),
            early: None,
            timed: None,
        });
        part
    }

    /// The part number the next [`ReplyQueue::await_remote`] returns.
    #[inline]
    pub fn next_part(&self) -> u32 {
        self.next_part
    }

    /// Marks `part` as the last of a timed request: its time is taken when
    /// the part is placed in order. False when it is no longer awaited (its
    /// reply is already in `out`: the request is done now).
    pub fn time_part(&mut self, part: u32, timed: Timed) -> bool {
        let Some(front) = self.remotes.front() else {
            return false;
        };
        let index = part.wrapping_sub(front.part) as usize;
        match self.remotes.get_mut(index) {
            Some(r) if r.part == part => {
                r.timed = Some(timed);
                true
            }
            _ => false,
        }
    }

    /// Places the reply for `part`. Unknown parts (the connection was reset in
    /// between) are ignored and reported as `false`. A timed request whose
    /// last part leaves for `out` here is recorded in `latency`.
    pub fn resolve(&mut self, part: u32, bytes: &[u8], mut latency: Option<&mut Latency>) -> bool {
        let Some(front) = self.remotes.front() else {
            return false;
        };
        let index = part.wrapping_sub(front.part) as usize;
        if index >= self.remotes.len() || self.remotes[index].part != part {
            return false;
        }
        if index > 0 {
            self.remotes[index].early = Some(bytes.to_vec());
            return true;
        }
        self.release_front(Some(bytes), latency.as_deref_mut());
        while self.remotes.front().is_some_and(|r| r.early.is_some()) {
            self.release_front(None, latency.as_deref_mut());
        }
        if self.remotes.is_empty() {
            self.out.extend_from_slice(&self.held[self.held_done..]);
            self.held.clear();
            self.held_done = 0;
        } else if self.held_done >= COMPACT_AT && self.held_done * 2 >= self.held.len() {
            // Parts keep being awaited (a long pipeline or a long get line
            // across shards): drop what was released, or `held` would keep
            // every byte answered since the queue was last empty.
            self.held.drain(..self.held_done);
            for r in &mut self.remotes {
                r.at -= self.held_done;
            }
            self.held_done = 0;
        }
        true
    }

    fn release_front(&mut self, bytes: Option<&[u8]>, latency: Option<&mut Latency>) {
        let front = self.remotes.pop_front().expect("caller checked");
        self.out
            .extend_from_slice(&self.held[self.held_done..front.at]);
        self.held_done = front.at;
        match (bytes, front.early) {
            (Some(b), _) => self.out.extend_from_slice(b),
            (None, Some(b)) => self.out.extend_from_slice(&b),
            (None, None) => unreachable!("released a part that has not arrived"),
        }
        if let (Some(t), Some(l)) = (front.timed, latency) {
            l.finish(t);
        }
    }

    /// Replies awaited from other shards.
    pub fn awaiting(&self) -> usize {
        self.remotes.len()
    }

    /// Bytes buffered here: ready, held back, or arrived early.
    pub fn buffered(&self) -> usize {
        self.out.len() + self.held.len() - self.held_done
    }

    /// The bytes ready to send, in order.
    pub fn ready(&self) -> &[u8] {
        &self.out
    }

    /// Whether any bytes are ready to send.
    pub fn has_ready(&self) -> bool {
        !self.out.is_empty()
    }

    /// Takes the ready bytes, leaving `spare` (cleared) in their place; used to
    /// hand the bytes to the kernel while new replies accumulate.
    pub fn swap_ready(&mut self, spare: &mut Vec<u8>) {
        spare.clear();
        std::mem::swap(&mut self.out, spare);
    }

    /// Moves the ready bytes to the end of `into` (a session that translates
    /// replies before they are sent: HTTP, binary in a cluster); a swap when
    /// `into` is empty.
    pub fn take_ready(&mut self, into: &mut Vec<u8>) {
        if into.is_empty() {
            std::mem::swap(&mut self.out, into);
        } else {
            into.extend_from_slice(&self.out);
            self.out.clear();
        }
    }

    /// Forgets everything (connection reuse).
    pub fn reset(&mut self) {
        self.out.clear();
        self.held.clear();
        self.held_done = 0;
        self.remotes.clear();
    }

    /// Releases the buffers over `keep` that hold nothing (a burst left them).
    pub fn shrink(&mut self, keep: usize) {
        if self.out.is_empty() && self.out.capacity() > keep {
            self.out = Vec::new();
        }
        if self.held.is_empty() && self.held.capacity() > keep {
            self.held = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(q: &mut ReplyQueue, s: &str) {
        q.sink().extend_from_slice(s.as_bytes());
    }

    fn ready(q: &ReplyQueue) -> &str {
        std::str::from_utf8(q.ready()).unwrap()
    }

    #[test]
    fn taken_replies_append_to_what_a_session_still_holds() {
        let mut q = ReplyQueue::default();
        let mut held = Vec::new();
        local(&mut q, "VA 1\r\n");
        q.take_ready(&mut held);
        assert!(!q.has_ready());
        let part = q.await_remote();
        local(&mut q, "HD\r\n");
        assert!(q.resolve(part, b"x\r\n", None));
        q.take_ready(&mut held);
        assert_eq!(held, b"VA 1\r\nx\r\nHD\r\n");
        assert!(!q.has_ready());
    }

    /// A queue that always awaits some part (a long pipeline across shards)
    /// must not keep what it released: the bytes still held stay bounded, and
    /// the order is kept through every compaction.
    #[test]
    fn a_queue_never_empty_of_remote_parts_does_not_grow() {
        let mut q = ReplyQueue::default();
        let chunk = vec![b'x'; 10_000];
        let mut want = Vec::new();
        let mut sent = Vec::new();
        let mut waiting = std::collections::VecDeque::new();
        waiting.push_back(q.await_remote());
        for i in 0..2_000u32 {
            q.sink().extend_from_slice(&chunk);
            q.sink().extend_from_slice(&i.to_le_bytes());
            waiting.push_back(q.await_remote());
            let p = waiting.pop_front().unwrap();
            assert!(q.resolve(p, &p.to_le_bytes(), None));
            want.extend_from_slice(&p.to_le_bytes());
            want.extend_from_slice(&chunk);
            want.extend_from_slice(&i.to_le_bytes());
            assert!(
                q.held.capacity() <= 4 * COMPACT_AT,
                "held grew to {}",
                q.held.capacity()
            );
            let mut spare = Vec::new();
            q.swap_ready(&mut spare);
            sent.extend_from_slice(&spare);
        }
        assert_eq!(q.awaiting(), 1);
        let last = waiting.pop_front().unwrap();
        assert!(q.resolve(last, b"end", None));
        want.extend_from_slice(b"end");
        sent.extend_from_slice(q.ready());
        let first = sent.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!((sent.len(), first), (want.len(), None));
    }

    #[test]
    fn a_timed_request_is_done_when_its_last_part_leaves_in_order() {
        use crate::shard::stats::latency::{Latency, Timed};
        let mut l = Latency::new(1);
        let count = |l: &Latency, f: usize| l.row(f).take(13).sum::<u64>();
        let mut q = ReplyQueue::default();
        // An earlier request's part, then a timed multi-get of two parts.
        let earlier = q.await_remote();
        let first = q.next_part();
        let a = q.await_remote();
        let b = q.await_remote();
        assert_eq!(first, a);
        assert!(q.time_part(b, Timed::start(0)));
        assert!(q.resolve(b, b"B", Some(&mut l)));
        assert!(q.resolve(a, b"A", Some(&mut l)));
        assert_eq!(count(&l, 0), 0, "still behind the earlier request");
        assert!(q.resolve(earlier, b"E", Some(&mut l)));
        assert_eq!(count(&l, 0), 1);
        assert_eq!(ready(&q), "EAB");
        // A part no longer awaited cannot be timed: the caller records now.
        assert!(!q.time_part(b, Timed::start(0)));
    }

    #[test]
    fn local_replies_go_straight_out() {
        let mut q = ReplyQueue::default();
        local(&mut q, "A");
        local(&mut q, "B");
        assert_eq!(ready(&q), "AB");
        assert_eq!(q.awaiting(), 0);
    }

    #[test]
    fn a_remote_part_holds_back_what_follows_it() {
        let mut q = ReplyQueue::default();
        local(&mut q, "1");
        let p = q.await_remote();
        local(&mut q, "3");
        local(&mut q, "4");
        assert_eq!(ready(&q), "1");
        assert!(q.resolve(p, b"2", None));
        assert_eq!(ready(&q), "1234");
        local(&mut q, "5");
        assert_eq!(ready(&q), "12345");
    }

    #[test]
    fn parts_arriving_out_of_order_are_put_back_in_order() {
        let mut q = ReplyQueue::default();
        let a = q.await_remote();
        local(&mut q, "x");
        let b = q.await_remote();
        let c = q.await_remote();
        local(&mut q, "y");
        assert!(q.resolve(c, b"C", None));
        assert!(q.resolve(b, b"B", None));
        assert_eq!(ready(&q), "");
        assert_eq!(q.buffered(), 2);
        assert!(q.resolve(a, b"A", None));
        assert_eq!(ready(&q), "AxBCy");
        assert_eq!(q.awaiting(), 0);
    }

    #[test]
    fn unknown_and_repeated_parts_are_ignored() {
        let mut q = ReplyQueue::default();
        assert!(!q.resolve(0, b"?", None));
        let p = q.await_remote();
        assert!(!q.resolve(p + 5, b"?", None));
        assert!(q.resolve(p, b"ok", None));
        assert!(!q.resolve(p, b"again", None));
        assert_eq!(ready(&q), "ok");
    }

    #[test]
    fn swap_ready_hands_over_bytes_and_keeps_order_for_later_ones() {
        let mut q = ReplyQueue::default();
        local(&mut q, "first");
        let mut inflight = Vec::new();
        q.swap_ready(&mut inflight);
        assert_eq!(inflight, b"first");
        let p = q.await_remote();
        local(&mut q, "third");
        q.resolve(p, b"second", None);
        assert_eq!(ready(&q), "secondthird");
    }

    #[test]
    fn part_numbers_wrap() {
        let mut q = ReplyQueue {
            next_part: u32::MAX,
            ..ReplyQueue::default()
        };
        let a = q.await_remote();
        let b = q.await_remote();
        assert_eq!((a, b), (u32::MAX, 0));
        q.resolve(b, b"B", None);
        q.resolve(a, b"A", None);
        assert_eq!(ready(&q), "AB");
    }

    #[test]
    fn random_interleavings_keep_request_order() {
        // A model check: requests numbered 0..n, some local, some remote and
        // resolved in a shuffled order; the output is always 0..n in order.
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut q = ReplyQueue::default();
            let mut pending = Vec::new();
            let n = 1 + next() % 40;
            let mut expected = String::new();
            for i in 0..n {
                let tag = format!("<{i}>");
                expected.push_str(&tag);
                if next() % 2 == 0 {
                    local(&mut q, &tag);
                } else {
                    pending.push((q.await_remote(), tag));
                }
                // Resolve some of the outstanding parts at random moments.
                while !pending.is_empty() && next() % 3 == 0 {
                    let k = (next() as usize) % pending.len();
                    let (part, tag) = pending.swap_remove(k);
                    assert!(q.resolve(part, tag.as_bytes(), None));
                }
            }
            while !pending.is_empty() {
                let k = (next() as usize) % pending.len();
                let (part, tag) = pending.swap_remove(k);
                assert!(q.resolve(part, tag.as_bytes(), None));
            }
            assert_eq!(ready(&q), expected);
        }
    }
}
