//! A TCP connection: requests are appended to `wbuf` during a loop turn and
//! go out in one send at the end of it; replies come back in order, so the
//! reply at the front of the stream belongs to the oldest pending request.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use runtime::{Ring, Token};

use super::ctx::{Ctx, Loss, Pending};
use super::fold::{self, Partial, Step};
use super::transport::{Broken, SEND, Transport};
use crate::wire::Protocol;
use proto::binary::{ResponseParse, parse_response};
use proto::client::{ReplyParse, parse_reply};

pub struct TcpConn {
    fd: OwnedFd,
    pending: VecDeque<Pending>,
    partial: Partial,
    /// Unparsed tail of the stream (a reply split across receives).
    rbuf: Vec<u8>,
    /// Encoded this turn, not yet handed to the kernel.
    wbuf: Vec<u8>,
    /// Handed to the kernel; untouched until its send completes.
    inflight: Vec<u8>,
    sent: usize,
    sending: bool,
}

impl TcpConn {
    pub fn new(fd: OwnedFd) -> TcpConn {
        TcpConn {
            fd,
            pending: VecDeque::new(),
            partial: Partial::default(),
            rbuf: Vec::new(),
            wbuf: Vec::with_capacity(4096),
            inflight: Vec::with_capacity(4096),
            sent: 0,
            sending: false,
        }
    }

    fn push_send(&mut self, ring: &mut Ring, slot: u32) -> io::Result<()> {
        self.sending = true;
        let rest = &self.inflight[self.sent..];
        // SAFETY: `inflight` is neither grown, shrunk nor dropped while
        // `sending` is true; `on_send` clears it only after the completion,
        // and the loop waits for every send before dropping connections.
        unsafe { ring.queue_send(self.fd.as_raw_fd(), rest, 0, Token::new(SEND, slot, 0)) }
    }

    /// Parses and accounts every complete reply in `buf`; returns the bytes used.
    fn fold(&mut self, buf: &[u8], ctx: &mut Ctx, now: u64) -> Result<usize, Broken> {
        let binary = ctx.protocol == Protocol::Binary;
        let mut used = 0;
        loop {
            let front = self.pending.front().copied();
            let phase = front.map_or(super::ctx::Phase::Measured, |p| p.phase);
            let rest = &buf[used..];
            // One reply: Ok(None) when incomplete, Err when the stream is
            // lost, else its length and what it did to the front request
            // (None: no request was waiting for it).
            let parsed = if binary {
                match parse_response(rest) {
                    ResponseParse::Incomplete { .. } => Ok(None),
                    ResponseParse::Invalid(_) => Err(Broken),
                    ResponseParse::Complete { response, consumed } => Ok(Some((
                        consumed,
                        front.map(|p| fold::apply_binary(&p, &mut self.partial, &response, ctx)),
                    ))),
                }
            } else {
                match parse_reply(rest) {
                    ReplyParse::Incomplete { .. } => Ok(None),
                    ReplyParse::Invalid(_) => Err(Broken),
                    ReplyParse::Complete { reply, consumed } => Ok(Some((
                        consumed,
                        front.map(|p| fold::apply(&p, &mut self.partial, reply, ctx)),
                    ))),
                }
            };
            let (consumed, step) = match parsed {
                Ok(None) => return Ok(used),
                Ok(Some((consumed, Some(step)))) => (consumed, step),
                Ok(Some((_, None))) | Err(Broken) => {
                    ctx.protocol_error(phase);
                    return Err(Broken);
                }
            };
            used += consumed;
            let p = front.expect("a step is only taken for a waiting request");
            match step {
                Step::More => {}
                Step::Done(outcome) => {
                    self.pending.pop_front();
                    self.partial = Partial::default();
                    ctx.complete(&p, outcome, now);
                }
                Step::Invalid => {
                    ctx.protocol_error(p.phase);
                    return Err(Broken);
                }
            }
        }
    }
}

impl Transport for TcpConn {
    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn outstanding(&self) -> usize {
        self.pending.len()
    }

    fn sending(&self) -> bool {
        self.sending
    }

    fn begin(&mut self) -> &mut Vec<u8> {
        &mut self.wbuf
    }

    fn commit(&mut self, p: Pending, ctx: &mut Ctx, _now: u64) {
        ctx.sent(&p);
        self.pending.push_back(p);
    }

    fn flush(&mut self, ring: &mut Ring, slot: u32) -> io::Result<()> {
        if self.sending || self.wbuf.is_empty() {
            return Ok(());
        }
        std::mem::swap(&mut self.wbuf, &mut self.inflight);
        self.wbuf.clear();
        self.sent = 0;
        self.push_send(ring, slot)
    }

    fn on_send(&mut self, result: i32, ring: &mut Ring, slot: u32) -> Result<bool, Broken> {
        self.sending = false;
        if result < 0 {
            return Err(Broken);
        }
        self.sent += result as usize;
        if self.sent < self.inflight.len() {
            // A short send: the socket buffer was full. Send the rest first,
            // keeping the byte order.
            self.push_send(ring, slot).map_err(|_| Broken)?;
            return Ok(false);
        }
        self.inflight.clear();
        Ok(!self.wbuf.is_empty())
    }

    fn on_data(&mut self, data: &[u8], ctx: &mut Ctx, now: u64) -> Result<(), Broken> {
        if self.rbuf.is_empty() {
            // The common case: whole replies, parsed in the kernel's buffer.
            let used = self.fold(data, ctx, now)?;
            self.rbuf.extend_from_slice(&data[used..]);
        } else {
            let mut rbuf = std::mem::take(&mut self.rbuf);
            rbuf.extend_from_slice(data);
            let used = self.fold(&rbuf, ctx, now);
            let used = match used {
                Ok(n) => n,
                Err(b) => {
                    self.rbuf = rbuf;
                    return Err(b);
                }
            };
            rbuf.drain(..used);
            self.rbuf = rbuf;
        }
        Ok(())
    }

    fn fail_all(&mut self, ctx: &mut Ctx, why: Loss) {
        for p in self.pending.drain(..) {
            ctx.lost(&p, why);
        }
        self.partial = Partial::default();
        self.rbuf.clear();
    }
}
