//! A connected UDP socket speaking the text protocol with memcached's frame
//! header. Every request is one datagram with its own request id; replies
//! may be split over several datagrams, arrive in any order, or never: a
//! request without its whole reply after the timeout is lost (an error).
//!
//! memcached 1.6 (1.6.18 seen here) answers a multi-key get over UDP with
//! one datagram per response piece, each marked "1 of 1" under the same
//! request id (`VALUE a ..` then `VALUE b .. END`). So a reply is read as
//! a stream of items that may span "complete" messages: a request ends at
//! its closing item (END), not at the end of a message.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use runtime::{Ring, Token};

use super::ctx::{Ctx, Loss, Pending, Phase};
use super::fold::{self, Partial, Step};
use super::transport::{Broken, SEND, Transport};
use crate::wire::udp::{HEADER_LEN, Reassembly, parse_reply_datagram, request_header};
use proto::client::{ReplyParse, parse_reply};

struct InFlight {
    pending: Pending,
    serial: u64,
    /// Datagrams of a message split over several (total > 1).
    parts: Reassembly,
    /// Replies seen so far, across messages.
    partial: Partial,
    /// Messages of a reply that did not parse on their own (see the module docs).
    stream: Vec<u8>,
}

pub struct UdpConn {
    fd: OwnedFd,
    next_id: u16,
    serial: u64,
    inflight: HashMap<u16, InFlight>,
    /// (request id, serial, sent at) in send order, for timeouts.
    order: VecDeque<(u16, u64, u64)>,
    /// Datagrams encoded this turn: bytes and (start, len) of each.
    wbuf: Vec<u8>,
    frames: Vec<(usize, usize)>,
    frame_start: usize,
    /// Datagrams handed to the kernel; untouched until all their sends complete.
    out: Vec<u8>,
    out_frames: Vec<(usize, usize)>,
    sends: usize,
}

/// A UDP socket connected to `target`, so that plain send/recv apply.
pub fn connect(target: SocketAddr) -> io::Result<OwnedFd> {
    let domain = socket2::Domain::for_address(target);
    let s = socket2::Socket::new(
        domain,
        socket2::Type::DGRAM.cloexec(),
        Some(socket2::Protocol::UDP),
    )?;
    // Bigger socket buffers ride out bursts of replies between loop turns.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.connect(&target.into())?;
    Ok(s.into())
}

impl UdpConn {
    pub fn new(fd: OwnedFd) -> UdpConn {
        UdpConn {
            fd,
            next_id: 0,
            serial: 0,
            inflight: HashMap::new(),
            order: VecDeque::new(),
            wbuf: Vec::with_capacity(4096),
            frames: Vec::new(),
            frame_start: 0,
            out: Vec::with_capacity(4096),
            out_frames: Vec::new(),
            sends: 0,
        }
    }

    /// Feeds one whole message of request `id` into its reply; the request
    /// completes when the messages so far hold its whole reply.
    fn feed(&mut self, id: u16, message: &[u8], ctx: &mut Ctx, now: u64) {
        let Some(f) = self.inflight.get_mut(&id) else {
            return;
        };
        let p = f.pending;
        let mut stream = std::mem::take(&mut f.stream);
        let bytes: &[u8] = if stream.is_empty() {
            message
        } else {
            stream.extend_from_slice(message);
            &stream
        };
        let mut rest = bytes;
        let verdict = loop {
            match parse_reply(rest) {
                ReplyParse::Complete { reply, consumed } => {
                    rest = &rest[consumed..];
                    match fold::apply(&p, &mut f.partial, reply, ctx) {
                        Step::More if rest.is_empty() => break None,
                        Step::More => {}
                        Step::Done(outcome) if rest.is_empty() => break Some(Ok(outcome)),
                        Step::Done(_) | Step::Invalid => break Some(Err(())),
                    }
                }
                ReplyParse::Incomplete { .. } => {
                    // Wait for the next message of this request.
                    let keep = rest.to_vec();
                    f.stream = keep;
                    return;
                }
                ReplyParse::Invalid(_) => break Some(Err(())),
            }
        };
        match verdict {
            None => {}
            Some(Ok(outcome)) => {
                self.inflight.remove(&id);
                ctx.complete(&p, outcome, now);
            }
            Some(Err(())) => {
                self.inflight.remove(&id);
                ctx.protocol_error(p.phase);
            }
        }
    }
}

impl Transport for UdpConn {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn outstanding(&self) -> usize {
        self.inflight.len()
    }

    fn sending(&self) -> bool {
        self.sends > 0
    }

    fn begin(&mut self) -> &mut Vec<u8> {
        self.frame_start = self.wbuf.len();
        self.wbuf.extend_from_slice(&[0; HEADER_LEN]);
        &mut self.wbuf
    }

    fn commit(&mut self, p: Pending, ctx: &mut Ctx, now: u64) {
        // Skip ids still in flight (possible only after 65536 requests
        // without a reply, i.e. timeouts longer than the id space lasts).
        while self.inflight.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.wbuf[self.frame_start..self.frame_start + HEADER_LEN]
            .copy_from_slice(&request_header(id));
        self.frames
            .push((self.frame_start, self.wbuf.len() - self.frame_start));
        self.serial += 1;
        self.order.push_back((id, self.serial, now));
        self.inflight.insert(
            id,
            InFlight {
                pending: p,
                serial: self.serial,
                parts: Reassembly::default(),
                partial: Partial::default(),
                stream: Vec::new(),
            },
        );
        ctx.sent(&p);
    }

    fn flush(&mut self, ring: &mut Ring, slot: u32) -> io::Result<()> {
        if self.sends > 0 || self.frames.is_empty() {
            return Ok(());
        }
        std::mem::swap(&mut self.wbuf, &mut self.out);
        std::mem::swap(&mut self.frames, &mut self.out_frames);
        self.wbuf.clear();
        self.frames.clear();
        for &(start, len) in &self.out_frames {
            let datagram = &self.out[start..start + len];
            let token = Token::new(SEND, slot, 0);
            // SAFETY: `out` is not touched until `sends` drops back to zero,
            // i.e. until every datagram's send has completed.
            unsafe { ring.queue_send(self.fd.as_raw_fd(), datagram, 0, token)? };
            self.sends += 1;
        }
        Ok(())
    }

    fn on_send(&mut self, _result: i32, _ring: &mut Ring, _slot: u32) -> Result<bool, Broken> {
        // A failed datagram send (ECONNREFUSED from an earlier ICMP, say) is
        // not fatal: its request times out and is counted then.
        self.sends -= 1;
        if self.sends > 0 {
            return Ok(false);
        }
        self.out.clear();
        self.out_frames.clear();
        Ok(!self.frames.is_empty())
    }

    fn on_data(&mut self, data: &[u8], ctx: &mut Ctx, now: u64) -> Result<(), Broken> {
        let Some((h, payload)) = parse_reply_datagram(data) else {
            ctx.protocol_error(Phase::Measured);
            return Ok(());
        };
        // Late replies to requests already timed out are ignored.
        let Some(f) = self.inflight.get_mut(&h.request_id) else {
            return Ok(());
        };
        if Reassembly::is_single(&h) {
            self.feed(h.request_id, payload, ctx, now);
            return Ok(());
        }
        match f.parts.add(h, payload) {
            Ok(None) => {}
            Ok(Some(whole)) => self.feed(h.request_id, &whole, ctx, now),
            Err(_) => {
                let f = self.inflight.remove(&h.request_id).expect("present");
                ctx.protocol_error(f.pending.phase);
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: u64, timeout_ns: u64, ctx: &mut Ctx) {
        while let Some(&(id, serial, sent)) = self.order.front() {
            let live = self.inflight.get(&id).is_some_and(|f| f.serial == serial);
            if live && now.saturating_sub(sent) < timeout_ns {
                break;
            }
            self.order.pop_front();
            if live {
                let f = self.inflight.remove(&id).expect("present");
                ctx.lost(&f.pending, Loss::Timeout);
            }
        }
    }

    fn fail_all(&mut self, ctx: &mut Ctx, why: Loss) {
        for (_, f) in self.inflight.drain() {
            ctx.lost(&f.pending, why);
        }
        self.order.clear();
    }
}
