//! List policies: segmented LRU (hot/warm/cold, as memcached's `-o modern`) and FIFO.
//! Both keep per-class doubly linked lists of u32 handles in the item's link words.
//!
//! ```text
//!   new ──► HOT ──tail, inactive──► COLD ──tail──► evicted
//!            │ tail, active            ▲  │ hit when already fetched (active)
//!            ▼                          │  ▼
//!           WARM ◄──tail, active (stays)┘ WARM head
//!            └──tail, inactive──► COLD
//!   HOT is capped at 20% of the class's items, WARM at 40%; COLD is the rest.
//! ```
//! Policy byte: bits 0-1 segment, bit 2 active.

use super::super::arena::Arena;
use super::super::item::ItemPtr;
use super::super::slab::NONE;

pub(crate) const HOT: u8 = 0;
pub(crate) const WARM: u8 = 1;
pub(crate) const COLD: u8 = 2;
const ACTIVE: u8 = 4;
const HOT_PERCENT: u32 = 20;
const WARM_PERCENT: u32 = 40;

#[derive(Clone, Default)]
pub(crate) struct ClassLists {
    head: [u32; 3],
    tail: [u32; 3],
    pub(crate) len: [u32; 3],
}

#[inline]
fn ptr(arena: &Arena, h: u32) -> ItemPtr {
    ItemPtr(arena.item(h))
}

impl ClassLists {
    fn push_head(&mut self, arena: &Arena, seg: u8, h: u32) {
        let it = ptr(arena, h);
        let s = seg as usize;
        it.set_prev(NONE);
        it.set_next(self.head[s]);
        if self.head[s] != NONE {
            ptr(arena, self.head[s]).set_prev(h);
        } else {
            self.tail[s] = h;
        }
        self.head[s] = h;
        self.len[s] += 1;
        it.set_policy((it.policy() & ACTIVE) | seg);
    }

    fn unlink(&mut self, arena: &Arena, h: u32) {
        let it = ptr(arena, h);
        let s = (it.policy() & 3) as usize;
        let (p, n) = (it.prev(), it.next());
        if p != NONE {
            ptr(arena, p).set_next(n);
        } else {
            self.head[s] = n;
        }
        if n != NONE {
            ptr(arena, n).set_prev(p);
        } else {
            self.tail[s] = p;
        }
        self.len[s] -= 1;
    }

    fn move_to(&mut self, arena: &Arena, h: u32, seg: u8) {
        self.unlink(arena, h);
        self.push_head(arena, seg, h);
    }

    /// Heads, tails and lengths of the three segments (warm restart).
    pub(crate) fn words(&self) -> [u32; 9] {
        let mut w = [0; 9];
        w[..3].copy_from_slice(&self.head);
        w[3..6].copy_from_slice(&self.tail);
        w[6..].copy_from_slice(&self.len);
        w
    }

    pub(crate) fn from_words(w: &[u32]) -> ClassLists {
        ClassLists {
            head: w[..3].try_into().unwrap(),
            tail: w[3..6].try_into().unwrap(),
            len: w[6..9].try_into().unwrap(),
        }
    }

    pub(crate) fn insert(&mut self, arena: &Arena, h: u32, fifo: bool) {
        ptr(arena, h).set_policy(0);
        self.push_head(arena, if fifo { COLD } else { HOT }, h);
    }

    pub(crate) fn remove(&mut self, arena: &Arena, h: u32) {
        self.unlink(arena, h);
    }

    /// A hit: the second hit makes an item active; an active COLD item moves to WARM at
    /// once (memcached does this through its bump queue).
    #[inline]
    pub(crate) fn hit(&mut self, arena: &Arena, h: u32, was_fetched: bool) {
        if !was_fetched {
            return;
        }
        let it = ptr(arena, h);
        let p = it.policy();
        if p & 3 == COLD {
            it.set_policy(p & !ACTIVE);
            self.move_to(arena, h, WARM);
        } else if p & ACTIVE == 0 {
            it.set_policy(p | ACTIVE);
        }
    }

    /// Moves items off the tails of HOT and WARM while they exceed their caps.
    fn juggle(&mut self, arena: &Arena, items: u32) {
        self.juggle_segment(arena, HOT, items * HOT_PERCENT / 100);
        self.juggle_segment(arena, WARM, items * WARM_PERCENT / 100);
    }

    /// Up to four times, while `seg` holds more than `cap` items: its tail item
    /// goes to WARM if it was active since (losing the mark), else to COLD.
    fn juggle_segment(&mut self, arena: &Arena, seg: u8, cap: u32) {
        for _ in 0..4 {
            if self.len[seg as usize] <= cap {
                break;
            }
            let h = self.tail[seg as usize];
            let it = ptr(arena, h);
            if it.policy() & ACTIVE != 0 {
                it.set_policy(it.policy() & !ACTIVE);
                self.move_to(arena, h, WARM);
            } else {
                self.move_to(arena, h, COLD);
            }
        }
    }

    /// The next item to evict (left linked; the store unlinks it). FIFO takes the tail of
    /// its single list; LRU first drains HOT/WARM overflow into COLD.
    pub(crate) fn victim(&mut self, arena: &Arena, items: u32, fifo: bool, pinned: u32) -> u32 {
        if !fifo {
            self.juggle(arena, items);
        }
        for seg in [COLD, HOT, WARM] {
            let mut h = self.tail[seg as usize];
            while h != NONE {
                if h != pinned {
                    return h;
                }
                h = ptr(arena, h).prev();
            }
        }
        NONE
    }

    /// The tail of the eviction end without changing anything (for `stats items` age).
    pub(crate) fn peek(&self) -> u32 {
        for seg in [COLD, HOT, WARM] {
            if self.tail[seg as usize] != NONE {
                return self.tail[seg as usize];
            }
        }
        NONE
    }
}
