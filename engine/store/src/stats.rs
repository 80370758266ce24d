//! Counters for memcached's `stats`, `stats slabs` and `stats items`, as plain structs.
//! The store counts what only it can see (hits, expiry, evictions); the engine counts
//! commands, connections and bytes on the wire.

/// Store-wide counters and gauges (`stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub curr_items: u64,
    pub total_items: u64,
    /// Bytes of live items (header, key and value, before chunk rounding).
    pub bytes: u64,
    pub evictions: u64,
    /// Items stored in memory taken from an expired item.
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    /// Evicted items that had been accessed since they last reached the eviction end.
    pub evicted_active: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    pub slabs_moved: u64,
    pub store_too_large: u64,
    pub store_no_memory: u64,
    /// Bytes of index slots (both tables while the index grows).
    pub hash_bytes: u64,
    pub hash_is_expanding: bool,
    /// Bytes of slab pages handed to classes.
    pub slab_bytes: u64,
    /// The arena's limit in bytes (memcached's limit_maxbytes).
    pub limit_maxbytes: u64,
    /// Slots of the index's current table (hash_power_level is derived from it).
    pub hash_slots: u64,
    /// Items a warm restart brought back, and those it found expired or flushed.
    pub restored_items: u64,
    pub restore_dropped: u64,
    /// Bytes of the arena handed to transparent huge pages, region by region once
    /// wholly carved (0 unless the backing is THP).
    pub arena_huge_bytes: u64,
}

impl StoreStats {
    /// Zeroes the counters `stats reset` clears, keeping gauges (curr_items, bytes...).
    pub fn reset(&mut self) {
        *self = StoreStats {
            curr_items: self.curr_items,
            bytes: self.bytes,
            hash_bytes: self.hash_bytes,
            hash_is_expanding: self.hash_is_expanding,
            slab_bytes: self.slab_bytes,
            limit_maxbytes: self.limit_maxbytes,
            hash_slots: self.hash_slots,
            restored_items: self.restored_items,
            restore_dropped: self.restore_dropped,
            ..StoreStats::default()
        };
    }
}

/// Per-class counters that survive between snapshots (reset by `stats reset`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    pub evicted: u64,
    pub evicted_nonzero: u64,
    /// Relative time of the last eviction's item last access, as age in seconds.
    pub evicted_time: u32,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub outofmemory: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub crawler_reclaimed: u64,
    pub get_hits: u64,
    pub touch_hits: u64,
    pub pages_taken: u64,
    pub pages_lost: u64,
}

/// One line group of `stats slabs` and `stats items` for a class with pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlabClassStats {
    /// memcached numbers classes from 1.
    pub id: u32,
    pub chunk_size: u32,
    pub chunks_per_page: u32,
    pub total_pages: u32,
    pub total_chunks: u64,
    pub used_chunks: u64,
    /// Free-listed chunks plus chunks of the partial page not carved yet.
    pub free_chunks: u64,
    pub mem_requested: u64,
    /// `stats items` number.
    pub number: u64,
    /// Seconds since the last access of the item the policy would evict next.
    pub age: u32,
    pub counters: ClassStats,
}

impl super::Store {
    /// A snapshot of the store-wide counters and gauges.
    pub fn stats(&self) -> StoreStats {
        let mut s = self.stats.clone();
        s.hash_bytes = self.index.bytes() as u64;
        s.hash_is_expanding = self.index.migrating();
        s.slab_bytes = self.slabs.used_bytes() as u64;
        s.hash_slots = self.index.capacity() as u64;
        s.restored_items = self.restored.items;
        s.restore_dropped = self.restored.dropped;
        s.arena_huge_bytes = self
            .slabs
            .huge
            .as_ref()
            .map_or(0, |h| h.promoted * h.bytes as u64);
        s
    }

    /// Per-class figures for `stats slabs` / `stats items`, for classes that hold pages.
    pub fn slab_stats(&self) -> Vec<SlabClassStats> {
        let mut out = Vec::new();
        for (i, c) in self.slabs.classes.iter().enumerate() {
            if c.pages.is_empty() && c.stats == ClassStats::default() {
                continue;
            }
            let total_chunks = c.pages.len() as u64 * c.per_page as u64;
            let v = self.policies.peek(&self.arena, &self.slabs, i);
            let age = if v == super::slab::NONE {
                0
            } else {
                self.item(v).idle(self.now)
            };
            out.push(SlabClassStats {
                id: i as u32 + 1,
                chunk_size: c.size,
                chunks_per_page: c.per_page,
                total_pages: c.pages.len() as u32,
                total_chunks,
                used_chunks: c.items as u64,
                free_chunks: total_chunks - c.items as u64,
                mem_requested: c.requested,
                number: c.items as u64,
                age,
                counters: c.stats.clone(),
            });
        }
        out
    }

    /// `stats reset`: zero the counters, keep the gauges.
    pub fn reset_stats(&mut self) {
        self.stats.reset();
        for c in &mut self.slabs.classes {
            c.stats = ClassStats {
                pages_taken: 0,
                pages_lost: 0,
                ..ClassStats::default()
            };
        }
    }

    /// Bytes of metadata kept off the arena (S3-FIFO's ghost table and rings).
    pub fn side_bytes(&self) -> usize {
        self.policies.side_bytes()
    }
}
