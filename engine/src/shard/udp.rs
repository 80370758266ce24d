//! memcached over UDP on a shard: one SO_REUSEPORT socket per shard, a
//! multishot recvmsg into its own small buffer pool, each datagram's requests
//! handled like a connection's, and the reply cut into numbered datagrams
//! (8-byte frame header each) sent back to the sender.
//!
//! A UDP request lives in a boxed slot so that the peer address and the
//! datagrams the kernel is sending from never move.

use std::os::fd::{AsRawFd, OwnedFd};

use proto::{Parse, udp as frame};

use super::input::{Client, Handled};
use super::order::ReplyQueue;
use super::{Core, OP_UDP_RECV, OP_UDP_SEND};
use runtime::{BufRing, Ring, Token, next_generation, opcode, types};

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

pub(super) struct Udp {
    fd: OwnedFd,
    bufs: BufRing,
    msghdr: Box<libc::msghdr>,
    armed: bool,
    stopping: bool,
    reqs: Vec<Option<Box<UdpReq>>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    live: usize,
    /// Requests whose reply is complete, to send at the end of the turn.
    ready: Vec<u32>,
    pub dropped: u64,
}

impl Udp {
    pub(super) fn new(ring: &Ring, group: u16, fd: OwnedFd) -> std::io::Result<Udp> {
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
            reqs: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            live: 0,
            ready: Vec::new(),
            dropped: 0,
        })
    }

    pub(super) fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        self.bufs.get(bid, len)
    }

    pub(super) fn recycle(&mut self, bid: u16) {
        self.bufs.recycle(bid);
    }

    pub(super) fn arm(&mut self, ring: &mut Ring) {
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

    pub(super) fn stop(&mut self, ring: &mut Ring) {
        self.stopping = true;
        if self.armed {
            let _ = ring.queue_cancel(Token::op(OP_UDP_RECV), Token::op(super::OP_CANCEL));
        }
    }

    pub(super) fn queue(&mut self, slot: u32, generation: u32) -> Option<&mut ReplyQueue> {
        self.req_mut(slot, generation).map(|r| &mut r.replies)
    }

    fn req_mut(&mut self, slot: u32, generation: u32) -> Option<&mut UdpReq> {
        self.reqs
            .get_mut(slot as usize)?
            .as_deref_mut()
            .filter(|r| r.generation == generation)
    }

    fn insert(&mut self, peer: &[u8], request_id: u16) -> Option<(u32, u32)> {
        if self.live >= MAX_PENDING || peer.len() > size_of::<libc::sockaddr_storage>() {
            self.dropped += 1;
            return None;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.reqs.push(None);
                self.generations.push(0);
                (self.reqs.len() - 1) as u32
            }
        };
        let generation = next_generation(self.generations[slot as usize]);
        self.generations[slot as usize] = generation;
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
        self.reqs[slot as usize] = Some(Box::new(UdpReq {
            generation,
            peer: storage,
            peer_len: peer.len() as libc::socklen_t,
            request_id,
            replies: ReplyQueue::default(),
            frames: Vec::new(),
            sends: 0,
            parsed: false,
        }));
        self.live += 1;
        Some((slot, generation))
    }

    fn release(&mut self, slot: u32) {
        if self.reqs[slot as usize].take().is_some() {
            self.free.push(slot);
            self.live -= 1;
        }
    }

    /// Marks the request's reply as complete if nothing is awaited any more.
    fn check_ready(&mut self, slot: u32, generation: u32) {
        if let Some(r) = self.req_mut(slot, generation)
            && r.parsed
            && r.replies.awaiting() == 0
        {
            self.ready.push(slot);
        }
    }

    /// A reply part from another shard.
    pub(super) fn resolve(&mut self, slot: u32, generation: u32, part: u32, bytes: &[u8]) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.replies.resolve(part, bytes);
            self.check_ready(slot, generation);
        }
    }

    /// End of turn: send every complete reply, re-arm the receive.
    pub(super) fn flush(&mut self, ring: &mut Ring) {
        let ready = std::mem::take(&mut self.ready);
        for &slot in &ready {
            let fd = self.fd.as_raw_fd();
            let Some(r) = self
                .reqs
                .get_mut(slot as usize)
                .and_then(|r| r.as_deref_mut())
            else {
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

    pub(super) fn on_send(&mut self, slot: u32, generation: u32) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.sends -= 1;
            if r.sends == 0 {
                self.release(slot);
            }
        }
    }
}

impl Core {
    /// One datagram from the multishot recvmsg (with its recvmsg header).
    pub(super) fn on_udp_datagram(&mut self, buffer: &[u8]) {
        let Some(udp) = self.udp.as_mut() else { return };
        let Ok(msg) = types::RecvMsgOut::parse(buffer, &udp.msghdr) else {
            return;
        };
        if msg.is_payload_truncated() || msg.is_name_data_truncated() {
            udp.dropped += 1;
            return;
        }
        let Ok((request_id, body)) = frame::request_payload(msg.payload_data()) else {
            udp.dropped += 1;
            return;
        };
        let Some((slot, generation)) = udp.insert(msg.name_data(), request_id) else {
            return;
        };
        self.stats.udp_requests += 1;
        let client = Client::Udp { slot, generation };
        let mut pos = 0;
        while pos < body.len() {
            match proto::parse(&body[pos..], &self.limits) {
                Parse::Complete { request, consumed } => {
                    let raw = &body[pos..pos + consumed];
                    match self.handle(client, request, raw) {
                        Handled::Done => pos += consumed,
                        // A full channel: drop the rest, as a busy memcached drops datagrams.
                        Handled::Stall | Handled::Close => break,
                    }
                }
                // A request cut short: nothing more can come for it.
                Parse::Incomplete { .. } => break,
                Parse::Invalid(invalid) => {
                    if invalid.reply
                        && let Some(q) = self.udp.as_mut().and_then(|u| u.queue(slot, generation))
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
        if let Some(udp) = self.udp.as_mut() {
            if let Some(r) = udp.req_mut(slot, generation) {
                r.parsed = true;
            }
            udp.check_ready(slot, generation);
        }
    }

    pub(super) fn on_udp_recv_done(&mut self, result: i32, more: bool) {
        if let Some(udp) = self.udp.as_mut()
            && !more
        {
            udp.armed = false;
            if result < 0 && -result != libc::ENOBUFS && -result != libc::ECANCELED {
                tracing::debug!(
                    shard = self.id,
                    "udp receive ended: {}",
                    std::io::Error::from_raw_os_error(-result)
                );
            }
        }
    }

    pub(super) fn on_udp_send(&mut self, t: Token, _result: i32) {
        if let Some(udp) = self.udp.as_mut() {
            udp.on_send(t.slot, t.generation);
        }
    }
}
