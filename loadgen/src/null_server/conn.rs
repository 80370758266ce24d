//! One null-server connection: requests are answered as far as the bytes
//! received allow; replies collect in `wbuf` and leave in one send per turn.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use runtime::{Ring, Token};

use super::answer::{After, answer};
use super::stats::{Stats, ThreadStats};
use proto::{Limits, Parse, parse};

pub struct ServerConn {
    pub fd: OwnedFd,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    inflight: Vec<u8>,
    sent: usize,
    /// Bytes of a refused value still to be discarded as they arrive.
    swallow: usize,
    pub sending: bool,
    pub recv_armed: bool,
    pub closing: bool,
    /// A cancel of the receive has been queued.
    pub cancelled: bool,
    pub dirty: bool,
}

impl ServerConn {
    pub fn new(fd: OwnedFd) -> ServerConn {
        ServerConn {
            fd,
            rbuf: Vec::new(),
            wbuf: Vec::with_capacity(4096),
            inflight: Vec::with_capacity(4096),
            sent: 0,
            swallow: 0,
            sending: false,
            recv_armed: true,
            closing: false,
            cancelled: false,
            dirty: false,
        }
    }

    /// Answers every complete request in `data` (after any leftover);
    /// returns how many were answered.
    pub fn on_data(&mut self, data: &[u8], value: &[u8], mine: &ThreadStats, all: &Stats) -> u64 {
        if self.closing {
            return 0;
        }
        if self.rbuf.is_empty() {
            let (used, n) = self.answer_all(data, value, mine, all);
            self.rbuf.extend_from_slice(&data[used..]);
            n
        } else {
            let mut rbuf = std::mem::take(&mut self.rbuf);
            rbuf.extend_from_slice(data);
            let (used, n) = self.answer_all(&rbuf, value, mine, all);
            rbuf.drain(..used);
            self.rbuf = rbuf;
            n
        }
    }

    fn answer_all(
        &mut self,
        buf: &[u8],
        value: &[u8],
        mine: &ThreadStats,
        all: &Stats,
    ) -> (usize, u64) {
        let limits = Limits::default();
        let mut used = 0;
        let mut n = 0;
        loop {
            if self.swallow > 0 {
                let skip = self.swallow.min(buf.len() - used);
                self.swallow -= skip;
                used += skip;
                if self.swallow > 0 {
                    return (used, n);
                }
            }
            match parse(&buf[used..], &limits) {
                Parse::Incomplete { .. } => return (used, n),
                Parse::Invalid(invalid) => {
                    if invalid.reply {
                        invalid.error.encode(&mut self.wbuf);
                    }
                    used += invalid.consumed;
                    // A refused value is discarded as it arrives, never buffered.
                    self.swallow = invalid.swallow;
                    if invalid.close {
                        self.closing = true;
                        return (buf.len(), n);
                    }
                }
                Parse::Complete { request, consumed } => {
                    used += consumed;
                    n += 1;
                    if let After::Close = answer(request, value, &mut self.wbuf, mine, all) {
                        self.closing = true;
                        return (buf.len(), n);
                    }
                }
            }
        }
    }

    /// Nothing of ours is in the kernel or waiting to go there.
    pub fn idle(&self) -> bool {
        !self.sending && self.wbuf.is_empty()
    }

    pub fn flush(&mut self, ring: &mut Ring, token: Token) -> io::Result<()> {
        if self.sending || self.wbuf.is_empty() {
            return Ok(());
        }
        std::mem::swap(&mut self.wbuf, &mut self.inflight);
        self.wbuf.clear();
        self.sent = 0;
        self.push_send(ring, token)
    }

    fn push_send(&mut self, ring: &mut Ring, token: Token) -> io::Result<()> {
        self.sending = true;
        let rest = &self.inflight[self.sent..];
        // SAFETY: `inflight` is not touched while `sending` is true, and the
        // connection is dropped only when no send is in flight.
        unsafe { ring.queue_send(self.fd.as_raw_fd(), rest, 0, token) }
    }

    /// A send completed; true when more replies wait to be flushed.
    pub fn on_send(&mut self, result: i32, ring: &mut Ring, token: Token) -> io::Result<bool> {
        self.sending = false;
        if result < 0 {
            // The peer is gone: nothing more will be delivered.
            self.closing = true;
            self.wbuf.clear();
            return Ok(false);
        }
        self.sent += result as usize;
        if self.sent < self.inflight.len() {
            self.push_send(ring, token)?;
            return Ok(false);
        }
        self.inflight.clear();
        Ok(!self.wbuf.is_empty() && !self.closing)
    }
}
