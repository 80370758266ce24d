//! Slab pages and size classes.
//!
//! ```text
//!   arena  | page 0 | page 1 | page 2 | ...            | page N-1 |   N = limit / page size
//!             │        │
//!   class 7 ──┘        └── class 12: [chunk][chunk][chunk]...[chunk][tail < chunk]
//!
//!   handle = byte offset / 4 + 2   (0 = none, 1 = the index's tombstone;
//!                                    offset / 8 in a shard of more than 16 GiB)
//! ```
//!
//! A class hands out chunks from its free list, then from a bump cursor in its newest
//! page (so untouched chunks are never faulted in), then takes a fresh page. Pages never
//! return to the Rust heap; they move between classes (rebalancing) through `Store`.
//! Free chunks are marked by a zero key length and linked through their cas field.

use super::arena::Arena;
use super::item::ItemPtr;
use super::persist::{Dec, DecResult, Enc, check_handle};
use super::stats::ClassStats;

/// No handle (empty list, no page).
pub(crate) const NONE: u32 = 0;

pub(crate) struct Class {
    /// Chunk size in bytes (a multiple of the handles' granule).
    pub(crate) size: u32,
    pub(crate) per_page: u32,
    /// Page ids owned by this class, in the order they were taken.
    pub(crate) pages: Vec<u32>,
    pub(crate) free_head: u32,
    pub(crate) free_count: u32,
    /// The page being carved by the bump cursor plus one, or NONE.
    pub(crate) bump_page: u32,
    pub(crate) bump_next: u32,
    /// Live items.
    pub(crate) items: u32,
    /// Sum of item sizes before rounding (memcached's mem_requested).
    pub(crate) requested: u64,
    /// Evictions since the last rebalancing check.
    pub(crate) evicted_since_check: u32,
    pub(crate) stats: ClassStats,
}

impl Class {
    /// Chunks of page `page` that have ever been handed out (the bump page is partial).
    #[inline]
    pub(crate) fn carved(&self, page: u32) -> u32 {
        if page + 1 == self.bump_page {
            self.bump_next
        } else {
            self.per_page
        }
    }
}

pub(crate) struct Slabs {
    pub(crate) classes: Vec<Class>,
    pub(crate) page_size: usize,
    page_shift: u32,
    /// log2 of the bytes a handle counts (`handle_shift`).
    shift: u32,
    pub(crate) n_pages: u32,
    /// Pages below this id have been handed to a class at least once.
    next_fresh: u32,
    /// Pages given back (only by tests and future shrinking); reused first.
    free_pages: Vec<u32>,
    /// Class of each page, or u8::MAX when unassigned.
    pub(crate) page_class: Vec<u8>,
    /// Position of each page in its class's `pages`.
    pub(crate) page_pos: Vec<u32>,
    /// Last access (relative seconds) to any item of each page: the rebalancer's measure.
    pub(crate) page_atime: Vec<u32>,
    /// Class of item sizes up to 4 KiB, indexed by size / 4 rounded up (skips the
    /// binary search on the common path).
    small_class: Vec<u8>,
    /// With a THP arena: which huge-page regions are wholly carved.
    pub(crate) huge: Option<HugeRegions>,
}

/// A THP arena's 2 MiB regions (issue 16). The arena starts on small pages, so a
/// page a class is still carving is resident only as far as it is carved; once
/// every slab page of a region has been carved to its end the region is queued,
/// and `Store::take_carved` hands it out to be collapsed into a huge page, after which
/// it is backed as before this change (a TLB entry per 2 MiB, not per 4 KiB).
pub(crate) struct HugeRegions {
    /// Slab pages per region (at least 1; a page of 2 MiB or more is its own region).
    pages_per: u32,
    /// Bytes per region.
    pub(crate) bytes: usize,
    queued: Vec<bool>,
    /// Regions waiting for the crawler, oldest first.
    pub(crate) pending: std::collections::VecDeque<u32>,
    /// Regions handed out by `take_carved`.
    pub(crate) promoted: u64,
}

impl HugeRegions {
    pub(crate) fn new(n_pages: u32, page_size: usize) -> HugeRegions {
        let bytes = page_size.max(Arena::HUGE_REGION);
        let pages_per = (bytes / page_size) as u32;
        HugeRegions {
            pages_per,
            bytes,
            queued: vec![false; n_pages.div_ceil(pages_per) as usize],
            pending: Default::default(),
            promoted: 0,
        }
    }
}

pub(crate) const UNASSIGNED: u8 = u8::MAX;

/// log2 of the bytes a handle counts in an arena of `len` bytes: 4 while a u32 handle
/// reaches every 4-byte offset (16 GiB), else 8 (32 GiB, the largest shard). Chunk
/// sizes are multiples of the granule.
pub(crate) fn handle_shift(len: usize) -> u32 {
    if (len / 4) as u64 + 2 <= u32::MAX as u64 {
        2
    } else {
        3
    }
}

/// The handle of the chunk at byte `off` of the arena, with handles counting `1 << shift`
/// bytes.
#[inline]
pub(crate) fn handle_at(off: usize, shift: u32) -> u32 {
    (off >> shift) as u32 + 2
}

/// The arena offset of handle `h` (at least 2).
#[inline]
pub(crate) fn offset_of(h: u32, shift: u32) -> usize {
    (h as usize - 2) << shift
}

/// Chunks up to this size step finely (below) in a shard with enough pages: an item of
/// up to 256 bytes then wastes at most 3 bytes with 4-byte steps (1.5 on average over
/// spread sizes) or 7 with 8-byte steps (3.5), where the factor's steps (16-24 bytes
/// between 104 and 256 at 1.08) waste up to 12%.
pub(crate) const FINE_STEPS_UP_TO: usize = 256;

/// Pages a shard needs for 8-byte steps up to `FINE_STEPS_UP_TO`. Every class that
/// holds items holds at least a page, and values spread over 50..300 bytes span 24
/// classes with the fine steps (14 without): with 22 pages that left classes without a
/// page to take one from each other, and the hit ratio fell from 0.69 to 0.52 (s3fifo,
/// zipf 0.9); at 32 pages it rose (0.739 to 0.745). Twice the pages where it held.
pub(crate) const FINE_STEPS_MIN_PAGES: usize = 64;

/// Pages a shard needs for 4-byte steps: such values span 46 classes with them, so
/// twice the pages of 8-byte steps, by the same rule.
pub(crate) const FOUR_BYTE_STEPS_MIN_PAGES: usize = 128;

/// How chunks step up to `FINE_STEPS_UP_TO` in a shard of `pages` slab pages whose
/// handles count `1 << shift` bytes: `(step, up to)`. Up to 0 means the factor's steps
/// from the start (8 bytes while they are smaller).
pub(crate) fn fine_steps(pages: usize, shift: u32) -> (usize, usize) {
    if pages >= FOUR_BYTE_STEPS_MIN_PAGES && shift == 2 {
        (4, FINE_STEPS_UP_TO)
    } else if pages >= FINE_STEPS_MIN_PAGES {
        (8, FINE_STEPS_UP_TO)
    } else {
        (8, 0)
    }
}

/// Chunk sizes from `min` to `page`: `step` bytes apart (4 or 8) below `fine_to`, then
/// each `factor` times the previous one rounded up to 8 and at least 8 bytes above it,
/// up to half a page; the last one a whole page.
pub(crate) fn class_sizes(
    min: usize,
    page: usize,
    factor: f64,
    (step, fine_to): (usize, usize),
) -> Vec<u32> {
    let mut sizes = Vec::new();
    let mut s = min.next_multiple_of(step);
    while s < page / 2 {
        sizes.push(s as u32);
        let grown = ((s as f64 * factor).ceil() as usize).next_multiple_of(8);
        s = if s < fine_to {
            s + step
        } else {
            grown.max(s + 8)
        };
    }
    sizes.push((page / 2) as u32 / 8 * 8);
    sizes.push(page as u32);
    sizes.dedup();
    sizes
}

impl Slabs {
    pub(crate) fn new(arena_len: usize, page_size: usize, sizes: &[u32]) -> Slabs {
        let n_pages = (arena_len / page_size) as u32;
        let classes = sizes
            .iter()
            .map(|&size| Class {
                size,
                per_page: (page_size / size as usize) as u32,
                pages: Vec::new(),
                free_head: NONE,
                free_count: 0,
                bump_page: NONE,
                bump_next: 0,
                items: 0,
                requested: 0,
                evicted_since_check: 0,
                stats: ClassStats::default(),
            })
            .collect();
        Slabs {
            classes,
            page_size,
            page_shift: page_size.trailing_zeros(),
            shift: handle_shift(arena_len),
            n_pages,
            next_fresh: 0,
            free_pages: Vec::new(),
            page_class: vec![UNASSIGNED; n_pages as usize],
            page_pos: vec![0; n_pages as usize],
            page_atime: vec![0; n_pages as usize],
            small_class: (0..=1024usize)
                .map(|u| sizes.partition_point(|&s| (s as usize) < u * 4) as u8)
                .collect(),
            huge: None,
        }
    }

    /// Queues the region of `page` for huge pages if every slab page in it has
    /// been carved to its end (called when a page's last chunk was handed out).
    fn note_carved(&mut self, page: u32) {
        let Some(huge) = self.huge.as_mut() else {
            return;
        };
        let region = page / huge.pages_per;
        if huge.queued[region as usize] {
            return;
        }
        let first = region * huge.pages_per;
        let whole = (first..first + huge.pages_per).all(|p| {
            let owner = self
                .page_class
                .get(p as usize)
                .copied()
                .unwrap_or(UNASSIGNED);
            owner != UNASSIGNED && {
                let c = &self.classes[owner as usize];
                c.carved(p) == c.per_page
            }
        });
        if whole {
            huge.queued[region as usize] = true;
            huge.pending.push_back(region);
        }
    }

    /// The smallest class whose chunks hold `total` bytes.
    #[inline]
    pub(crate) fn class_for(&self, total: usize) -> Option<usize> {
        if let Some(&c) = self.small_class.get(total.div_ceil(4)) {
            return Some(c as usize);
        }
        let i = self.classes.partition_point(|c| (c.size as usize) < total);
        (i < self.classes.len()).then_some(i)
    }

    #[inline]
    pub(crate) fn handle(&self, off: usize) -> u32 {
        handle_at(off, self.shift)
    }
    #[inline]
    pub(crate) fn offset(&self, h: u32) -> usize {
        offset_of(h, self.shift)
    }
    /// The largest handle a chunk of an arena of `arena_len` bytes can have: the last
    /// chunk starts a smallest chunk's size before the end at the latest (so that a
    /// 1 GiB arena's handles take 28 bits, not 29, and the index keeps a tag bit).
    pub(crate) fn max_handle(&self, arena_len: usize) -> u32 {
        self.handle(arena_len - self.classes[0].size as usize)
    }
    #[inline]
    pub(crate) fn page_of(&self, h: u32) -> u32 {
        (self.offset(h) >> self.page_shift) as u32
    }
    #[inline]
    pub(crate) fn chunk_handle(&self, page: u32, idx: u32, size: u32) -> u32 {
        self.handle(((page as usize) << self.page_shift) + idx as usize * size as usize)
    }

    /// Whether `h` is the start of a chunk of class `cls` that has been carved (handles
    /// held by lazy rings may outlive the page's membership in the class).
    pub(crate) fn valid_in(&self, h: u32, cls: usize) -> bool {
        if h < 2 {
            return false;
        }
        let page = self.page_of(h);
        if page >= self.n_pages || self.page_class[page as usize] as usize != cls {
            return false;
        }
        let c = &self.classes[cls];
        let in_page = self.offset(h) & (self.page_size - 1);
        in_page.is_multiple_of(c.size as usize)
            && ((in_page / c.size as usize) as u32) < c.carved(page)
    }

    /// Pops a chunk from the free list or the bump cursor, without taking a new page.
    #[inline]
    pub(crate) fn take_chunk(&mut self, arena: &Arena, cls: usize) -> Option<u32> {
        let page_shift = self.page_shift;
        let shift = self.shift;
        let c = &mut self.classes[cls];
        if c.free_head != NONE {
            let h = c.free_head;
            c.free_head = ItemPtr(arena.item(h)).free_next();
            c.free_count -= 1;
            return Some(h);
        }
        if c.bump_page != NONE && c.bump_next < c.per_page {
            let page = c.bump_page - 1;
            let off = ((page as usize) << page_shift) + (c.bump_next * c.size) as usize;
            c.bump_next += 1;
            if c.bump_next == c.per_page {
                self.note_carved(page);
            }
            return Some(handle_at(off, shift));
        }
        None
    }

    /// Returns a chunk to its class's free list.
    #[inline]
    pub(crate) fn free_chunk(&mut self, arena: &Arena, cls: usize, h: u32) {
        let c = &mut self.classes[cls];
        ItemPtr(arena.item(h)).mark_free(c.free_head);
        c.free_head = h;
        c.free_count += 1;
    }

    /// Whether a page can still be had without evicting.
    #[inline]
    pub(crate) fn has_fresh(&self) -> bool {
        self.next_fresh < self.n_pages || !self.free_pages.is_empty()
    }

    /// Takes a never-used or returned page, if any.
    pub(crate) fn fresh_page(&mut self) -> Option<u32> {
        if let Some(p) = self.free_pages.pop() {
            return Some(p);
        }
        (self.next_fresh < self.n_pages).then(|| {
            self.next_fresh += 1;
            self.next_fresh - 1
        })
    }

    /// Gives page `page` to class `cls` and makes it the bump page. The previous bump page
    /// must be exhausted (callers take pages only when no chunk is left).
    pub(crate) fn assign_page(&mut self, cls: usize, page: u32, now: u32) {
        let c = &mut self.classes[cls];
        debug_assert!(c.free_head == NONE && (c.bump_page == NONE || c.bump_next == c.per_page));
        // page 0 is a valid page id but also NONE for bump_page; keep them apart by
        // storing page + 1.
        c.bump_page = page + 1;
        c.bump_next = 0;
        self.page_class[page as usize] = cls as u8;
        self.page_pos[page as usize] = c.pages.len() as u32;
        self.page_atime[page as usize] = now;
        c.pages.push(page);
        c.stats.pages_taken += 1;
    }

    /// Removes `page` (already emptied of live items) from its class: its free chunks leave
    /// the free list, and the class's page list is compacted by swap-remove. Returns the
    /// class it belonged to and the position that now holds a different page (if any).
    pub(crate) fn detach_page(&mut self, arena: &Arena, page: u32) -> usize {
        let cls = self.page_class[page as usize] as usize;
        let page_shift = self.page_shift;
        let shift = self.shift;
        let c = &mut self.classes[cls];
        // Rebuild the free list without this page's chunks.
        let mut h = c.free_head;
        let mut keep_head = NONE;
        let mut keep_tail: Option<ItemPtr> = None;
        let mut kept = 0;
        while h != NONE {
            let it = ItemPtr(arena.item(h));
            let next = it.free_next();
            if (offset_of(h, shift) >> page_shift) as u32 != page {
                match keep_tail {
                    None => keep_head = h,
                    Some(t) => t.mark_free(h),
                }
                it.mark_free(NONE);
                keep_tail = Some(it);
                kept += 1;
            }
            h = next;
        }
        c.free_head = keep_head;
        c.free_count = kept;
        if c.bump_page == page + 1 {
            c.bump_page = NONE;
            c.bump_next = 0;
        }
        let pos = self.page_pos[page as usize] as usize;
        c.pages.swap_remove(pos);
        if pos < c.pages.len() {
            self.page_pos[c.pages[pos] as usize] = pos as u32;
        }
        self.page_class[page as usize] = UNASSIGNED;
        cls
    }

    /// Total bytes of pages handed to classes (what the arena has committed to items).
    pub(crate) fn used_bytes(&self) -> usize {
        self.classes.iter().map(|c| c.pages.len()).sum::<usize>() * self.page_size
    }

    /// Reserves whole pages for metadata kept outside the arena (S3-FIFO's ghost table
    /// and ring), so that every policy lives within the same memory limit.
    pub(crate) fn reserve_pages(&mut self, n: u32) {
        self.n_pages = self.n_pages.saturating_sub(n).max(1);
        self.page_class.truncate(self.n_pages as usize);
        self.page_pos.truncate(self.n_pages as usize);
        self.page_atime.truncate(self.n_pages as usize);
    }

    /// Writes page ownership, free lists and bump cursors (warm restart).
    pub(crate) fn save(&self, e: &mut Enc) {
        e.u32(self.next_fresh);
        e.u32s(self.free_pages.iter().copied());
        e.u32s(self.page_class.iter().map(|&c| c as u32));
        e.u32s(self.page_atime.iter().copied());
        for c in &self.classes {
            e.u32s(c.pages.iter().copied());
            e.u32(c.free_head);
            e.u32(c.free_count);
            e.u32(c.bump_page);
            e.u32(c.bump_next);
        }
    }

    /// Reads what `save` wrote, checking that it describes this arena's pages.
    pub(crate) fn load(&mut self, d: &mut Dec<'_>) -> DecResult<()> {
        let n = self.n_pages as usize;
        self.next_fresh = d.u32()?;
        self.free_pages = d.u32s(n)?;
        let owners = d.u32s(n)?;
        let atimes = d.u32s(n)?;
        if owners.len() != n || atimes.len() != n || self.next_fresh as usize > n {
            return Err("the saved page table does not match the arena".into());
        }
        if self.free_pages.iter().any(|&p| p >= self.next_fresh) {
            return Err("a saved free page is out of range".into());
        }
        for (p, &o) in owners.iter().enumerate() {
            if o != UNASSIGNED as u32 && o as usize >= self.classes.len() {
                return Err(format!("page {p} belongs to no size class"));
            }
            self.page_class[p] = o as u8;
        }
        self.page_atime = atimes;
        for cls in 0..self.classes.len() {
            let pages = d.u32s(n)?;
            for (pos, &p) in pages.iter().enumerate() {
                if p as usize >= n || self.page_class[p as usize] as usize != cls {
                    return Err(format!("class {cls} names page {p}, which it does not own"));
                }
                self.page_pos[p as usize] = pos as u32;
            }
            let c = &mut self.classes[cls];
            c.pages = pages;
            c.free_head = d.u32()?;
            c.free_count = d.u32()?;
            c.bump_page = d.u32()?;
            c.bump_next = d.u32()?;
            if c.bump_next > c.per_page
                || (c.bump_page != NONE
                    && self.page_class.get(c.bump_page as usize - 1) != Some(&(cls as u8)))
            {
                return Err(format!("class {cls}'s saved bump cursor is out of range"));
            }
            check_handle(self, self.classes[cls].free_head, cls)?;
        }
        let owned: usize = self.classes.iter().map(|c| c.pages.len()).sum();
        if owned != self.page_class.iter().filter(|&&c| c != UNASSIGNED).count() {
            return Err("the saved page lists disagree with the page owners".into());
        }
        Ok(())
    }
}
