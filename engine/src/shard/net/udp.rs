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

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use proto::udp as frame;
use runtime::{BufRing, Ring, Token, opcode, types};

use crate::shard::binary::Session;
use crate::shard::ops::{OP_CANCEL, OP_UDP_RECV, OP_UDP_SEND};
use crate::shard::order::ReplyQueue;
use crate::shard::slots::Slots;
use crate::shard::stats::ShardStats;
use crate::shard::stats::latency::Latency;

/// Receive buffers for datagrams: memcached requests over UDP are small (a get,
/// a short set); a larger datagram is dropped, as memcached drops what it
/// cannot read.
const UDP_BUFFERS: u16 = 128;
const UDP_BUFFER_SIZE: u32 = 16 << 10;
/// UDP requests awaiting replies from other shards or the kernel; datagrams
/// beyond this are dropped rather than queued without bound.
const MAX_PENDING: usize = 4096;
/// Source addresses whose reply budget is tracked; past this the budgets of
/// sources idle for a second are forgotten (a full bucket is the same as none).
const MAX_SOURCES: usize = 16_384;

/// The bounds on what UDP sends back (docs/security.md): reply bytes per
/// request datagram, and reply bytes per second per source address.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub max_reply: usize,
    /// Bytes per second; 0 = no rate bound.
    pub rate: u64,
}

impl Guard {
    fn burst(&self) -> f64 {
        (self.max_reply as f64 * 4.0).max(self.rate as f64)
    }
}

/// One source's reply budget.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Takes `bytes` from `source`'s budget; false when it does not have them.
fn spend(
    buckets: &mut HashMap<IpAddr, Bucket>,
    guard: Guard,
    source: IpAddr,
    bytes: usize,
    now: Instant,
) -> bool {
    if guard.rate == 0 {
        return true;
    }
    if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
        buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < 1.0);
        if buckets.len() >= MAX_SOURCES {
            buckets.clear();
        }
    }
    let burst = guard.burst();
    let b = buckets.entry(source).or_insert(Bucket {
        tokens: burst,
        at: now,
    });
    let refill = now.duration_since(b.at).as_secs_f64() * guard.rate as f64;
    b.tokens = (b.tokens + refill).min(burst);
    b.at = now;
    if b.tokens < bytes as f64 {
        return false;
    }
    b.tokens -= bytes as f64;
    true
}

/// The IP address in a sockaddr the kernel filled in.
fn source_ip(peer: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(peer.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a =
                unsafe { &*(peer as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a =
                unsafe { &*(peer as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::from(a.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

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
    /// A binary datagram in a cluster: its meta replies, answered as binary
    /// packets once all are in (shard/binary/session.rs).
    binary: Option<Box<Session>>,
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
    /// Datagrams dropped on arrival (malformed, truncated, too many pending),
    /// not yet added to the shard's counters.
    pub dropped: u64,
    guard: Guard,
    buckets: HashMap<IpAddr, Bucket>,
}

impl Udp {
    pub fn new(ring: &Ring, group: u16, fd: OwnedFd, guard: Guard) -> std::io::Result<Udp> {
        let bufs = BufRing::new(ring, group, UDP_BUFFERS, UDP_BUFFERS, UDP_BUFFER_SIZE)?;
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
            guard,
            buckets: HashMap::new(),
        })
    }

    pub fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        self.bufs.get(bid, len)
    }

    pub fn recycle(&mut self, bid: u16) {
        self.bufs.recycle(bid);
    }

    /// Gives the buffers recycled this turn back to the kernel.
    pub fn publish(&mut self) {
        self.bufs.publish();
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

    /// Gives the request a binary session.
    pub fn start_session(&mut self, slot: u32, generation: u32) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.binary.get_or_insert_with(Box::default);
        }
    }

    pub fn session(&mut self, slot: u32, generation: u32) -> Option<&mut Session> {
        self.req_mut(slot, generation)
            .and_then(|r| r.binary.as_deref_mut())
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
                binary: None,
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

    /// Whether the reply of the request in `slot` is already over the bound:
    /// the rest of its datagram need not run.
    pub fn over_limit(&self, slot: u32, generation: u32) -> bool {
        self.reqs.slot(slot).is_some_and(|r| {
            r.generation == generation && r.replies.buffered() > self.guard.max_reply
        })
    }

    /// A reply part from another shard.
    pub fn resolve(
        &mut self,
        slot: u32,
        generation: u32,
        part: u32,
        bytes: &[u8],
        latency: Option<&mut Latency>,
    ) {
        if let Some(r) = self.req_mut(slot, generation) {
            r.replies.resolve(part, bytes, latency);
            self.check_ready(slot, generation);
        }
    }

    /// End of turn: send every complete reply that is within the bounds,
    /// re-arm the receive.
    pub fn flush(&mut self, ring: &mut Ring, stats: &mut ShardStats) {
        stats.udp_dropped += std::mem::take(&mut self.dropped);
        let ready = std::mem::take(&mut self.ready);
        let now = Instant::now();
        for &slot in &ready {
            let fd = self.fd.as_raw_fd();
            let Some(r) = self.reqs.slot_mut(slot) else {
                continue;
            };
            let reply = match r.binary.as_deref_mut() {
                // Every part is in (`check_ready`): every request is answered.
                Some(session) => {
                    if !session.translate(&mut r.replies) {
                        self.reqs.remove(slot);
                        continue;
                    }
                    &session.out[..]
                }
                None => r.replies.ready(),
            };
            let datagrams = frame::split_reply(r.request_id, reply);
            let bytes = reply.len() + datagrams.len() * frame::HEADER_LEN;
            if bytes > self.guard.max_reply {
                stats.udp_replies_too_large += 1;
                self.reqs.remove(slot);
                continue;
            }
            let source = source_ip(&r.peer);
            if let Some(ip) = source
                && !spend(&mut self.buckets, self.guard, ip, bytes, now)
            {
                stats.udp_replies_rate_limited += 1;
                self.reqs.remove(slot);
                continue;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_source_gets_its_burst_then_the_rate() {
        let guard = Guard {
            max_reply: 1000,
            rate: 2000,
        };
        let (mut b, t0) = (HashMap::new(), Instant::now());
        let ip = IpAddr::from([10, 0, 0, 1]);
        // Burst: max(4 x max_reply, rate) = 4000 bytes.
        assert!(spend(&mut b, guard, ip, 2500, t0));
        assert!(spend(&mut b, guard, ip, 1500, t0));
        assert!(!spend(&mut b, guard, ip, 1, t0), "the burst is spent");
        assert!(
            spend(&mut b, guard, IpAddr::from([10, 0, 0, 2]), 4000, t0),
            "another source has its own budget"
        );
        // Half a second refills 1000 bytes.
        let t1 = t0 + Duration::from_millis(500);
        assert!(spend(&mut b, guard, ip, 1000, t1));
        assert!(!spend(&mut b, guard, ip, 10, t1));
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert!(!spend(&mut b, guard, ip, 4001, t2));
        assert!(spend(&mut b, guard, ip, 4000, t2));
        let unlimited = Guard { rate: 0, ..guard };
        assert!(spend(&mut b, unlimited, ip, usize::MAX, t2));
    }

    #[test]
    fn the_source_table_stays_bounded() {
        let guard = Guard {
            max_reply: 1000,
            rate: 1000,
        };
        let (mut b, t0) = (HashMap::new(), Instant::now());
        for i in 0..(MAX_SOURCES as u32 + 10) {
            spend(&mut b, guard, IpAddr::from(i.to_be_bytes()), 1, t0);
        }
        assert!(b.len() <= MAX_SOURCES);
    }

    #[test]
    fn source_addresses_of_both_families() {
        // SAFETY: all-zero sockaddr structs are valid values.
        let mut v4: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let a = unsafe {
                &mut *(&mut v4 as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_addr.s_addr = u32::from_be_bytes([192, 0, 2, 7]).to_be();
        }
        assert_eq!(source_ip(&v4), Some(IpAddr::from([192, 0, 2, 7])));
        // SAFETY: as above.
        let mut v6: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let ip6: std::net::Ipv6Addr = "2001:db8::9".parse().unwrap();
        {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let a = unsafe {
                &mut *(&mut v6 as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            a.sin6_addr.s6_addr = ip6.octets();
        }
        assert_eq!(source_ip(&v6), Some(IpAddr::V6(ip6)));
        // SAFETY: as above.
        let unix: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        assert_eq!(source_ip(&unix), None);
    }
}
