//! The storage engine one shard owns: `!Send`, lock-free, no knowledge of the wire.
//!
//! ```text
//!   Store (one per shard, the shard loop calls set_time() each turn and crawl() when idle)
//!   ├── index   u32 slots {tag | handle}, linear probing, grows 1.25x incrementally
//!   │             │ handle = arena offset / 4 + 2 (/ 8 in a shard over 16 GiB)
//!   ├── arena   one mmap (hugetlb / THP / normal, mbind to the shard's node)
//!   │   └── slab pages (1 MiB) ── size classes (steps of 4 B, then x growth_factor)
//!   │         └── chunk: [header 8 B][links 8 B?][cas 8 B?][exptime 4 B?][flags 4 B?][key][value]
//!   ├── policies  per class: lru | fifo | clock | lfu | s3fifo | random
//!   └── stats     plain counters for `stats`, `stats slabs`, `stats items`
//! ```
//!
//! Module layout: `key` (a key with its one hash), `item` (header layout), `slab` (pages
//! and classes), `index`, `policy/`, `arena` and `numa` (memory), `ops` (classic
//! commands), `meta` (mg/ms/md/ma), `crawl` (expiry crawler and page rebalancing),
//! `stats`, `config`, `error`.
//!
//! Keyed operations take a `HashedKey`: the shard hashes a key once (`key_hash`) to route
//! and prefetch it and hands that hash over, so the store never hashes a request's key.
//!
//! Methods whose names start with `do_` assume the caller has done the key lookup and
//! holds the item's `Found`; everything here runs on the owning shard.

mod arena;
mod config;
mod crawl;
mod error;
mod index;
mod item;
mod key;
mod meta;
mod numa;
mod ops;
mod persist;
mod policy;
mod slab;
mod stats;
#[cfg(test)]
mod tests;

use std::marker::PhantomData;

pub use arena::{Backing, HugeRegion};
pub use config::{CasLayout, HugePages, Numa, Policy, SHARD_BITS, StoreConfig};
pub use crawl::{CrawlReport, WalkCursor};
pub use error::StoreError;
pub use item::HEADER_LEN;
pub use key::{HashedKey, key_hash};
pub use meta::{
    MetaArith, MetaArithArgs, MetaDeleteArgs, MetaGet, MetaGetArgs, MetaHit, MetaSetArgs,
    MetaSetMode,
};
pub use numa::{NumaBinding, Topology, parse_cpulist};
pub use ops::{ArithOutcome, DeleteOutcome, StoreMode, StoreOutcome, TouchOutcome};
pub use persist::Restored;
pub use stats::{ClassStats, SlabClassStats, StoreStats};

use index::{Found, Index};
use item::{BIT_FETCHED, CasWords, ItemPtr, Layout, Words};
use policy::Policies;
use slab::{NONE, Slabs};

/// Seconds since the store's process start (memcached's `rel_time_t`).
pub type RelTime = u32;

/// Longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;
/// Relative expiry times above this are absolute unix times (30 days).
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// Key and value bytes the smallest size class holds beside the header.
const MIN_KEY_VALUE: usize = 16;

/// Key comparison without a libc call: keys are short, and a call to memcmp costs as
/// much as comparing 32 bytes in 8-byte words. Lengths are equal (checked by the caller).
#[inline]
fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
    if n < 8 {
        return a == b;
    }
    let mut i = 0;
    while i + 8 <= n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last, overlapping word covers the tail.
    i == n || word(a, n - 8) == word(b, n - 8)
}

/// A read-only view of one item, valid until the store is used again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemView<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    pub cas: u64,
    /// Relative expiry time; 0 never expires.
    pub exptime: RelTime,
    /// Seconds left before expiry, -1 for never (mg's `t`).
    pub ttl: i64,
    /// Seconds since the last access, before this request (mg's `l`).
    pub last_access: u32,
    /// Whether the item had been fetched before this request (mg's `h`).
    pub fetched: bool,
    /// memcached's class id (from 1), for `me`.
    pub class_id: u32,
    /// Bytes the item occupies before chunk rounding, for `me`.
    pub size: usize,
}

/// An item evicted for room, as recorded by [`Store::record_evictions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evicted {
    pub key: Vec<u8>,
    /// Whether it had been read since it was stored.
    pub fetched: bool,
    /// Seconds it had left, -1 for never expiring.
    pub ttl: i64,
    /// Seconds since its last access.
    pub last_access: u32,
    /// memcached's class id (from 1).
    pub class_id: u32,
    pub value_len: usize,
}

/// Evictions kept between two [`Store::take_evictions`].
pub const EVICTIONS_KEPT: usize = 1024;

/// One shard's cache.
pub struct Store {
    arena: arena::Arena,
    slabs: Slabs,
    index: Index,
    policies: Policies,
    layout: Layout,
    cfg: StoreConfig,
    now: RelTime,
    process_started: u64,
    /// `cfg.cas_layout()`, resolved once.
    cas_layout: CasLayout,
    /// All ones, or 0 without CAS (`cfg.use_cas`): every CAS an item is given,
    /// and every CAS a store compares with, goes through it (one AND, no branch).
    cas_mask: u64,
    cas_counter: u64,
    /// memcached's settings.oldest_live / oldest_cas (flush_all).
    oldest_live: RelTime,
    oldest_cas: u64,
    /// An immediate flush_all with CAS words on demand: items last touched in the
    /// second `oldest_live` itself go unless they carry a CAS of at least `oldest_cas`
    /// (every item stored in that second after the flush is given the word).
    flush_second_by_cas: bool,
    /// An item that allocation must not evict (the old version during an update).
    pinned: u32,
    stats: StoreStats,
    /// Evictions recorded for the caller while it asks for them (log
    /// watchers), at most `EVICTIONS_KEPT` until taken.
    evicted: Option<Vec<Evicted>>,
    crawl: crawl::Cursor,
    restored: Restored,
    /// The store is owned by one shard thread: raw pointers into the arena make it
    /// !Send and !Sync, which is what we want.
    _owner: PhantomData<*mut u8>,
}

// Store must stay !Send and !Sync (one owner shard, raw pointers into its arena): this
// fails to compile if either is ever implemented, because `_` can no longer be inferred.
const _: fn() = || {
    trait AmbiguousIfImpl<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfImpl<u8> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfImpl<u16> for T {}
    let _ = <Store as AmbiguousIfImpl<_>>::some_item;
};

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllocError {
    TooLarge,
    OutOfMemory,
}

impl Store {
    /// Maps the arena and builds an empty store.
    pub fn new(cfg: StoreConfig) -> Result<Store, StoreError> {
        cfg.validate()?;
        let arena = arena::Arena::new(&cfg)?;
        Store::build(cfg, arena)
    }

    /// Bytes of arena a store with `cfg` maps: its region of a memory file must hold
    /// at least this many.
    pub fn arena_len(cfg: &StoreConfig) -> usize {
        cfg.memory_limit / cfg.slab_page_size * cfg.slab_page_size
    }

    /// A store whose arena is `region_len` bytes of `file` at `offset` (`-e`, warm
    /// restart). With `saved` (the state a previous run's `save_state` wrote for this
    /// region) it brings back that run's items; the second result is then what was
    /// restored, or why nothing was (and the store starts empty).
    pub fn with_memory_file(
        cfg: StoreConfig,
        file: &std::fs::File,
        offset: u64,
        region_len: usize,
        saved: Option<&[u8]>,
    ) -> Result<(Store, Option<Result<Restored, String>>), StoreError> {
        cfg.validate()?;
        let arena = arena::Arena::from_file(&cfg, file, offset, region_len)?;
        let mut store = Store::build(cfg, arena)?;
        let outcome = saved.map(|s| {
            let now = store.now;
            let r = store.restore_from(s);
            if r.is_err() {
                store.reset_empty(now);
            }
            r
        });
        if let Some(Ok(r)) = &outcome {
            store.restored = *r;
        }
        Ok((store, outcome))
    }

    /// What the warm start brought back (zero after a cold start).
    pub fn restored(&self) -> Restored {
        self.restored
    }

    fn build(cfg: StoreConfig, arena: arena::Arena) -> Result<Store, StoreError> {
        let cas_words = if !cfg.use_cas {
            CasWords::Never
        } else if cfg.cas_on_demand && cfg.evictions {
            CasWords::OnDemand
        } else {
            CasWords::Always
        };
        let layout = Layout::new(cfg.eviction.linked(), !cfg.evictions, cas_words);
        // The smallest chunk holds a header and 16 bytes of key and value: a
        // smaller class would hold only items of 8 bytes or less, and split
        // the smallest items over two classes (memcached keeps them in one:
        // its issue_29.t counts two empty values with 7- and 9-byte keys in
        // class 1). Finer classes for small items only with the pages for them.
        let sizes = slab::class_sizes(
            layout.total(MIN_KEY_VALUE, 0, layout.words(0, 0, false)),
            cfg.slab_page_size,
            cfg.growth_factor,
            slab::fine_steps(arena.len / cfg.slab_page_size, arena.handle_shift()),
        );
        if sizes.len() > 250 {
            return Err(StoreError::Config {
                field: "growth_factor",
                reason: format!(
                    "{} makes {} size classes (at most 250); raise it",
                    cfg.growth_factor,
                    sizes.len()
                ),
            });
        }
        let mut slabs = Slabs::new(arena.len, cfg.slab_page_size, &sizes);
        // S3-FIFO keeps a ghost table and small rings off the arena: charge them as pages
        // so every policy gets the same memory. The ghost remembers about as many keys
        // as a store of ~256-byte items holds.
        let mut ghost_entries = arena.len / 256;
        if cfg.eviction == Policy::S3fifo {
            // Ring room for ~10% of the items (twice, for stale entries) plus the ghost;
            // the ghost then gets whatever the reserved pages leave.
            // At most an eighth of the pages, so that tiny stores keep their memory
            // (their ghost is then a token 1024 entries).
            let ring = ghost_entries / 10 * 8;
            let pages = (ghost_entries * 4 + ring)
                .div_ceil(cfg.slab_page_size)
                .min(slabs.n_pages as usize / 8);
            slabs.reserve_pages(pages as u32);
            ghost_entries = ((pages * cfg.slab_page_size).saturating_sub(ring) / 4).max(1024);
        }
        if arena.backing == arena::Backing::Thp {
            slabs.huge = Some(slab::HugeRegions::new(slabs.n_pages, cfg.slab_page_size));
        }
        let max_handle = slabs.max_handle(arena.len);
        let seed = 0x9e37_79b9_7f4a_7c15 ^ cfg.shard_id as u64;
        let cas_layout = cfg.cas_layout();
        let cas_mask = if cfg.use_cas { u64::MAX } else { 0 };
        let process_started = if cfg.process_started == 0 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .saturating_sub(2)
        } else {
            cfg.process_started
        };
        let stats = StoreStats {
            limit_maxbytes: arena.len as u64,
            ..StoreStats::default()
        };
        Ok(Store {
            policies: Policies::new(cfg.eviction, sizes.len(), ghost_entries, seed),
            index: Index::new(max_handle),
            slabs,
            arena,
            layout,
            cfg,
            now: 2,
            process_started,
            cas_layout,
            cas_mask,
            cas_counter: 1,
            oldest_live: 0,
            oldest_cas: 0,
            flush_second_by_cas: false,
            pinned: NONE,
            evicted: None,
            stats,
            crawl: crawl::Cursor::default(),
            restored: Restored::default(),
            _owner: PhantomData,
        })
    }
    /// The next wholly carved region of a THP arena not yet handed out, oldest
    /// first; the caller gives it to huge pages ([`HugeRegion::collapse`]). Counted
    /// in `arena_huge_bytes` from here on.
    pub fn take_carved(&mut self) -> Option<HugeRegion> {
        let huge = self.slabs.huge.as_mut()?;
        let region = huge.pending.pop_front()?;
        huge.promoted += 1;
        self.arena
            .huge_region(region as usize * huge.bytes, huge.bytes)
    }

    /// What backs the arena (hugetlb, THP or normal pages).
    pub fn backing(&self) -> Backing {
        self.arena.backing
    }

    /// The arena's NUMA binding.
    pub fn numa_binding(&self) -> NumaBinding {
        self.arena.numa
    }

    /// The settings the store was built with.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// Chunk sizes of the size classes, smallest first.
    pub fn class_sizes(&self) -> Vec<u32> {
        self.slabs.classes.iter().map(|c| c.size).collect()
    }

    /// Bytes of slab pages handed to classes: never above the memory limit.
    pub fn used_bytes(&self) -> usize {
        self.slabs.used_bytes()
    }

    /// Slab pages available to size classes (pages charged to side metadata excluded).
    pub fn page_count(&self) -> usize {
        self.slabs.n_pages as usize
    }

    /// Bytes the arena may hand out (the limit rounded down to whole pages).
    pub fn arena_bytes(&self) -> usize {
        self.arena.len
    }

    /// Sets the current time, in seconds since `process_started`. Call once per loop turn.
    pub fn set_time(&mut self, now: RelTime) {
        self.now = now;
        // A delayed flush_all takes effect now: from here on, the CAS rule alone decides
        // (every item stored before this turn has a lower CAS), which stays exact even
        // when the 24-bit access time of an old item has wrapped.
        if self.oldest_live != 0
            && self.oldest_cas == 0
            && self.oldest_live <= now
            && self.uses_cas()
        {
            self.oldest_cas = self.cas_layout.cas(self.cas_counter);
        }
    }

    /// `set_time` from a unix time in seconds (times before the process start clamp to 2,
    /// so relative time 1 always lies in the past).
    pub fn set_unix_time(&mut self, unix: u64) {
        let rel = unix
            .saturating_sub(self.process_started)
            .clamp(2, u32::MAX as u64);
        self.set_time(rel as RelTime);
    }

    pub fn now(&self) -> RelTime {
        self.now
    }

    /// Unix time that relative times count from.
    pub fn process_started(&self) -> u64 {
        self.process_started
    }

    /// memcached's `realtime()`: 0 never expires, up to 30 days is relative, beyond that
    /// an absolute unix time, negative is already expired.
    pub fn realtime(&self, exptime: i64) -> RelTime {
        if exptime == 0 {
            return 0;
        }
        if exptime < 0 {
            return 1;
        }
        if exptime > REALTIME_MAXDELTA {
            if exptime as u64 <= self.process_started {
                return 1;
            }
            return (exptime as u64 - self.process_started).min(u32::MAX as u64) as RelTime;
        }
        (exptime as u64 + self.now as u64).min(u32::MAX as u64) as RelTime
    }

    /// Number of live items (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // ---- internals shared by ops, meta and crawl --------------------------------

    #[inline]
    fn item(&self, h: u32) -> ItemPtr {
        ItemPtr(self.arena.item(h))
    }

    /// Hints that a request for a key with `hash` is coming: its index slot
    /// will be read. Call it a few requests ahead of the request itself.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Hints that the item a key with `hash` maps to will be read: reads the
    /// index (best after `prefetch_index` had time to bring it in) and
    /// prefetches the header of every candidate item.
    #[inline]
    pub fn prefetch_item(&self, hash: u64) {
        self.index.candidates(hash, 2, |h| {
            // Header, key and a small value: the first 192 bytes of the item,
            // which span four cache lines unless the chunk starts on a line
            // boundary (chunks are only 8-byte aligned). Larger values are
            // copied sequentially, which the hardware prefetches.
            let at = self.arena.item(h);
            for off in [0, 64, 128, 191] {
                index::prefetch(at.wrapping_add(off));
            }
        });
    }

    #[inline]
    fn class_of(&self, h: u32) -> usize {
        self.slabs.page_class[self.slabs.page_of(h) as usize] as usize
    }

    /// A CAS value made elsewhere (a replica record from the owner node):
    /// the CAS values this store makes from now on are greater, so that a
    /// later write to the key still orders after it (a Lamport clock). The
    /// value must come from a store with the same `tag_bits`.
    pub fn observe_cas(&mut self, cas: u64) {
        let counter = self.cas_layout.counter(cas);
        if counter >= self.cas_counter {
            self.cas_counter = counter + 1;
        }
    }

    /// How this store makes its CAS values.
    pub fn cas_layout(&self) -> CasLayout {
        self.cas_layout
    }

    /// Whether items carry CAS values (false: memcached's -C, see `StoreConfig::use_cas`).
    pub fn uses_cas(&self) -> bool {
        self.cas_mask != 0
    }

    /// A CAS a request brings, as the store compares it: 0 ("none given")
    /// without CAS, as memcached's item without ITEM_CAS reads back 0.
    #[inline]
    pub fn request_cas(&self, cas: u64) -> u64 {
        cas & self.cas_mask
    }

    /// Gives an item that carries the CAS word the CAS `cas` and returns it; an item
    /// without the word keeps none (0).
    #[inline]
    fn stamp_cas(&self, it: ItemPtr, cas: u64) -> u64 {
        if !it.has(item::BIT_HAS_CAS) {
            return 0;
        }
        let cas = cas & self.cas_mask;
        self.layout.set_cas_word(it, cas);
        cas
    }

    /// The item's CAS as a request compares it: `None` for an item without the CAS
    /// word under CAS words on demand, whose CAS no client has seen (it is newer than
    /// any CAS a client holds, so no compare matches it and every CAS is lower);
    /// `Some(0)` under -C.
    #[inline]
    fn item_cas(&self, it: ItemPtr) -> Option<u64> {
        match self.layout.cas_words {
            CasWords::Never => Some(0),
            _ if it.has(item::BIT_HAS_CAS) => Some(self.layout.cas(it)),
            _ => None,
        }
    }

    /// What an item without the CAS word is compared as where the order of CAS values
    /// matters (ms `I`): the CAS it would be given now, above every CAS made so far,
    /// as it was stored after every CAS a client can hold for an older version.
    #[inline]
    fn unseen_cas(&self) -> u64 {
        self.cas_layout.cas(self.cas_counter)
    }

    /// The words a fresh item with these flags and exptime carries; `cas_wanted`:
    /// the caller returns its CAS or gives it one. In the second of an immediate
    /// flush_all every new item gets the CAS word, which is what tells it from the
    /// items the flush hid (`is_flushed`).
    #[inline]
    fn words(&self, flags: u32, exptime: RelTime, cas_wanted: bool) -> Words {
        let in_flush_second = self.flush_second_by_cas && self.oldest_live == self.now;
        self.layout
            .words(flags, exptime, cas_wanted || in_flush_second)
    }

    #[inline]
    fn next_cas(&mut self) -> u64 {
        let c = self.cas_layout.cas(self.cas_counter);
        self.cas_counter += 1;
        c
    }

    #[inline]
    fn find(&self, key: HashedKey<'_>) -> Option<Found> {
        let (arena, layout, bytes) = (&self.arena, self.layout, key.bytes());
        self.index.find(key.hash(), |h| {
            let it = ItemPtr(arena.item(h));
            it.klen() == bytes.len() && keys_equal(layout.key(it), bytes)
        })
    }

    #[inline]
    fn is_expired(&self, it: ItemPtr) -> bool {
        let e = self.layout.exptime(it);
        e != 0 && e <= self.now
    }

    /// memcached's item_is_flushed, with the last access as the item's time.
    #[inline]
    fn is_flushed(&self, it: ItemPtr) -> bool {
        if self.oldest_live == 0 || self.oldest_live > self.now {
            return false;
        }
        let (idle, age) = (it.idle(self.now), self.now - self.oldest_live);
        let cas = self.layout.cas(it);
        if idle == age && self.flush_second_by_cas {
            // Touched in the second of an immediate flush: before the flush, unless it
            // carries a CAS from after it.
            return cas == 0 || cas < self.oldest_cas;
        }
        idle >= age || (self.oldest_cas != 0 && cas != 0 && cas < self.oldest_cas)
    }

    /// Finds a live item: expired and flushed items are unlinked on the way (and counted
    /// as get_expired / get_flushed when `count` is set). Always inlined: with a
    /// plain hint the compiler kept it out of line in `do_get` (4.7% of a store_ops
    /// profile in the call itself); inlined, the 1k-hot get is ~0.7 ns faster.
    #[inline(always)]
    fn lookup(&mut self, key: HashedKey<'_>, count: bool) -> Option<Found> {
        let found = self.find(key)?;
        let it = self.item(found.handle());
        if self.is_flushed(it) {
            if count {
                self.stats.get_flushed += 1;
            }
            self.do_unlink(found);
            return None;
        }
        if self.is_expired(it) {
            if count {
                self.stats.get_expired += 1;
            }
            self.do_unlink(found);
            return None;
        }
        Some(found)
    }

    /// [`lookup`](Self::lookup) for a store: a dead (expired or flushed)
    /// item under the key is unlinked and its memory counted as reclaimed,
    /// as memcached counts the dead item its allocation finds and reuses.
    fn lookup_for_store(&mut self, key: HashedKey<'_>) -> Option<Found> {
        let found = self.find(key)?;
        let it = self.item(found.handle());
        if !self.is_flushed(it) && !self.is_expired(it) {
            return Some(found);
        }
        let fetched = it.has(BIT_FETCHED);
        let cls = self.class_of(found.handle());
        let c = &mut self.slabs.classes[cls];
        self.stats.reclaimed += 1;
        c.stats.reclaimed += 1;
        if !fetched {
            self.stats.expired_unfetched += 1;
            c.stats.expired_unfetched += 1;
        }
        self.do_unlink(found);
        None
    }

    /// Removes a linked item from the index, its policy and the stats, and frees its chunk.
    fn do_unlink(&mut self, found: Found) {
        self.index.remove(found);
        self.release(found.handle());
    }

    /// Everything of an unlink except the index.
    fn release(&mut self, h: u32) {
        let it = self.item(h);
        let cls = self.class_of(h);
        let total = self.layout.item_total(it) as u64;
        self.policies.on_remove(&self.arena, cls, h);
        let c = &mut self.slabs.classes[cls];
        c.items -= 1;
        c.requested -= total;
        self.stats.curr_items -= 1;
        self.stats.bytes -= total;
        self.slabs.free_chunk(&self.arena, cls, h);
    }

    /// Links a freshly written item: new CAS (unless given; only for an item with the
    /// CAS word), times, index entry (taking over `replace`'s slot if any), policy and
    /// stats.
    fn do_link(&mut self, h: u32, hash: u64, cas: Option<u64>, replace: Option<Found>) {
        self.do_relink(h, hash, cas, replace);
        self.stats.total_items += 1;
    }

    /// [`do_link`](Self::do_link) without counting a new item in `total_items`: for an
    /// item that only moved to another chunk (`set_item_exptime`).
    fn do_relink(&mut self, h: u32, hash: u64, cas: Option<u64>, replace: Option<Found>) {
        let it = self.item(h);
        if it.has(item::BIT_HAS_CAS) {
            let cas = match cas {
                Some(c) => c,
                None => self.next_cas(),
            };
            self.stamp_cas(it, cas);
        } else {
            debug_assert!(
                cas.is_none() || self.layout.cas_words == CasWords::Never,
                "a given CAS needs the CAS word"
            );
        }
        it.set_atime(self.now);
        let cls = self.class_of(h);
        let total = self.layout.item_total(it) as u64;
        match replace {
            Some(old) => {
                let old_policy = self.item(old.handle()).policy();
                self.index.replace(old, h);
                self.release(old.handle());
                self.policies
                    .on_replace(&self.arena, &self.slabs, cls, h, hash, old_policy);
            }
            None => {
                let (arena, layout) = (&self.arena, self.layout);
                self.index
                    .insert(hash, h, |x| key_hash(layout.key(ItemPtr(arena.item(x)))));
                self.policies
                    .on_insert(&self.arena, &self.slabs, cls, h, hash);
            }
        }
        let page = self.slabs.page_of(h) as usize;
        self.slabs.page_atime[page] = self.now;
        let c = &mut self.slabs.classes[cls];
        c.items += 1;
        c.requested += total;
        self.stats.curr_items += 1;
        self.stats.bytes += total;
    }

    /// Marks a read: fetched bit, access time, the policy's hit.
    ///
    /// Every write is skipped when it would not change anything: a key read
    /// again within the same second, whose policy state is saturated (S3-FIFO's
    /// frequency at its cap, CLOCK's reference bit set), leaves its cache line
    /// and its page's access time clean, so hot keys cost no write-backs.
    #[inline]
    fn do_bump(&mut self, h: u32, cls: usize) {
        let it = self.item(h);
        let was_fetched = it.has(BIT_FETCHED);
        if !was_fetched {
            it.set_bit(BIT_FETCHED, true);
        }
        let page = self.slabs.page_of(h) as usize;
        if self.slabs.page_atime[page] != self.now {
            self.slabs.page_atime[page] = self.now;
        }
        if self.policies.kind == Policy::Lru {
            it.set_atime(self.now);
            self.policies.on_hit(&self.arena, cls, h, was_fetched);
        } else {
            let old = it.policy();
            let p = self.policies.hit_byte(old);
            if p != old || it.atime() != self.now & 0x00ff_ffff {
                it.set_atime_policy(self.now, p);
            }
        }
    }

    /// Takes a chunk able to hold `total` bytes: free list, fresh page, a page moved from
    /// a colder class, or an eviction in the item's own class.
    fn alloc(&mut self, total: usize) -> Result<u32, AllocError> {
        if total > self.cfg.max_item_size {
            return Err(AllocError::TooLarge);
        }
        let cls = self.slabs.class_for(total).ok_or(AllocError::TooLarge)?;
        for _ in 0..64 {
            if let Some(h) = self.slabs.take_chunk(&self.arena, cls) {
                return Ok(h);
            }
            if let Some(p) = self.slabs.fresh_page() {
                self.slabs.assign_page(cls, p, self.now);
                continue;
            }
            // Moving a page evicts the live items on it: not allowed under -M.
            if self.cfg.evictions && self.maybe_move_page(cls) {
                continue;
            }
            // Under -M nothing is evicted here. Asking the policy for a victim
            // and then not evicting it would corrupt queues that move their
            // pick (S3-FIFO's small queue, CLOCK's hand); expired items are
            // reclaimed by the crawler instead.
            if !self.cfg.evictions {
                break;
            }
            let v = self
                .policies
                .victim(&self.arena, &self.slabs, self.layout, cls, self.pinned);
            if v == NONE {
                if self.move_page(cls, true) {
                    continue;
                }
                break;
            }
            self.evict(v);
        }
        self.slabs.classes[cls].stats.outofmemory += 1;
        Err(AllocError::OutOfMemory)
    }

    /// Whether evictions are recorded for [`Store::take_evictions`] from now on.
    pub fn record_evictions(&mut self, on: bool) {
        match (on, self.evicted.is_some()) {
            (true, false) => self.evicted = Some(Vec::new()),
            (false, true) => self.evicted = None,
            _ => {}
        }
    }

    /// The evictions recorded since the last call (see [`Store::record_evictions`]).
    pub fn take_evictions(&mut self) -> Vec<Evicted> {
        match self.evicted.as_mut() {
            Some(log) if !log.is_empty() => std::mem::take(log),
            _ => Vec::new(),
        }
    }

    /// Evicts one item chosen by the policy (or reclaims it, if it was already dead).
    fn evict(&mut self, h: u32) {
        let it = self.item(h);
        let cls = self.class_of(h);
        let fetched = it.has(BIT_FETCHED);
        let dead = self.is_expired(it) || self.is_flushed(it);
        let active = self.policies.is_active(it);
        let idle = it.idle(self.now);
        let nonzero = self.layout.exptime(it) != 0;
        let c = &mut self.slabs.classes[cls];
        if dead {
            self.stats.reclaimed += 1;
            c.stats.reclaimed += 1;
            if !fetched {
                self.stats.expired_unfetched += 1;
                c.stats.expired_unfetched += 1;
            }
        } else {
            if let Some(log) = self.evicted.as_mut()
                && log.len() < EVICTIONS_KEPT
            {
                let e = self.layout.exptime(it);
                log.push(Evicted {
                    key: self.layout.key(it).to_vec(),
                    fetched,
                    ttl: if e == 0 {
                        -1
                    } else {
                        e as i64 - self.now as i64
                    },
                    last_access: idle,
                    class_id: cls as u32 + 1,
                    value_len: self.layout.value(it).len(),
                });
            }
            let c = &mut self.slabs.classes[cls];
            self.stats.evictions += 1;
            c.stats.evicted += 1;
            c.stats.evicted_time = idle;
            c.evicted_since_check += 1;
            if nonzero {
                c.stats.evicted_nonzero += 1;
            }
            if !fetched {
                self.stats.evicted_unfetched += 1;
                c.stats.evicted_unfetched += 1;
            }
            if active {
                self.stats.evicted_active += 1;
                c.stats.evicted_active += 1;
            }
        }
        self.unlink_handle(h);
    }

    /// Unlinks the item at `h`, finding its index slot by handle.
    fn unlink_handle(&mut self, h: u32) {
        let key = self.layout.key(self.item(h));
        let hash = key_hash(key);
        match self.index.find(hash, |x| x == h) {
            Some(found) => self.do_unlink(found),
            None => unreachable!("linked item {h} missing from the index"),
        }
    }

    /// The page the rebalancer would take for class `cls`: the least recently accessed
    /// page of another class (or of any class when `cls` has none), never the pinned one.
    fn coldest_page(&self, cls: usize) -> Option<u32> {
        let pinned_page = (self.pinned != NONE).then(|| self.slabs.page_of(self.pinned));
        let mut best: Option<(u32, u32)> = None;
        for (page, &owner) in self.slabs.page_class.iter().enumerate() {
            let page = page as u32;
            if owner == slab::UNASSIGNED || owner as usize == cls || Some(page) == pinned_page {
                continue;
            }
            let age = self.now.wrapping_sub(self.slabs.page_atime[page as usize]);
            if best.is_none_or(|(_, a)| age > a) {
                best = Some((page, age));
            }
        }
        best.map(|(p, _)| p)
    }

    /// Rebalancing check, run every quarter page of evictions in a class: when another
    /// class holds a page idle for longer than twice the idle time of this class's
    /// coldest page (plus 10 s), move it here.
    fn maybe_move_page(&mut self, cls: usize) -> bool {
        let c = &self.slabs.classes[cls];
        if c.pages.is_empty() {
            return self.move_page(cls, true);
        }
        if c.evicted_since_check < (c.per_page / 4).max(1) {
            return false;
        }
        self.slabs.classes[cls].evicted_since_check = 0;
        self.move_page(cls, false)
    }

    /// Moves the coldest foreign page to `cls` (unconditionally when `force`).
    fn move_page(&mut self, cls: usize, force: bool) -> bool {
        let Some(page) = self.coldest_page(cls) else {
            return false;
        };
        if !force {
            let own_idle = self.slabs.classes[cls]
                .pages
                .iter()
                .map(|&p| self.now.wrapping_sub(self.slabs.page_atime[p as usize]))
                .max()
                .unwrap_or(0);
            let idle = self.now.wrapping_sub(self.slabs.page_atime[page as usize]);
            if idle <= own_idle * 2 + 10 {
                return false;
            }
        }
        let from = self.slabs.page_class[page as usize] as usize;
        let (size, carved) = {
            let c = &self.slabs.classes[from];
            (c.size, c.carved(page))
        };
        for i in 0..carved {
            let h = self.slabs.chunk_handle(page, i, size);
            if !self.item(h).is_free() {
                self.evict(h);
            }
        }
        self.slabs.detach_page(&self.arena, page);
        self.slabs.classes[from].stats.pages_lost += 1;
        self.slabs.assign_page(cls, page, self.now);
        self.stats.slabs_moved += 1;
        true
    }

    /// Allocates and writes an item whose value is produced by `fill` (given the value
    /// buffer), keeping `pinned` safe from eviction meanwhile. `cas_wanted`: the item
    /// gets the CAS word (see [`Store::words`]).
    ///
    /// The size limit counts the exptime and CAS words whether or not the item carries
    /// them, so that any item stored can later be given a TTL or a CAS
    /// (`set_item_exptime`, `give_cas_word`).
    #[allow(clippy::too_many_arguments)]
    fn write_item(
        &mut self,
        key: &[u8],
        flags: u32,
        exptime: RelTime,
        vlen: usize,
        pinned: u32,
        cas_wanted: bool,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u32, AllocError> {
        if key.is_empty() || key.len() > KEY_MAX_LENGTH || vlen > item::MAX_VALUE_LEN {
            return Err(AllocError::TooLarge);
        }
        let widest = self.layout.words(flags, 1, true);
        if self.layout.total(key.len(), vlen, widest) > self.cfg.max_item_size {
            return Err(AllocError::TooLarge);
        }
        let words = self.words(flags, exptime, cas_wanted);
        let total = self.layout.total(key.len(), vlen, words);
        self.pinned = pinned;
        let r = self.alloc(total);
        self.pinned = NONE;
        let h = r?;
        let it = self.item(h);
        self.layout.init(it, key, vlen, flags, exptime, words);
        fill(self.layout.value_mut(it, vlen));
        Ok(h)
    }

    /// Gives the live item `found` the expiry `exptime` (touch, gat, mg/ma `T`, md `I T`)
    /// and returns where it is now, or `None` when it had to go.
    ///
    /// An item with the exptime word is written in place, a TTL of 0 included (the word
    /// stays until the item is next stored). One without the word needs 4 more bytes:
    /// in place when its chunk has them spare, else the item moves ([`Store::regrow`]).
    /// Under -M every item carries the word (`Layout::always_exp`), so nothing moves
    /// and nothing is evicted here.
    fn set_item_exptime(&mut self, found: Found, hash: u64, exptime: RelTime) -> Option<Found> {
        let (h, layout) = (found.handle(), self.layout);
        let it = self.item(h);
        if it.has(item::BIT_HAS_EXP) {
            layout.set_exptime_word(it, exptime);
            return Some(found);
        }
        if exptime == 0 {
            return Some(found);
        }
        if self.grow_in_place(h, item::EXPTIME_LEN) {
            layout.insert_exp_word(it, exptime);
            return Some(found);
        }
        let words = Words {
            exp: true,
            ..layout.words_of(it)
        };
        let cas = words.cas.then(|| layout.cas(it));
        self.regrow(found, hash, exptime, words, cas)
    }

    /// Gives the live item `found` the CAS word, with a fresh CAS, unless it has it:
    /// a client is about to learn its CAS (see the item module). Returns where the item
    /// is now, or `None` when it had to go. In place when its chunk has 8 bytes spare,
    /// else the item moves ([`Store::regrow`]). Nothing to do under -C, under -M and
    /// when every item carries the word.
    fn give_cas_word(&mut self, found: Found, hash: u64) -> Option<Found> {
        let (h, layout) = (found.handle(), self.layout);
        let it = self.item(h);
        if layout.cas_words != CasWords::OnDemand || it.has(item::BIT_HAS_CAS) {
            return Some(found);
        }
        let cas = self.next_cas();
        if self.grow_in_place(h, item::CAS_LEN) {
            layout.insert_cas_word(it, cas & self.cas_mask);
            return Some(found);
        }
        let words = Words {
            cas: true,
            ..layout.words_of(it)
        };
        self.regrow(found, hash, layout.exptime(it), words, Some(cas))
    }

    /// [`give_cas_word`](Self::give_cas_word) for a read whose reply prints the CAS
    /// (`with_cas`); a miss stays a miss, and so does an item that had to go.
    fn cas_word_if(&mut self, found: Option<Found>, hash: u64, with_cas: bool) -> Option<Found> {
        match found {
            Some(f) if with_cas => self.give_cas_word(f, hash),
            f => f,
        }
    }

    /// Whether the item at `h` can grow by `more` bytes in its chunk; if so, counts them
    /// (the caller then writes the new word).
    fn grow_in_place(&mut self, h: u32, more: usize) -> bool {
        let cls = self.class_of(h);
        let total = self.layout.item_total(self.item(h));
        if total + more > self.slabs.classes[cls].size as usize {
            return false;
        }
        self.slabs.classes[cls].requested += more as u64;
        self.stats.bytes += more as u64;
        true
    }

    /// Moves the live item `found` to a chunk of the class it fits with `words` and
    /// `exptime`, found as a store finds one (free list, fresh page, a page moved from
    /// another class, or an eviction in that class; the item itself is pinned), keeping
    /// its fetched/stale/win-token bits, policy state and access time, and giving it
    /// `cas` when it carries the CAS word. Not counted as a new item. Only when even
    /// that finds no chunk is the item evicted (and counted so): a cache that evicts may
    /// drop any item at any moment, and the caller answers as if it had gone just
    /// before the request.
    fn regrow(
        &mut self,
        found: Found,
        hash: u64,
        exptime: RelTime,
        words: Words,
        cas: Option<u64>,
    ) -> Option<Found> {
        let (h, layout) = (found.handle(), self.layout);
        let it = self.item(h);
        let (key, value) = (layout.key(it), layout.value(it));
        let flags = layout.flags(it);
        let moved = self.write_item(key, flags, exptime, value.len(), h, words.cas, |d| {
            d.copy_from_slice(value)
        });
        let Ok(nh) = moved else {
            self.evict(h);
            return None;
        };
        let new = self.item(nh);
        for bit in [BIT_FETCHED, item::BIT_STALE, item::BIT_TOKEN_SENT] {
            if it.has(bit) {
                new.set_bit(bit, true);
            }
        }
        let atime = it.atime();
        let cas = new
            .has(item::BIT_HAS_CAS)
            .then(|| cas.unwrap_or_else(|| self.next_cas()));
        self.do_relink(nh, hash, cas, Some(found));
        new.set_atime(atime);
        Some(found.with_handle(nh))
    }

    /// The view of a live item.
    fn view(&self, h: u32, cls: usize, last_access: u32, fetched: bool) -> ItemView<'_> {
        let it = self.item(h);
        let e = self.layout.exptime(it);
        ItemView {
            key: self.layout.key(it),
            value: self.layout.value(it),
            flags: self.layout.flags(it),
            cas: self.layout.cas(it),
            exptime: e,
            ttl: if e == 0 {
                -1
            } else {
                e as i64 - self.now as i64
            },
            last_access,
            fetched,
            class_id: cls as u32 + 1,
            size: self.layout.item_total(it),
        }
    }
}
