//! The interface between a client thread's loop and one connection (a TCP
//! stream or a connected UDP socket): encode into it, flush it once per loop
//! turn, feed it what the kernel received.

use std::io;
use std::os::fd::RawFd;

use runtime::Ring;

use super::ctx::{Ctx, Loss, Pending};

/// Op codes of this loop's tokens.
pub const RECV: u8 = 1;
pub const SEND: u8 = 2;
pub const CANCEL: u8 = 3;

/// The connection no longer carries requests; its pending ones are lost.
#[derive(Debug)]
pub struct Broken;

pub trait Transport {
    fn fd(&self) -> RawFd;
    fn outstanding(&self) -> usize;
    /// Whether a send is in the kernel (its buffer must not move).
    fn sending(&self) -> bool;
    /// The buffer the next request is encoded into.
    fn begin(&mut self) -> &mut Vec<u8>;
    /// Ends the request begun with [`begin`](Transport::begin).
    /// `now` is when the request is queued (UDP times out from it).
    fn commit(&mut self, p: Pending, ctx: &mut Ctx, now: u64);
    /// Submits what was encoded since the last flush (if no send is in flight).
    fn flush(&mut self, ring: &mut Ring, slot: u32) -> io::Result<()>;
    /// A send completed with `result`; true when more is waiting to flush.
    fn on_send(&mut self, result: i32, ring: &mut Ring, slot: u32) -> Result<bool, Broken>;
    /// Bytes (TCP) or one datagram (UDP) arrived at `now`.
    fn on_data(&mut self, data: &[u8], ctx: &mut Ctx, now: u64) -> Result<(), Broken>;
    /// Requests older than `timeout_ns` at `now` are lost (UDP only).
    fn expire(&mut self, _now: u64, _timeout_ns: u64, _ctx: &mut Ctx) {}
    /// Every request in flight ends without a reply.
    fn fail_all(&mut self, ctx: &mut Ctx, why: Loss);
}
