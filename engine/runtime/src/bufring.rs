//! A provided buffer ring: a pool of equal buffers the kernel picks from when
//! a multishot receive completes, so that no buffer is tied to an idle
//! connection.
//!
//! ```text
//!  ring entries (pinned by the kernel)        buffers
//! +------+------+------+-----+------+        +----------+----------+-----
//! | e[0] | e[1] | e[2] | ... | e[n] |  --->  |  buf 0   |  buf 1   | ...
//! +------+------+------+-----+------+        +----------+----------+-----
//!   e = { addr u64, len u32, bid u16, resv/tail u16 }; the tail lives in e[0].resv
//! ```
//! The kernel consumes entries from its head; we append returned buffers at
//! our tail and publish the tail once per loop turn.
//!
//! The kernel takes the entries in ring order, so every buffer in the ring is
//! written once per lap: a pool of 512 x 4 KiB buffers all in the ring is all
//! resident after 512 receives, even with one client. So the ring starts with
//! `first` of the `count` buffers (the rest is reserved address space, never
//! touched) and doubles at a publish after a turn that took half of them, or
//! after a receive that found none ([`BufRing::starved`]); it never shrinks.
//!
//! Only receives a reader was waiting for count. A multishot receive stays
//! armed until its cancel is processed, so a connection that has stopped
//! reading (it ran its budget with a backlog) goes on taking buffers: one
//! pipelining client took every buffer of each lap, 32, then 64, then 99 of
//! 128, and so doubled the pool to 256 with nothing short. Its caller gives
//! those back with [`BufRing::recycle_surplus`] and does not report their
//! ENOBUFS.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use memmap2::MmapMut;

use super::ring::Ring;

const IORING_UNREGISTER_PBUF_RING: libc::c_uint = 23;

/// `struct io_uring_buf_reg` from <linux/io_uring.h> (the crate keeps its copy private).
#[repr(C)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

/// A registered buffer group (see the module docs).
pub struct BufRing {
    /// A duplicate of the ring's fd: the ring cannot go away while these
    /// buffers are registered with it, whatever the drop order.
    ring_fd: OwnedFd,
    group: u16,
    mask: u16,
    buf_size: u32,
    entries: MmapMut,
    buffers: MmapMut,
    tail: u16,
    published: u16,
    /// Buffers given to the kernel so far: bids `0..active` (at most `count`).
    active: u16,
    count: u16,
    /// Buffers recycled since the last publish that a reader needed (see
    /// [`BufRing::recycle`]).
    taken: u16,
    starved: bool,
}

impl BufRing {
    /// Reserves `count` buffers of `buf_size` bytes, hands the first `first`
    /// of them to the kernel (the rest as the pool grows), and registers them
    /// as buffer group `group` of `ring`.
    pub fn new(
        ring: &Ring,
        group: u16,
        count: u16,
        first: u16,
        buf_size: u32,
    ) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer count must be a power of two <= 32768",
            ));
        }
        let entries = MmapMut::map_anon(count as usize * size_of::<BufRingEntry>())?;
        let buffers = MmapMut::map_anon(count as usize * buf_size as usize)?;
        let ring_fd = rustix_dup(ring.fd())?;
        let mut this = BufRing {
            ring_fd,
            group,
            mask: count - 1,
            buf_size,
            entries,
            buffers,
            tail: 0,
            published: 0,
            active: first.clamp(1, count),
            count,
            taken: 0,
            starved: false,
        };
        for bid in 0..this.active {
            this.push(bid);
        }
        this.publish();
        // SAFETY: the entries mapping is page aligned, holds `count` entries and
        // lives as long as `this`, whose Drop unregisters it before unmapping.
        unsafe {
            ring.raw().submitter().register_buf_ring_with_flags(
                this.entries.as_ptr() as u64,
                count,
                group,
                0,
            )?;
        }
        Ok(this)
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// The first `len` bytes of buffer `bid`, as filled by a completion.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * self.buf_size as usize;
        &self.buffers[start..start + len.min(self.buf_size as usize)]
    }

    /// The same, writable (TLS decrypts records where they arrived).
    pub fn get_mut(&mut self, bid: u16, len: usize) -> &mut [u8] {
        let start = bid as usize * self.buf_size as usize;
        &mut self.buffers[start..start + len.min(self.buf_size as usize)]
    }

    /// Buffers handed to the kernel so far.
    pub fn active(&self) -> u16 {
        self.active
    }

    /// A receive for a reader found no buffer (ENOBUFS): the pool grows at
    /// the next publish.
    pub fn starved(&mut self) {
        self.starved = true;
    }

    /// Gives buffer `bid` back to the kernel (visible after [`publish`]); a
    /// reader needed it, so it counts towards the turn's demand.
    ///
    /// [`publish`]: BufRing::publish
    pub fn recycle(&mut self, bid: u16) {
        self.taken = self.taken.saturating_add(1);
        self.push(bid);
    }

    /// Gives back a buffer that no reader was waiting for (its bytes were
    /// only kept for later): it does not make the pool grow.
    pub fn recycle_surplus(&mut self, bid: u16) {
        self.push(bid);
    }

    fn push(&mut self, bid: u16) {
        let addr = self.buffers.as_ptr() as u64 + bid as u64 * self.buf_size as u64;
        let slot = (self.tail & self.mask) as usize;
        let base = self.entries.as_mut_ptr() as *mut BufRingEntry;
        // SAFETY: `slot` < count, so the entry is inside the mapping. The kernel
        // has consumed this slot: at most `active` <= `count` buffers are ever
        // in the ring or outstanding, each bid is pushed once when the pool
        // grows to it and then recycled once per use. The tail field shares e[0]
        // but BufRingEntry's setters leave `resv` alone.
        unsafe {
            let entry = &mut *base.add(slot);
            entry.set_addr(addr);
            entry.set_len(self.buf_size);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every recycled buffer visible to the kernel, after doubling the
    /// pool if readers took half of it this turn or one found it empty.
    pub fn publish(&mut self) {
        if (self.starved || self.taken >= self.active.div_ceil(2)) && self.active < self.count {
            let grown = self.active.saturating_mul(2).min(self.count);
            for bid in self.active..grown {
                self.push(bid);
            }
            self.active = grown;
        }
        self.taken = 0;
        self.starved = false;
        if self.tail == self.published {
            return;
        }
        // SAFETY: the tail is the u16 `resv` of entry 0, inside the mapping and
        // suitably aligned; the kernel reads it with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr() as *const BufRingEntry)
                as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        let reg = BufReg {
            ring_addr: 0,
            ring_entries: 0,
            bgid: self.group,
            flags: 0,
            resv: [0; 3],
        };
        // SAFETY: io_uring_register with a valid ring fd and a properly sized
        // argument; failure only means the group is already gone.
        unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.ring_fd.as_raw_fd(),
                IORING_UNREGISTER_PBUF_RING,
                &reg as *const _ as *const libc::c_void,
                1,
            );
        }
    }
}

fn rustix_dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is a live ring fd owned by the caller's Ring.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned()
}
