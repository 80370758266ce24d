//! Positional policies: a hand sweeps the chunks of a class's pages in place, so items
//! carry no links, only bits in their policy byte.
//!
//! ```text
//!   class pages:  [p3: c0 c1 c2 ... ][p9: c0 c1 ... ][p4: c0 ... bump)
//!                           ^hand
//!   clock   bit 0 = referenced: clear and pass, or evict
//!   lfu     8-bit counter: halve and pass, or evict at 0
//!   s3fifo  main queue: 2-bit frequency, decrement and pass, or evict;
//!           small queue (bit 2): a FIFO ring of handles, ~10% of the class's items
//!   random  a random carved chunk of a random page
//! ```
//!
//! S3-FIFO's small ring is lazy: deleting an item leaves its handle in the ring, and
//! entries are checked when popped (still carved in this class, still in the small
//! queue). A chunk freed and refilled by a new small item leaves a stale entry that
//! ages the newcomer early; that only costs a little hit ratio, never correctness.

use std::collections::VecDeque;

use super::super::arena::Arena;
use super::super::item::ItemPtr;
use super::super::slab::{NONE, Slabs};

#[derive(Clone, Copy, Default)]
pub(crate) struct Hand {
    page_pos: u32,
    chunk: u32,
}

#[inline]
fn ptr(arena: &Arena, h: u32) -> ItemPtr {
    ItemPtr(arena.item(h))
}

impl Hand {
    /// Position of the hand (warm restart).
    pub(crate) fn words(self) -> [u32; 2] {
        [self.page_pos, self.chunk]
    }

    pub(crate) fn from_words(w: [u32; 2]) -> Hand {
        Hand {
            page_pos: w[0],
            chunk: w[1],
        }
    }

    /// Returns the next occupied chunk at or after the hand and moves the hand past it.
    /// Gives up after `limit` chunks (free ones included).
    pub(crate) fn next_item(
        &mut self,
        arena: &Arena,
        slabs: &Slabs,
        cls: usize,
        limit: usize,
    ) -> Option<u32> {
        let c = &slabs.classes[cls];
        if c.pages.is_empty() {
            return None;
        }
        for _ in 0..limit {
            if self.page_pos as usize >= c.pages.len() {
                self.page_pos = 0;
                self.chunk = 0;
            }
            let page = c.pages[self.page_pos as usize];
            if self.chunk >= c.carved(page) {
                self.page_pos += 1;
                self.chunk = 0;
                continue;
            }
            let h = slabs.chunk_handle(page, self.chunk, c.size);
            self.chunk += 1;
            if !ptr(arena, h).is_free() {
                return Some(h);
            }
        }
        None
    }
}

/// Sweep limit: two full turns of the class.
pub(crate) fn sweep_limit(slabs: &Slabs, cls: usize) -> usize {
    let c = &slabs.classes[cls];
    2 * c.pages.len() * c.per_page as usize + 1
}

pub(crate) const CLOCK_REF: u8 = 1;

/// CLOCK: first unreferenced item from the hand.
pub(crate) fn clock_victim(
    hand: &mut Hand,
    arena: &Arena,
    slabs: &Slabs,
    cls: usize,
    pinned: u32,
) -> u32 {
    let limit = sweep_limit(slabs, cls);
    let mut steps = 0;
    while let Some(h) = hand.next_item(arena, slabs, cls, limit) {
        steps += 1;
        let it = ptr(arena, h);
        if it.policy() & CLOCK_REF != 0 {
            it.set_policy(it.policy() & !CLOCK_REF);
        } else if h != pinned {
            return h;
        }
        if steps > limit {
            break;
        }
    }
    NONE
}

/// LFU counter given to new items: they survive one pass of the hand unless hit.
pub(crate) const LFU_INIT: u8 = 2;

/// LFU hit: logarithmic increment (probability 1 / (1 + counter / 2)), saturating.
#[inline]
pub(crate) fn lfu_next(c: u8, rng: &mut u64) -> u8 {
    if c == u8::MAX || !next_rand(rng).is_multiple_of(1 + c as u64 / 2) {
        c
    } else {
        c + 1
    }
}

#[inline]
pub(crate) fn lfu_hit(it: ItemPtr, rng: &mut u64) {
    it.set_policy(lfu_next(it.policy(), rng));
}

/// LFU: the hand halves counters as it passes (decay) and evicts the first item at 0.
/// Halving bounds the sweep at 8 turns even when every counter is saturated.
pub(crate) fn lfu_victim(
    hand: &mut Hand,
    arena: &Arena,
    slabs: &Slabs,
    cls: usize,
    pinned: u32,
) -> u32 {
    let limit = sweep_limit(slabs, cls) * 5;
    let mut steps = 0;
    while let Some(h) = hand.next_item(arena, slabs, cls, limit) {
        steps += 1;
        let it = ptr(arena, h);
        let c = it.policy();
        if c > 0 {
            it.set_policy(c >> 1);
        } else if h != pinned {
            return h;
        }
        if steps > limit {
            break;
        }
    }
    NONE
}

/// RANDOM: a random carved chunk that holds an item.
pub(crate) fn random_victim(
    hand: &mut Hand,
    arena: &Arena,
    slabs: &Slabs,
    cls: usize,
    pinned: u32,
    rng: &mut u64,
) -> u32 {
    let c = &slabs.classes[cls];
    if c.pages.is_empty() {
        return NONE;
    }
    for _ in 0..64 {
        let page = c.pages[(next_rand(rng) % c.pages.len() as u64) as usize];
        let carved = c.carved(page);
        if carved == 0 {
            continue;
        }
        let idx = (next_rand(rng) % carved as u64) as u32;
        let h = slabs.chunk_handle(page, idx, c.size);
        if h != pinned && !ptr(arena, h).is_free() {
            return h;
        }
    }
    // Mostly free chunks: fall back to a sweep.
    let limit = sweep_limit(slabs, cls);
    while let Some(h) = hand.next_item(arena, slabs, cls, limit) {
        if h != pinned {
            return h;
        }
    }
    NONE
}

/// xorshift64*: cheap, deterministic (seeded per store) randomness for policies.
#[inline]
pub(crate) fn next_rand(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

// ---- S3-FIFO ----------------------------------------------------------------------

pub(crate) const S3_FREQ: u8 = 3;
pub(crate) const S3_SMALL: u8 = 4;
/// Items leave the small queue for main when hit at least this often. The paper's
/// "freq > 1" means twice; on our zipf 0.9/1.1 runs (benches/src/bin/hit_ratio.rs) once
/// and twice were within 0.001 of each other, and once keeps the order test simple.
pub(crate) const S3_PROMOTE: u8 = 1;
/// Small queue share of a class's items, in percent.
const S3_SMALL_PERCENT: u32 = 10;

#[derive(Default)]
pub(crate) struct Small {
    ring: VecDeque<u32>,
    pub(crate) count: u32,
}

impl Small {
    /// The ring's entries, oldest first (warm restart).
    pub(crate) fn entries(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.ring.iter().copied()
    }

    pub(crate) fn from_entries(ring: Vec<u32>, count: u32) -> Small {
        Small {
            ring: ring.into(),
            count,
        }
    }

    pub(crate) fn push(&mut self, h: u32) {
        self.ring.push_back(h);
        self.count += 1;
    }

    /// While the arena still has fresh pages nothing is evicted, so the small queue would
    /// grow with every insert: keep it at its share by moving its oldest items to main
    /// (a filter is only needed once memory is full).
    pub(crate) fn drain_excess(&mut self, arena: &Arena, slabs: &Slabs, cls: usize, items: u32) {
        let target = items * S3_SMALL_PERCENT / 100 + 64;
        while self.count > target {
            let Some(h) = self.ring.pop_front() else {
                self.count = 0;
                return;
            };
            if !slabs.valid_in(h, cls) {
                continue;
            }
            let it = ptr(arena, h);
            if !it.is_free() && it.policy() & S3_SMALL != 0 {
                it.set_policy(it.policy() & S3_FREQ);
                self.count -= 1;
            }
        }
    }

    /// Bytes the ring holds (charged against the arena's pages).
    pub(crate) fn bytes(&self) -> usize {
        self.ring.capacity() * 4
    }

    /// Drops entries that no longer name a small item, when stale entries pile up.
    fn maybe_compact(&mut self, arena: &Arena, slabs: &Slabs, cls: usize) {
        if self.ring.len() > 2 * self.count as usize + 1024 {
            self.ring.retain(|&h| {
                slabs.valid_in(h, cls) && {
                    let it = ptr(arena, h);
                    !it.is_free() && it.policy() & S3_SMALL != 0
                }
            });
        }
    }
}

/// Ghost queue: fingerprints of keys evicted from the small queue, in 4-way buckets
/// overwritten round-robin (an approximate FIFO of bounded size).
pub(crate) struct Ghost {
    slots: Vec<u32>,
    mask: usize,
    turn: usize,
}

impl Ghost {
    /// Forgets every fingerprint.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(0);
    }

    pub(crate) fn new(entries: usize) -> Ghost {
        // Largest power of two that fits the budget.
        let n = (entries.max(64) + 1).next_power_of_two() / 2;
        Ghost {
            slots: vec![0; n],
            mask: n / 4 - 1,
            turn: 0,
        }
    }
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * 4
    }
    /// The fingerprint slots and the replacement turn (warm restart).
    pub(crate) fn words(&self) -> (&[u32], u32) {
        (&self.slots, self.turn as u32 & 3)
    }
    /// Puts back what [`Ghost::words`] gave, for a ghost of the same size; false
    /// (and nothing changed) when the sizes differ.
    pub(crate) fn restore(&mut self, slots: Vec<u32>, turn: u32) -> bool {
        if slots.len() != self.slots.len() {
            return false;
        }
        self.slots = slots;
        self.turn = turn as usize & 3;
        true
    }
    #[inline]
    fn bucket(&self, fp: u32) -> usize {
        ((fp.wrapping_mul(0x9e37_79b9) >> 7) as usize & self.mask) * 4
    }
    pub(crate) fn insert(&mut self, fp: u32) {
        let fp = fp.max(1);
        let b = self.bucket(fp);
        let slot = match self.slots[b..b + 4].iter().position(|&s| s == 0) {
            Some(i) => i,
            None => {
                self.turn = self.turn.wrapping_add(1);
                self.turn & 3
            }
        };
        self.slots[b + slot] = fp;
    }
    /// Whether `fp` was recently evicted; removes it.
    pub(crate) fn take(&mut self, fp: u32) -> bool {
        let fp = fp.max(1);
        let b = self.bucket(fp);
        match self.slots[b..b + 4].iter().position(|&s| s == fp) {
            Some(i) => {
                self.slots[b + i] = 0;
                true
            }
            None => false,
        }
    }
}

/// What S3-FIFO decided for one eviction.
pub(crate) enum S3Pick {
    /// Evict this item; it left from the small queue (record it in the ghost).
    FromSmall(u32),
    /// Evict this item from main.
    FromMain(u32),
    None,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn s3_victim(
    small: &mut Small,
    hand: &mut Hand,
    arena: &Arena,
    slabs: &Slabs,
    cls: usize,
    items: u32,
    pinned: u32,
) -> S3Pick {
    small.maybe_compact(arena, slabs, cls);
    let target = (items * S3_SMALL_PERCENT / 100).max(1);
    let limit = sweep_limit(slabs, cls);
    let mut budget = limit + small.ring.len() + 8;
    while budget > 0 {
        budget -= 1;
        let main = items - small.count;
        if small.count > target || (main == 0 && small.count > 0) {
            let Some(h) = small.ring.pop_front() else {
                // Every small item lost its entry (cannot happen: each has one); recount.
                small.count = 0;
                continue;
            };
            if !slabs.valid_in(h, cls) {
                continue;
            }
            let it = ptr(arena, h);
            if it.is_free() || it.policy() & S3_SMALL == 0 {
                continue;
            }
            if h == pinned {
                small.ring.push_back(h);
                continue;
            }
            if it.policy() & S3_FREQ >= S3_PROMOTE {
                it.set_policy(0);
                small.count -= 1;
                continue;
            }
            return S3Pick::FromSmall(h);
        }
        let Some(h) = hand.next_item(arena, slabs, cls, limit) else {
            break;
        };
        let it = ptr(arena, h);
        let p = it.policy();
        if p & S3_SMALL != 0 {
            continue;
        }
        if p & S3_FREQ > 0 {
            it.set_policy(p - 1);
        } else if h != pinned {
            return S3Pick::FromMain(h);
        }
    }
    S3Pick::None
}
