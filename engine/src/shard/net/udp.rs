//! memcached over UDP on a shard: one SO_REUSEPORT socket per shard, a
//! multishot recvmsg into its own small buffer pool, each datagram's requests
//! handled like a connection's, and the reply cut into numbered datagrams
//! (8-byte frame header each) sent back to the sender.
//!
//! The requests themselves go through the same request path as a
//! connection's (`shard::request`); this file is the socket's side.
//!
//! A UDP request lives in a boxed slot so that the peer address and the
//! datagrams the kernel is sending from never move.

use std::os::fd::{AsRawFd, OwnedFd};

use proto::udp as frame;
use runtime::{BufRing, Ring, Token, opcode, types};

use crate::shard::ops::{OP_CANCEL, OP_UDP_RECV, OP_UDP_SEND};
use crate::shard::order::ReplyQueue;
use crate::shard::slots::Slots;

/// Receive buffers for datagrams: memcached requests over UDP are small (a get,
/// a short set); a larger datagram is dropped, as memcached drops what it
/// cannot read.
const UDP_BUFFERS: u16 = 128;
const UDP_BUFFER_SIZE: u32 = 16 << 10;
/// UDP requests awaiting replies from other shards or the kernel; datagrams
/// beyond this are dropped rather than queued without bound.
const MAX_PENDING: usize = 4096;

struct UdpReq {
    generation: u32,
    peer: libc::sockaddr_storage,
    peer_len: libc::socklen_t,
    request_id: u16,
    replies: ReplyQueue,
    /// The reply's datagrams, header and payload each, back to back.
    frames: Vec<u8>,
    /// Sends in flight.
    sends: usize,
    /// All requests of the datagram have been handled.
    parsed: bool,
}

pub struct Udp {
    fd: OwnedFd,
    bufs: BufRing,
    msghdr: Box<libc::msghdr>,
    armed: bool,
    stopping: bool,
    reqs: Slots<Box<UdpReq>>,
    /// Requests whose reply is complete, to send at the end of the turn.
    ready: Vec<u32>,
    pub dropped: u64,
}

impl Udp {
    pub fn new(ring: &Ring, group: u16, fd: OwnedFd) -> std::io::Result<Udp> {
        let bufs = BufRing::new(ring, group, UDP_BUFFERS, UDP_BUFFER_SIZE)?;
        // SAFETY: an all-zero msghdr is valid; only the name length matters
        // to multishot recvmsg, which uses it as a template.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        Ok(Udp {
            fd,
            bufs,
            msghdr,
            armed: false,
            stopping: false,
            reqs: Slots::default(),
            ready: Vec::new(),
            dropped: 0,
        })
    }

    pub fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        self.bufs.get(bid, len)
    }

    pub fn recycle(&mut self, bid: u16) {
        self.bufs.recycle(bid);
    }

    pub fn arm(&mut self, ring: &mut Ring) {
        if self.armed || self.stopping {
            return;
        }
        let entry = opcode::RecvMsgMulti::new(
            types::Fd(self.fd.as_raw_fd()),
            &*self.msghdr,
            self.bufs.group(),
        )
        .build()
        .user_data(Token::op(OP_UDP_RECV).to_user_data());
        // SAFETY: the msghdr is boxed and lives as long as `self`; received
        // data goes into provided buffers only.
        if unsafe { ring.push(&entry) }.is_ok() {
            self.armed = true;
        }
    }

    pub fn stop(&mut self, ring: &mut Ring) {
        self.stopping = true;
        if self.armed {
            let _ = ring.queue_cancel(Token::op(OP_UDP_RECV), Token::op(OP_CANCEL));
        }
    }

    pub fn queue(&mut self, slot: u32, generation: u32) -> Option<&mut ReplyQueue> {
        self.req_mut(slot, generation).map(|r| &mut r.replies)
    }

    fn req_mut(&mut self, slot: u32, generation: u32) -> Option<&mut UdpReq> {
        self.reqs.get_mut(slot, generation).map(|r| &mut **r)
    }

    /// A slot for a datagram's request from `peer`; `None` (and counted as
    /// dropped) when too many are pending or the address does not fit.
    pub fn insert(&mut self, peer: &[u8], request_id: u16) -> Option<(u32, u32)> {
        if self.reqs.len() >= MAX_PENDING || peer.len() > size_of::<libc::sockaddr_storage>() {
            self.dropped += 1;
            return None;
        }
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: `peer.len()` <= size_of::<sockaddr_storage>() (checked above)
        // and both regions are valid and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                peer.as_ptr(),
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                peer.len(),
            );
        }
        let peer_len = peer.len() as libc::socklen_t;
        Some(self.reqs.insert(|generation| {
            Box::new(UdpReq {
                generation,
                peer: storage,
                peer_len,
                request_id,
                replies: ReplyQueue::default(),
                frames: Vec::new(),
                sends: 0,
                parsed: false,
            })
        }))
    }

    fn release(&mut self, slot: u32) {
        self.reqs.remove(slot);
    }

    /// Marks the request's reply as complete if nothing is awaited any more.
    pub fn check_ready(&mut self, slot: u32, generation: u32) {
        if let Some(r) = self.req_mut(slot, generation)
            && r.parsed
            && r.replies.awaiting() == 0
        {
            self.ready.push(slot);
        }
    }

    /// A reply part from another shard.
    pub fn resolve(&mut self, slot: u32, generation: u32, part: u32, bytes: &[u8]) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.replies.resolve(part, bytes);
            self.check_ready(slot, generation);
        }
    }

    /// End of turn: send every complete reply, re-arm the receive.
    pub fn flush(&mut self, ring: &mut Ring) {
        let ready = std::mem::take(&mut self.ready);
        for &slot in &ready {
            let fd = self.fd.as_raw_fd();
            let Some(r) = self.reqs.slot_mut(slot) else {
                continue;
            };
            let reply = r.replies.ready();
            let datagrams = frame::split_reply(r.request_id, reply);
            r.frames.clear();
            r.frames
                .reserve_exact(reply.len() + datagrams.len() * frame::HEADER_LEN);
            let mut lens = Vec::with_capacity(datagrams.len());
            for (header, chunk) in datagrams {
                r.frames.extend_from_slice(&header);
                r.frames.extend_from_slice(chunk);
                lens.push(header.len() + chunk.len());
            }
            let mut offset = 0;
            for len in lens {
                let entry =
                    opcode::Send::new(types::Fd(fd), r.frames[offset..].as_ptr(), len as u32)
                        .dest_addr((&r.peer as *const libc::sockaddr_storage).cast())
                        .dest_addr_len(r.peer_len)
                        .build()
                        .user_data(Token::new(OP_UDP_SEND, slot, r.generation).to_user_data());
                // SAFETY: `frames` and `peer` live in a boxed request that is
                // freed only when its last send has completed, and `frames` is
                // not written while sends are in flight.
                if unsafe { ring.push(&entry) }.is_ok() {
                    r.sends += 1;
                }
                offset += len;
            }
            if r.sends == 0 {
                self.release(slot);
            }
        }
        self.ready = ready;
        self.ready.clear();
        self.arm(ring);
    }

    pub fn on_send(&mut self, slot: u32, generation: u32) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.sends -= 1;
            if r.sends == 0 {
                self.release(slot);
            }
        }
    }

    /// A received datagram (with its recvmsg header), parsed:
    /// its request id, its requests, and a slot for its reply. `None` for a
    /// truncated or malformed datagram (counted as dropped) or when too many
    /// requests are pending.
    pub fn accept_datagram(&mut self, buffer: &[u8]) -> Option<Datagram> {
        let Ok(msg) = types::RecvMsgOut::parse(buffer, &self.msghdr) else {
            return None;
        };
        if msg.is_payload_truncated() || msg.is_name_data_truncated() {
            self.dropped += 1;
            return None;
        }
        let Ok((request_id, body)) = frame::request_payload(msg.payload_data()) else {
            self.dropped += 1;
            return None;
        };
        let body_at = body.as_ptr() as usize - buffer.as_ptr() as usize;
        let body_len = body.len();
        let (slot, generation) = self.insert(msg.name_data(), request_id)?;
        Some(Datagram {
            slot,
            generation,
            body: body_at..body_at + body_len,
        })
    }

    /// Every request of the datagram in `slot` has been handled.
    pub fn parsed(&mut self, slot: u32, generation: u32) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.parsed = true;
        }
        self.check_ready(slot, generation);
    }

    /// The multishot receive completed with `result`.
    pub fn on_recv_done(&mut self, result: i32, more: bool) {
        if !more {
            self.armed = false;
            if result < 0 && -result != libc::ENOBUFS && -result != libc::ECANCELED {
                tracing::debug!(
                    "udp receive ended: {}",
                    std::io::Error::from_raw_os_error(-result)
                );
            }
        }
    }
}

/// A datagram accepted for handling: its reply slot and where its requests
/// are in the receive buffer.
pub struct Datagram {
    pub slot: u32,
    pub generation: u32,
    pub body: std::ops::Range<usize>,
}
