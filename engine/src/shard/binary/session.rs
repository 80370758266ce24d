//! A binary connection (or UDP datagram) in a cluster: its keyed requests take the memcached
//! request path as meta requests (translate.rs), so that they are routed to
//! the key's node, forwarded, replicated and held for acks like any text or
//! meta request; the meta replies that come back in the connection's reply
//! queue are turned into binary packets, in order, at the end of the turn
//! ([`Session::translate`]). The HTTP port works the same way (shard/http/).
//!
//! Keyless requests (noop, version, stat, flush, quit, SASL) and refusals
//! are answered by the binary path as without a cluster, into the same
//! queue; the session passes their packets on as they are, in their place.
//! Without a cluster none of this runs: `Core::route_binary` serves binary
//! connections directly.
//!
//! ```text
//!  binary request ─► translate::request (meta bytes) ─► Core::handle ─► ReplyQueue
//!                 ─► Session::translate ─► translate::answer (binary packet) ─► send
//! ```

use std::collections::VecDeque;

use proto::Parse;
use proto::binary::{BinOp, BinRequest, HEADER_LEN, RESPONSE_MAGIC};
use proto::client::{ReplyParse, parse_reply};
use proto::meta::KeyBuf;

use super::translate::{self, Awaits};
use crate::shard::Core;
use crate::shard::client::{Client, Handled};
use crate::shard::order::ReplyQueue;
use crate::shard::request::Step;

/// One binary connection's requests between parse and reply, in a cluster.
#[derive(Debug, Default)]
pub struct Session {
    /// Requests not answered yet, in order.
    pending: VecDeque<Pending>,
    /// Reply bytes (meta replies and binary packets) not yet answered.
    mc: Vec<u8>,
    /// Binary packets ready to send.
    pub out: Vec<u8>,
}

#[derive(Debug)]
enum Pending {
    /// The binary path replied itself: this many packets, passed on.
    Packets(Packets),
    /// One meta reply, answered as a binary packet.
    Awaits(Awaits),
}

/// How many binary packets a request the binary path answered put in the
/// queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packets {
    Exactly(usize),
    /// `stat`: stat packets up to the one without a key (the end, or the
    /// error).
    Stats,
}

impl Packets {
    /// What the binary path answers keyless `request` with (see
    /// `Core::binary_keyless`); `flush_disabled`: `-F`, whose refusal is
    /// sent also for a quiet flush.
    pub fn of(request: &BinRequest<'_>, flush_disabled: bool) -> Packets {
        match request.op {
            BinOp::Stat { .. } => Packets::Stats,
            BinOp::Flush { .. } if flush_disabled => Packets::Exactly(1),
            BinOp::Quit | BinOp::Flush { .. } if request.quiet => Packets::Exactly(0),
            _ => Packets::Exactly(1),
        }
    }
}

impl Session {
    /// Gives back buffers grown past `keep` that hold nothing now.
    pub fn shrink(&mut self, keep: usize) {
        for buf in [&mut self.mc, &mut self.out] {
            if buf.is_empty() && buf.capacity() > keep {
                *buf = Vec::new();
            }
        }
    }

    pub fn push_packets(&mut self, packets: Packets) {
        if packets != Packets::Exactly(0) {
            self.pending.push_back(Pending::Packets(packets));
        }
    }

    fn push_awaits(&mut self, awaits: Awaits) {
        self.pending.push_back(Pending::Awaits(awaits));
    }

    /// Takes the replies ready in `replies` and answers every request whose
    /// reply is all in, in order. False when the replies cannot be read
    /// (never from this server): the connection must close.
    pub fn translate(&mut self, replies: &mut ReplyQueue) -> bool {
        replies.take_ready(&mut self.mc);
        let mut used = 0;
        while let Some(front) = self.pending.front_mut() {
            match front {
                Pending::Awaits(awaits) => match parse_reply(&self.mc[used..]) {
                    ReplyParse::Complete { reply, consumed } => {
                        translate::answer(&mut self.out, awaits, &reply);
                        used += consumed;
                    }
                    ReplyParse::Incomplete { .. } => break,
                    ReplyParse::Invalid(e) => {
                        tracing::warn!(?e, "unreadable memcached reply for a binary request");
                        self.pending.clear();
                        return false;
                    }
                },
                Pending::Packets(packets) => {
                    let Some(len) = packet_len(&self.mc[used..]) else {
                        if self.mc.len() - used >= HEADER_LEN {
                            tracing::warn!("unreadable binary packet in a binary session");
                            self.pending.clear();
                            return false;
                        }
                        break;
                    };
                    let Some(packet) = self.mc.get(used..used + len) else {
                        break;
                    };
                    self.out.extend_from_slice(packet);
                    let keylen = u16::from_be_bytes([packet[2], packet[3]]);
                    used += len;
                    match packets {
                        Packets::Exactly(n) if *n > 1 => {
                            *n -= 1;
                            continue;
                        }
                        Packets::Stats if keylen != 0 => continue,
                        _ => {}
                    }
                }
            }
            self.pending.pop_front();
        }
        self.mc.drain(..used);
        true
    }

    /// Bytes held here: replies not yet answered, packets not yet sent.
    pub fn buffered(&self) -> usize {
        self.mc.len() + self.out.len()
    }

    /// Whether every request has been answered and sent on.
    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.out.is_empty()
    }
}

/// The length of the response packet at the start of `b`; `None` until its
/// header is in, or when it is not a response header.
fn packet_len(b: &[u8]) -> Option<usize> {
    if b.len() < HEADER_LEN || b[0] != RESPONSE_MAGIC {
        return None;
    }
    let body = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    Some(HEADER_LEN + body as usize)
}

impl Core {
    /// Runs one binary request of a connection with a [`Session`]: a keyed
    /// one as its meta request, a keyless one on the binary path.
    pub(in crate::shard) fn step_binary_session(
        &mut self,
        slot: u32,
        client: Client,
        request: &BinRequest<'_>,
        consumed: usize,
    ) -> Step {
        let handled = self.run_in_session(client, request);
        self.after(slot, handled, consumed)
    }

    /// Runs one binary request of `client`'s session (a connection's or a
    /// UDP datagram's) and records what its answer will be; nothing is
    /// recorded when it stalled, for then nothing ran.
    pub(in crate::shard) fn run_in_session(
        &mut self,
        client: Client,
        request: &BinRequest<'_>,
    ) -> Handled {
        let mut meta = Vec::new();
        let Some(awaits) = translate::request(request, &mut meta) else {
            let handled = self.binary_keyless(client, request);
            if handled != Handled::Stall {
                let packets = Packets::of(request, self.shared.config.server.disable_flush_all);
                self.binary_session(client, |s| s.push_packets(packets));
            }
            return handled;
        };
        let handled = match proto::parse(&meta, &self.limits) {
            Parse::Complete { ref request, .. } => self.handle(client, request, &meta, usize::MAX),
            // What the text limits refuse and the binary ones let through (a
            // key of odd bytes too long in base64): the meta error is the
            // reply, answered as a binary one.
            Parse::Invalid(invalid) => {
                if let Some(key) = invalid.unlink {
                    let mut buf: KeyBuf = [0; _];
                    self.unlink_refused(key.decode(&mut buf));
                }
                self.reply(client, |out| invalid.error.encode(out))
            }
            Parse::Incomplete { .. } => {
                debug_assert!(false, "a binary request built a partial meta request");
                self.reply(client, |out| {
                    out.extend_from_slice(b"SERVER_ERROR bad request\r\n")
                })
            }
        };
        if handled != Handled::Stall {
            self.binary_session(client, |s| s.push_awaits(awaits));
        }
        handled
    }

    /// `f` on `client`'s session, if it has one.
    pub(in crate::shard) fn binary_session(
        &mut self,
        client: Client,
        f: impl FnOnce(&mut Session),
    ) {
        let session = match client {
            Client::Conn { slot, .. } => self
                .net
                .conns
                .slot_mut(slot)
                .and_then(|c| c.binary.as_deref_mut()),
            Client::Udp { slot, generation } => self
                .net
                .udp
                .as_mut()
                .and_then(|u| u.session(slot, generation)),
        };
        if let Some(s) = session {
            f(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::binary::ReplyTo;
    use proto::binary::response::encode_ok;

    fn get(quiet: bool, opaque: u32) -> Awaits {
        let r = BinRequest::new(
            BinOp::Get {
                key: b"k",
                with_key: false,
            },
            quiet,
            opaque,
            0,
        );
        translate::request(&r, &mut Vec::new()).unwrap()
    }

    /// (opcode, opaque) of each packet.
    fn heads(mut b: &[u8]) -> Vec<(u8, u32)> {
        let mut v = Vec::new();
        while let Some(len) = packet_len(b) {
            v.push((b[1], u32::from_be_bytes(b[12..16].try_into().unwrap())));
            b = &b[len..];
        }
        assert!(b.is_empty());
        v
    }

    #[test]
    fn replies_are_answered_in_order_and_a_noop_waits_for_a_quiet_get() {
        let mut s = Session::default();
        let mut q = ReplyQueue::default();
        s.push_awaits(get(true, 1)); // getq: a miss sends nothing
        s.push_awaits(get(true, 2)); // getq: a hit
        s.push_packets(Packets::Exactly(1)); // noop
        // The first reply comes in two pieces.
        q.sink().extend_from_slice(b"EN\r\nVA 1 f0 c3\r\n");
        assert!(s.translate(&mut q));
        assert!(s.out.is_empty() && !s.idle());
        q.sink().extend_from_slice(b"x\r\n");
        encode_ok(
            q.sink(),
            ReplyTo {
                opcode: 0x0a,
                opaque: 3,
            },
            0,
        );
        assert!(s.translate(&mut q));
        assert_eq!(heads(&s.out), [(0x09, 2), (0x0a, 3)]);
        s.out.clear();
        assert!(s.idle());
    }

    #[test]
    fn stat_packets_pass_up_to_the_empty_one() {
        let mut s = Session::default();
        let mut q = ReplyQueue::default();
        s.push_packets(Packets::Stats);
        s.push_awaits(get(false, 9));
        proto::binary::admin::encode_stat(q.sink(), 5, b"pid", b"1");
        assert!(s.translate(&mut q));
        assert_eq!(heads(&s.out), [(0x10, 5)]);
        proto::binary::admin::encode_stats_end(q.sink(), 5);
        q.sink().extend_from_slice(b"EN\r\n");
        assert!(s.translate(&mut q));
        assert_eq!(heads(&s.out), [(0x10, 5), (0x10, 5), (0x00, 9)]);
        // Quiet quit and flush answer nothing: nothing is awaited.
        let quit = BinRequest::new(BinOp::Quit, true, 0, 0);
        s.push_packets(Packets::of(&quit, false));
        // Except a flush refused by -F.
        let flush = BinRequest::new(BinOp::Flush { delay: None }, true, 0, 0);
        assert_eq!(Packets::of(&flush, false), Packets::Exactly(0));
        assert_eq!(Packets::of(&flush, true), Packets::Exactly(1));
        s.out.clear();
        assert!(s.idle());
    }

    #[test]
    fn an_unreadable_reply_ends_the_session() {
        let mut s = Session::default();
        let mut q = ReplyQueue::default();
        s.push_awaits(get(false, 1));
        q.sink().extend_from_slice(b"VA x\r\n");
        assert!(!s.translate(&mut q));
        let mut s = Session::default();
        s.push_packets(Packets::Exactly(1));
        q.sink().extend_from_slice(&[b'E'; HEADER_LEN]);
        assert!(!s.translate(&mut q));
    }
}
