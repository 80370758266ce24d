//! The expired-item crawler: an incremental walk over every carved chunk of every page,
//! run by the shard loop when idle, so that expired and flushed items give their memory
//! back without a client touching them. Each step also moves the index's migration on.
//!
//! ```text
//!   cursor ──► page 0 [c0 c1 ... cN] page 1 [...] ... page P-1 ──► wraps to page 0
//!              budget = chunks examined per call (free chunks count too)
//! ```

use super::Store;
use super::item::{BIT_FETCHED, ItemPtr};
use super::slab::UNASSIGNED;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    page: u32,
    chunk: u32,
}

/// What one crawler step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrawlReport {
    /// Chunks examined.
    pub checked: u64,
    /// Expired or flushed items unlinked.
    pub reclaimed: u64,
    /// Bytes of those items (before chunk rounding).
    pub bytes_reclaimed: u64,
    /// The cursor went past the last page (a full pass ended).
    pub wrapped: bool,
    /// The index still has migration work left.
    pub index_migrating: bool,
}

impl Store {
    /// Examines up to `budget` chunks from where the last call stopped and unlinks the
    /// expired and flushed items it finds.
    pub fn crawl(&mut self, budget: usize) -> CrawlReport {
        let mut rep = CrawlReport::default();
        let n_pages = self.slabs.n_pages;
        let mut left = budget;
        let mut empty_pages = 0;
        while left > 0 && empty_pages <= n_pages {
            let page = self.crawl.page;
            if page >= n_pages {
                self.crawl = Cursor::default();
                if rep.wrapped {
                    // One full pass per call is enough.
                    break;
                }
                rep.wrapped = true;
                empty_pages += 1;
                continue;
            }
            let owner = self.slabs.page_class[page as usize];
            let (size, carved) = if owner == UNASSIGNED {
                (0, 0)
            } else {
                let c = &self.slabs.classes[owner as usize];
                (c.size, c.carved(page))
            };
            if self.crawl.chunk >= carved {
                self.crawl.page += 1;
                self.crawl.chunk = 0;
                empty_pages += 1;
                continue;
            }
            empty_pages = 0;
            let h = self.slabs.chunk_handle(page, self.crawl.chunk, size);
            self.crawl.chunk += 1;
            left -= 1;
            rep.checked += 1;
            let it = self.item(h);
            if it.is_free() {
                continue;
            }
            self.stats.crawler_items_checked += 1;
            if self.is_expired(it) || self.is_flushed(it) {
                let cls = owner as usize;
                let bytes = self.layout.item_total(it);
                let c = &mut self.slabs.classes[cls];
                c.stats.crawler_reclaimed += 1;
                c.stats.reclaimed += 1;
                if !it.has(BIT_FETCHED) {
                    c.stats.expired_unfetched += 1;
                    self.stats.expired_unfetched += 1;
                }
                self.stats.crawler_reclaimed += 1;
                self.unlink_handle(h);
                rep.reclaimed += 1;
                rep.bytes_reclaimed += bytes as u64;
            }
        }
        rep.index_migrating = self.migrate_index(budget);
        rep
    }

    /// The crawler's work other than reclaiming, for a server whose crawler is
    /// off (memcached's `-o no_lru_crawler`): moves up to `budget.max(64)` slots of
    /// a growing index and reports whether any are left; examines no item.
    pub fn maintain_index(&mut self, budget: usize) -> CrawlReport {
        CrawlReport {
            index_migrating: self.migrate_index(budget),
            ..CrawlReport::default()
        }
    }

    fn migrate_index(&mut self, budget: usize) -> bool {
        let (arena, layout) = (&self.arena, self.layout);
        self.index.migrate(budget.max(64), |x| {
            crate::key_hash(layout.key(ItemPtr(arena.item(x))))
        })
    }
}

/// Where a [`Store::walk`] goes on from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkCursor {
    page: u32,
    chunk: u32,
}

impl Store {
    /// Visits the live items (neither expired nor flushed) of up to `budget`
    /// chunks from `cursor`, in arena order, handing each to `f` without
    /// touching it (no bump, no access time). `f` returns false to stop before
    /// the item it was given, which the next call then visits first. Returns
    /// the cursor to go on from, or `None` once the walk passed the last page.
    /// Items stored, moved or removed between calls may be visited once, twice
    /// or not at all; those present throughout are visited exactly once.
    pub fn walk(
        &mut self,
        mut cursor: WalkCursor,
        budget: usize,
        mut f: impl FnMut(crate::ItemView<'_>) -> bool,
    ) -> Option<WalkCursor> {
        let mut left = budget;
        while left > 0 {
            if cursor.page >= self.slabs.n_pages {
                return None;
            }
            let owner = self.slabs.page_class[cursor.page as usize];
            let (size, carved) = if owner == UNASSIGNED {
                (0, 0)
            } else {
                let c = &self.slabs.classes[owner as usize];
                (c.size, c.carved(cursor.page))
            };
            if cursor.chunk >= carved {
                cursor = WalkCursor {
                    page: cursor.page + 1,
                    chunk: 0,
                };
                continue;
            }
            left -= 1;
            let h = self.slabs.chunk_handle(cursor.page, cursor.chunk, size);
            let it = self.item(h);
            if !it.is_free() && !self.is_expired(it) && !self.is_flushed(it) {
                let view = self.view(h, owner as usize, it.idle(self.now), it.has(BIT_FETCHED));
                if !f(view) {
                    return Some(cursor);
                }
            }
            cursor.chunk += 1;
        }
        Some(cursor)
    }
}
