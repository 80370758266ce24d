//! The key index: an open-addressed table of u32 slots, linear probing, grown by 1.25x
//! with incremental migration (no pause, no power-of-two doubling).
//!
//! ```text
//!   slot (u32):  | tag: 32 - hbits | handle: hbits |     0 = empty, 1 = tombstone
//!                  low bits of xxh3   offset/4 + 2       hbits = bits of the largest handle
//!   home slot  = bits 22..54 of hash * capacity >> 32   (any capacity, not only 2^k)
//!   (the engine routes a key to its shard by the top bits, 54..64 for up to 1024
//!   shards: a home taken from those would put a shard's keys in one part of its table)
//!
//!   growing:  [ old table ] ──8 slots per insert──► [ new table, 1.25x ]
//!             lookups try new, then old; inserts go to new; `crawl` finishes the move
//! ```
//!
//! With the tag in the spare bits of the handle (4 bits for a 1 GiB shard, 8 for 64 MiB),
//! most non-matching slots are rejected without touching the arena. A slot costs 4 bytes;
//! at loads between 0.68 and 0.85 that is 4.7-5.9 bytes per item. Migration re-reads each
//! key from the arena to rehash it; that cost falls on inserts during growth only.

/// Maximum fill (live + tombstones) before migrating, in percent.
const MAX_LOAD: usize = 85;
/// Capacity growth per migration: 5/4.
const GROW_NUM: usize = 5;
const GROW_DEN: usize = 4;
/// Old slots moved per insert while migrating; enough to finish before the new table
/// reaches MAX_LOAD (the move takes old_cap / 8 inserts, during which the new table goes
/// from 0.68 to at most 0.78).
const MIGRATE_PER_INSERT: usize = 8;
const MIN_CAPACITY: usize = 1024;
/// Most slots a table has: a [`Found`] keeps the slot in 31 bits. (A shard's handles
/// reach 32 GiB; at the smallest chunk that is far fewer items than 2^31 * 0.85.)
const MAX_SLOTS: usize = 1 << 31;
/// The home slot comes from bits 22..54 of the hash: clear of the top bits the
/// shards are chosen by (see the module comment) and of most tag bits.
const HOME_SHIFT: u32 = 22;

/// A hint to the CPU to bring the cache line at `p` in; never faults, so any
/// address is allowed.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it reads nothing architecturally and
    // cannot fault, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Zero, so that a fresh anonymous mapping is an empty table.
const EMPTY: u32 = 0;
const _: () = assert!(EMPTY == 0);
const TOMB: u32 = 1;

/// A table's slots in their own anonymous mapping rather than on the heap: the
/// pages are faulted in as slots are first written, and dropping the old table at
/// the end of a migration unmaps it, so its memory returns to the system whatever
/// the allocator's thresholds are at the time.
struct Slots {
    map: memmap2::MmapMut,
    len: usize,
}

impl Slots {
    fn zeroed(len: usize) -> Slots {
        let bytes = (len * std::mem::size_of::<u32>()).max(1);
        let map = memmap2::MmapMut::map_anon(bytes)
            .unwrap_or_else(|e| panic!("index: mmap of {bytes} bytes failed: {e}"));
        Slots { map, len }
    }
}

impl std::ops::Deref for Slots {
    type Target = [u32];
    #[inline]
    fn deref(&self) -> &[u32] {
        // SAFETY: the mapping is page-aligned (so aligned for u32), at least
        // `len * 4` bytes long, zero-filled by the kernel, and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast(), self.len) }
    }
}

impl std::ops::DerefMut for Slots {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u32] {
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast(), self.len) }
    }
}

struct Table {
    slots: Slots,
    live: usize,
    tombs: usize,
}

impl Table {
    fn new(cap: usize) -> Table {
        assert!(
            cap <= MAX_SLOTS,
            "index: {cap} slots is more than a Found can name"
        );
        Table {
            slots: Slots::zeroed(cap),
            live: 0,
            tombs: 0,
        }
    }
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((((hash >> HOME_SHIFT) & 0xffff_ffff) * self.slots.len() as u64) >> 32) as usize
    }
    #[inline]
    fn next(&self, pos: usize) -> usize {
        if pos + 1 == self.slots.len() {
            0
        } else {
            pos + 1
        }
    }
    /// Places `slot` in the first empty or tombstone slot from `hash`'s home.
    #[inline]
    fn place(&mut self, hash: u64, slot: u32) {
        let mut pos = self.home(hash);
        loop {
            let s = self.slots[pos];
            if s == EMPTY || s == TOMB {
                if s == TOMB {
                    self.tombs -= 1;
                }
                self.slots[pos] = slot;
                self.live += 1;
                return;
            }
            pos = self.next(pos);
        }
    }
    fn remove(&mut self, pos: usize) {
        self.live -= 1;
        if self.slots[self.next(pos)] == EMPTY {
            // Nothing probes past an empty slot, so this one and the tombstones right
            // before it can become empty too.
            self.slots[pos] = EMPTY;
            let mut p = pos;
            loop {
                p = if p == 0 { self.slots.len() - 1 } else { p - 1 };
                if self.slots[p] != TOMB {
                    break;
                }
                self.slots[p] = EMPTY;
                self.tombs -= 1;
            }
        } else {
            self.slots[pos] = TOMB;
            self.tombs += 1;
        }
    }
}

/// Where a key was found: its handle, its slot and which table holds the slot, in
/// one non-zero word (handles are 2 and up), so that an `Option<Found>` is 8 bytes
/// and travels in a register. As a three-field struct it went through the stack
/// between the index and the store's get, and read back whole from narrower stores
/// (a failed store-to-load forward) it cost ~3 ns of a 1k-hot get.
///
/// ```text
///   bit  63      62..32        31..0
///        in_old  slot (< 2^31)  handle (>= 2)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found(std::num::NonZeroU64);

impl Found {
    #[inline]
    fn new(in_old: bool, pos: usize, handle: u32) -> Found {
        debug_assert!(pos < MAX_SLOTS && handle >= 2);
        let w = (in_old as u64) << 63 | (pos as u64) << 32 | handle as u64;
        Found(std::num::NonZeroU64::new(w).expect("handles are never 0"))
    }

    #[inline]
    pub(crate) fn handle(self) -> u32 {
        self.0.get() as u32
    }

    #[inline]
    fn pos(self) -> usize {
        (self.0.get() >> 32) as usize & (MAX_SLOTS - 1)
    }

    #[inline]
    fn in_old(self) -> bool {
        self.0.get() >> 63 != 0
    }

    /// The same slot after [`Index::replace`] pointed it at `handle`.
    #[inline]
    pub(crate) fn with_handle(self, handle: u32) -> Found {
        Found::new(self.in_old(), self.pos(), handle)
    }
}

pub(crate) struct Index {
    cur: Table,
    old: Option<Table>,
    migrate_pos: usize,
    hmask: u32,
    /// Changes whenever a `Found` may no longer be valid (entries moved by migration).
    pub(crate) epoch: u64,
}

impl Index {
    /// `max_handle` is the largest handle the arena can produce.
    pub(crate) fn new(max_handle: u32) -> Index {
        Index::with_capacity(max_handle, MIN_CAPACITY)
    }

    /// An empty index of `cap` slots (warm restart: the size the last run had grown to).
    pub(crate) fn with_capacity(max_handle: u32, cap: usize) -> Index {
        let hbits = 32 - max_handle.leading_zeros();
        let hmask = if hbits >= 32 {
            u32::MAX
        } else {
            (1u32 << hbits) - 1
        };
        Index {
            cur: Table::new(cap.clamp(
                MIN_CAPACITY,
                (max_handle as usize).clamp(MIN_CAPACITY, MAX_SLOTS),
            )),
            old: None,
            migrate_pos: 0,
            hmask,
            epoch: 0,
        }
    }

    #[inline]
    fn tag(&self, hash: u64) -> u32 {
        hash as u32 & !self.hmask
    }

    /// Slots a lookup of `hash` that misses reads in the current table (tests).
    #[cfg(test)]
    pub(crate) fn miss_probe_len(&self, hash: u64) -> usize {
        let t = &self.cur;
        let mut pos = t.home(hash);
        let mut n = 1;
        while t.slots[pos] != EMPTY {
            pos = t.next(pos);
            n += 1;
        }
        n
    }

    /// Slots of the current table.
    pub(crate) fn capacity(&self) -> usize {
        self.cur.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.cur.live + self.old.as_ref().map_or(0, |t| t.live)
    }

    /// Bytes of slot memory held now (both tables while migrating).
    pub(crate) fn bytes(&self) -> usize {
        4 * (self.cur.slots.len() + self.old.as_ref().map_or(0, |t| t.slots.len()))
    }

    pub(crate) fn migrating(&self) -> bool {
        self.old.is_some()
    }

    /// Hints that `hash`'s home slot will be read soon (both tables while migrating).
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        prefetch(
            self.cur
                .slots
                .as_ptr()
                .wrapping_add(self.cur.home(hash))
                .cast(),
        );
        if let Some(old) = &self.old {
            prefetch(old.slots.as_ptr().wrapping_add(old.home(hash)).cast());
        }
    }

    /// Calls `f` with every handle whose tag matches `hash` along its probe
    /// run in the current table (at most `limit`), without comparing keys:
    /// the candidates to prefetch.
    #[inline]
    pub(crate) fn candidates(&self, hash: u64, limit: usize, mut f: impl FnMut(u32)) {
        let want = self.tag(hash);
        let t = &self.cur;
        let mut pos = t.home(hash);
        let mut seen = 0;
        for _ in 0..t.slots.len() {
            let s = t.slots[pos];
            if s == EMPTY || seen == limit {
                return;
            }
            if s != TOMB && s & !self.hmask == want {
                f(s & self.hmask);
                seen += 1;
            }
            pos = t.next(pos);
        }
    }

    /// Finds the slot of the item whose key matches (`eq` compares the key at a handle).
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<Found> {
        let want = self.tag(hash);
        let mut table = &self.cur;
        let mut in_old = false;
        loop {
            let mut pos = table.home(hash);
            loop {
                let s = table.slots[pos];
                if s == EMPTY {
                    break;
                }
                if s != TOMB && s & !self.hmask == want && eq(s & self.hmask) {
                    return Some(Found::new(in_old, pos, s & self.hmask));
                }
                pos = table.next(pos);
            }
            match &self.old {
                Some(old) if !in_old => {
                    table = old;
                    in_old = true;
                }
                _ => return None,
            }
        }
    }

    /// Points an existing entry at a new handle (same key, so same hash and tag).
    #[inline]
    pub(crate) fn replace(&mut self, at: Found, handle: u32) {
        let t = if at.in_old() {
            self.old.as_mut().expect("old table")
        } else {
            &mut self.cur
        };
        let s = &mut t.slots[at.pos()];
        *s = (*s & !self.hmask) | handle;
    }

    #[inline]
    pub(crate) fn remove(&mut self, at: Found) {
        let t = if at.in_old() {
            self.old.as_mut().expect("old table")
        } else {
            &mut self.cur
        };
        t.remove(at.pos());
    }

    /// Inserts a key known to be absent. `rehash` gives the hash of the key at a handle;
    /// it is called for entries moved by migration.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, handle: u32, rehash: impl FnMut(u32) -> u64) {
        let slot = self.tag(hash) | handle;
        self.cur.place(hash, slot);
        if self.old.is_some() {
            self.migrate(MIGRATE_PER_INSERT, rehash);
        } else if (self.cur.live + self.cur.tombs) * 100 > self.cur.slots.len() * MAX_LOAD {
            self.start_migration();
        }
    }

    fn start_migration(&mut self) {
        let cap = self.cur.slots.len();
        // Mostly tombstones: rebuild at the same size; otherwise grow.
        let new_cap = if self.cur.live * 100 > cap * 60 {
            (cap * GROW_NUM / GROW_DEN).clamp(MIN_CAPACITY, MAX_SLOTS)
        } else {
            cap
        };
        let old = std::mem::replace(&mut self.cur, Table::new(new_cap));
        self.old = Some(old);
        self.migrate_pos = 0;
        self.epoch += 1;
    }

    /// Moves up to `n` old slots into the current table. Returns whether work remains.
    pub(crate) fn migrate(&mut self, n: usize, mut rehash: impl FnMut(u32) -> u64) -> bool {
        let Some(old) = self.old.as_mut() else {
            return false;
        };
        let end = (self.migrate_pos + n).min(old.slots.len());
        let mut moved = false;
        for pos in self.migrate_pos..end {
            let s = old.slots[pos];
            if s != EMPTY && s != TOMB {
                let h = s & self.hmask;
                self.cur.place(rehash(h), s);
                old.live -= 1;
                // A tombstone keeps later probes in the old table going past this slot.
                old.slots[pos] = TOMB;
                old.tombs += 1;
                moved = true;
            }
        }
        self.migrate_pos = end;
        if moved {
            self.epoch += 1;
        }
        if end == old.slots.len() {
            self.old = None;
            self.epoch += 1;
            if (self.cur.live + self.cur.tombs) * 100 > self.cur.slots.len() * MAX_LOAD {
                self.start_migration();
            }
            return self.old.is_some();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_found_is_one_word_and_keeps_its_three_parts() {
        assert_eq!(std::mem::size_of::<Option<Found>>(), 8);
        for (in_old, pos, handle) in [
            (false, 0, 2),
            (true, 0, 2),
            (false, MAX_SLOTS - 1, u32::MAX),
            (true, MAX_SLOTS - 1, u32::MAX),
            (true, 12_345, 0x8000_0000),
        ] {
            let f = Found::new(in_old, pos, handle);
            assert_eq!((f.in_old(), f.pos(), f.handle()), (in_old, pos, handle));
            let g = f.with_handle(7);
            assert_eq!((g.in_old(), g.pos(), g.handle()), (in_old, pos, 7));
        }
    }
}
