//! Eviction policies behind one small dispatcher. Every policy works per size class:
//! an allocation that finds no free chunk and no page evicts from its own class.
//!
//! | policy | per-item metadata            | structure per class                 |
//! |--------|------------------------------|-------------------------------------|
//! | lru    | 8 B links + 3 bits           | hot/warm/cold lists                 |
//! | fifo   | 8 B links                    | one list                            |
//! | clock  | 1 bit                        | a hand over the class's chunks      |
//! | lfu    | 8-bit counter                | a hand that halves counters         |
//! | s3fifo | 3 bits + ring entry (small)  | small ring, main hand, shared ghost |
//! | random | none                         | none                                |

pub(crate) mod lists;
pub(crate) mod sweep;

use super::arena::Arena;
use super::config::Policy;
use super::item::{ItemPtr, Layout};
use super::persist::{Dec, DecResult, Enc, check_handle};
use super::slab::{NONE, Slabs};
use lists::ClassLists;
use sweep::{Ghost, Hand, S3Pick, Small};

pub(crate) struct Policies {
    pub(crate) kind: Policy,
    lists: Vec<ClassLists>,
    hands: Vec<Hand>,
    small: Vec<Small>,
    ghost: Option<Ghost>,
    pub(crate) rng: u64,
}

#[inline]
fn ptr(arena: &Arena, h: u32) -> ItemPtr {
    ItemPtr(arena.item(h))
}

/// The ghost fingerprint of a key hash.
#[inline]
fn fingerprint(hash: u64) -> u32 {
    (hash >> 32) as u32 ^ hash as u32
}

impl Policies {
    pub(crate) fn new(kind: Policy, classes: usize, ghost_entries: usize, seed: u64) -> Policies {
        Policies {
            kind,
            lists: if kind.linked() {
                vec![ClassLists::default(); classes]
            } else {
                Vec::new()
            },
            hands: vec![Hand::default(); classes],
            small: if kind == Policy::S3fifo {
                (0..classes).map(|_| Small::default()).collect()
            } else {
                Vec::new()
            },
            ghost: (kind == Policy::S3fifo).then(|| Ghost::new(ghost_entries)),
            rng: seed | 1,
        }
    }

    /// Bytes held outside the arena (ghost table and small rings).
    pub(crate) fn side_bytes(&self) -> usize {
        self.ghost.as_ref().map_or(0, |g| g.bytes())
            + self.small.iter().map(|s| s.bytes()).sum::<usize>()
    }

    /// A new item was linked (its policy byte is zero).
    #[inline]
    pub(crate) fn on_insert(
        &mut self,
        arena: &Arena,
        slabs: &Slabs,
        cls: usize,
        h: u32,
        hash: u64,
    ) {
        match self.kind {
            Policy::Lru => self.lists[cls].insert(arena, h, false),
            Policy::Fifo => self.lists[cls].insert(arena, h, true),
            Policy::Lfu => ptr(arena, h).set_policy(sweep::LFU_INIT),
            Policy::S3fifo => {
                let ghost = self.ghost.as_mut().expect("s3fifo ghost");
                if !ghost.take(fingerprint(hash)) {
                    ptr(arena, h).set_policy(sweep::S3_SMALL);
                    self.small[cls].push(h);
                    if slabs.has_fresh() {
                        let items = slabs.classes[cls].items;
                        self.small[cls].drain_excess(arena, slabs, cls, items);
                    }
                }
            }
            Policy::Clock | Policy::Random => {}
        }
    }

    /// A new version of an existing key was linked. S3-FIFO keeps the old version's
    /// queue and frequency (an update is not a ghost candidate, and skipping the ghost
    /// probe keeps overwrites cheap); the others treat it as a new item.
    #[inline]
    pub(crate) fn on_replace(
        &mut self,
        arena: &Arena,
        slabs: &Slabs,
        cls: usize,
        h: u32,
        hash: u64,
        old: u8,
    ) {
        if self.kind != Policy::S3fifo {
            return self.on_insert(arena, slabs, cls, h, hash);
        }
        let it = ptr(arena, h);
        if old & sweep::S3_SMALL != 0 {
            it.set_policy(sweep::S3_SMALL);
            self.small[cls].push(h);
        } else {
            it.set_policy(old & sweep::S3_FREQ);
        }
    }

    /// The policy byte after a hit, for the policies whose hit only changes that byte
    /// (all but lru); lets the bump write access time and policy in one store.
    #[inline]
    pub(crate) fn hit_byte(&mut self, p: u8) -> u8 {
        match self.kind {
            Policy::Clock => p | sweep::CLOCK_REF,
            Policy::S3fifo if p & sweep::S3_FREQ < sweep::S3_FREQ => p + 1,
            Policy::Lfu => sweep::lfu_next(p, &mut self.rng),
            _ => p,
        }
    }

    /// A read hit (not for `u`, no-bump reads).
    #[inline]
    pub(crate) fn on_hit(&mut self, arena: &Arena, cls: usize, h: u32, was_fetched: bool) {
        let it = ptr(arena, h);
        match self.kind {
            Policy::Lru => self.lists[cls].hit(arena, h, was_fetched),
            Policy::Fifo | Policy::Random => {}
            Policy::Clock => {
                if it.policy() & sweep::CLOCK_REF == 0 {
                    it.set_policy(sweep::CLOCK_REF)
                }
            }
            Policy::Lfu => sweep::lfu_hit(it, &mut self.rng),
            Policy::S3fifo => {
                let p = it.policy();
                if p & sweep::S3_FREQ < sweep::S3_FREQ {
                    it.set_policy(p + 1);
                }
            }
        }
    }

    /// An item is about to be unlinked (delete, expiry, replacement or eviction).
    #[inline]
    pub(crate) fn on_remove(&mut self, arena: &Arena, cls: usize, h: u32) {
        match self.kind {
            Policy::Lru | Policy::Fifo => self.lists[cls].remove(arena, h),
            Policy::S3fifo if ptr(arena, h).policy() & sweep::S3_SMALL != 0 => {
                self.small[cls].count -= 1;
            }
            _ => {}
        }
    }

    /// Whether the item counts as "active" when evicted (accessed since it entered the
    /// eviction end), for `evicted_active`.
    pub(crate) fn is_active(&self, it: ItemPtr) -> bool {
        match self.kind {
            Policy::Lru => it.policy() & 4 != 0,
            Policy::Clock => it.policy() & sweep::CLOCK_REF != 0,
            Policy::S3fifo => it.policy() & sweep::S3_FREQ != 0,
            _ => false,
        }
    }

    /// Chooses the item to evict from class `cls`, never `pinned`. NONE when the class
    /// holds no evictable item.
    pub(crate) fn victim(
        &mut self,
        arena: &Arena,
        slabs: &Slabs,
        layout: Layout,
        cls: usize,
        pinned: u32,
    ) -> u32 {
        let items = slabs.classes[cls].items;
        match self.kind {
            Policy::Lru => self.lists[cls].victim(arena, items, false, pinned),
            Policy::Fifo => self.lists[cls].victim(arena, items, true, pinned),
            Policy::Clock => sweep::clock_victim(&mut self.hands[cls], arena, slabs, cls, pinned),
            Policy::Lfu => sweep::lfu_victim(&mut self.hands[cls], arena, slabs, cls, pinned),
            Policy::Random => sweep::random_victim(
                &mut self.hands[cls],
                arena,
                slabs,
                cls,
                pinned,
                &mut self.rng,
            ),
            Policy::S3fifo => {
                let pick = sweep::s3_victim(
                    &mut self.small[cls],
                    &mut self.hands[cls],
                    arena,
                    slabs,
                    cls,
                    items,
                    pinned,
                );
                match pick {
                    S3Pick::FromSmall(h) => {
                        let hash = crate::key_hash(layout.key(ptr(arena, h)));
                        self.ghost
                            .as_mut()
                            .expect("ghost")
                            .insert(fingerprint(hash));
                        h
                    }
                    S3Pick::FromMain(h) => h,
                    S3Pick::None => NONE,
                }
            }
        }
    }

    /// The item the policy would look at next, without side effects (for `stats items`).
    pub(crate) fn peek(&self, arena: &Arena, slabs: &Slabs, cls: usize) -> u32 {
        match self.kind {
            Policy::Lru | Policy::Fifo => self.lists[cls].peek(),
            _ => {
                let mut hand = self.hands[cls];
                hand.next_item(arena, slabs, cls, sweep::sweep_limit(slabs, cls))
                    .unwrap_or(NONE)
            }
        }
    }

    /// Writes the per-class policy state and S3-FIFO's ghost (warm restart).
    pub(crate) fn save(&self, e: &mut Enc) {
        e.u64(self.rng);
        for l in &self.lists {
            e.u32s(l.words().into_iter());
        }
        for h in &self.hands {
            e.u32s(h.words().into_iter());
        }
        for s in &self.small {
            e.u32(s.count);
            e.u32s(s.entries());
        }
        if let Some(g) = &self.ghost {
            let (slots, turn) = g.words();
            e.u32(turn);
            e.u32s(slots.iter().copied());
        }
    }

    /// Reads what `save` wrote for the same policy and classes, checking handles.
    pub(crate) fn load(&mut self, d: &mut Dec<'_>, slabs: &Slabs) -> DecResult<()> {
        self.rng = d.u64()? | 1;
        let chunks: usize = slabs
            .classes
            .iter()
            .map(|c| c.per_page as usize)
            .sum::<usize>()
            * slabs.n_pages as usize;
        for (cls, l) in self.lists.iter_mut().enumerate() {
            let w = d.u32s(9)?;
            if w.len() != 9 {
                return Err("saved lists are corrupt".into());
            }
            for &h in &w[..6] {
                check_handle(slabs, h, cls)?;
            }
            *l = ClassLists::from_words(&w);
        }
        for h in self.hands.iter_mut() {
            let w = d.u32s(2)?;
            if w.len() != 2 {
                return Err("saved hands are corrupt".into());
            }
            *h = Hand::from_words([w[0], w[1]]);
        }
        for s in self.small.iter_mut() {
            let count = d.u32()?;
            let ring = d.u32s(chunks)?;
            *s = Small::from_entries(ring, count);
        }
        if let Some(g) = self.ghost.as_mut() {
            let turn = d.u32()?;
            let slots = d.u32s(g.bytes() / 4)?;
            if !g.restore(slots, turn) {
                return Err("the saved ghost history is corrupt".into());
            }
        }
        Ok(())
    }

    /// S3-FIFO's ghost slots and turn, for tests of what a restart keeps.
    #[cfg(test)]
    pub(crate) fn ghost_words(&self) -> Option<(Vec<u32>, u32)> {
        self.ghost.as_ref().map(|g| {
            let (slots, turn) = g.words();
            (slots.to_vec(), turn)
        })
    }

    /// Back to the state of a new store.
    pub(crate) fn clear(&mut self) {
        self.lists
            .iter_mut()
            .for_each(|l| *l = ClassLists::default());
        self.hands.iter_mut().for_each(|h| *h = Hand::default());
        self.small.iter_mut().for_each(|s| *s = Small::default());
        if let Some(g) = self.ghost.as_mut() {
            g.clear();
        }
    }
}
