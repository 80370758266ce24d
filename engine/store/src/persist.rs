//! Warm restart (`-e`): the state a stopped store leaves beside its file-backed arena,
//! and the rebuild that brings it back.
//!
//! ```text
//!   stop:    save_state()  ──►  bytes for the meta file (the engine frames and checksums it)
//!            | layout (page size, classes, limit, policy, ...) | clock, CAS counter, flush |
//!            | slabs: page owners, free lists, bump cursors     | policy: lists, hands, small |
//!            | xxh3 of every carved byte of every page          |
//!   start:   restore(cfg, arena, bytes)
//!            layout equal? ─no─► cold start, with the reason
//!            arena checksum equal? ─no─► cold start, with the reason
//!            walk every carved chunk: index insert, stats; items that expired or were
//!            flushed while stopped are unlinked; times move to the new clock base
//! ```
//!
//! Handles are arena offsets, so nothing in the arena needs fixing up: the free lists
//! (through the CAS words of free chunks) and the list policies' links are restored as
//! they were, and so is S3-FIFO's ghost history (fingerprints of recently evicted
//! keys, since state version 2). Per-class counters (`stats slabs`/`items` evictions and the
//! like) and `stats` counters restart from zero, as after any restart.

use super::index::Index;
use super::item::{ItemPtr, Layout};
use super::slab::{NONE, Slabs, UNASSIGNED};
use super::{KEY_MAX_LENGTH, Store, key_hash};

/// Version of the per-shard state layout; bump on any change to what is written.
/// 2: S3-FIFO's ghost history follows the small rings.
/// 3: the CAS layout (tag and tag bits) is part of the layout words.
/// 5: the 16-byte item header (exptime a word present only when non-zero, or
///    always under -M, which is a layout word), 19-bit value length field.
/// 6: the 8-byte item header (the CAS a word present once a client can know it, or
///    always, which is a layout word), 18-bit value length field, and the flush
///    horizon's "second by CAS" bit.
/// 7: handles count 4 bytes (8 in a shard of more than 16 GiB), 4-byte size classes
///    to 256 bytes in a shard of 128 pages or more.
const STATE_VERSION: u32 = 7;

/// What a warm start brought back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Items live again.
    pub items: u64,
    /// Items found expired or flushed (time spent stopped counts) and dropped.
    pub dropped: u64,
    /// Time taken by the checksum and the rebuild, in microseconds.
    pub micros: u64,
}

/// Little-endian writer of the saved state.
#[derive(Default)]
pub(crate) struct Enc(pub(crate) Vec<u8>);

impl Enc {
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32s(&mut self, v: impl ExactSizeIterator<Item = u32>) {
        self.u64(v.len() as u64);
        for x in v {
            self.u32(x);
        }
    }
}

/// Reader of the saved state: every read is bounds-checked, so a short or corrupt
/// state is an error, never a panic.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
}

pub(crate) type DecResult<T> = Result<T, String>;

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf }
    }
    fn take(&mut self, n: usize) -> DecResult<&'a [u8]> {
        if self.buf.len() < n {
            return Err("the saved state is truncated".into());
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    pub(crate) fn u32(&mut self) -> DecResult<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub(crate) fn u64(&mut self) -> DecResult<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A length-prefixed list of u32, at most `max` long.
    pub(crate) fn u32s(&mut self, max: usize) -> DecResult<Vec<u32>> {
        let n = self.u64()? as usize;
        if n > self.buf.len() / 4 {
            return Err("the saved state is truncated".into());
        }
        if n > max {
            return Err(format!("a saved list of {n} entries is out of bounds"));
        }
        (0..n).map(|_| self.u32()).collect()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The settings that decide where every byte of the arena means what: a saved state
/// is used only when these are equal.
fn layout_words(store: &Store) -> Vec<u64> {
    let c = &store.cfg;
    let mut w = vec![
        c.memory_limit as u64,
        store.arena.len as u64,
        c.slab_page_size as u64,
        c.growth_factor.to_bits(),
        c.max_item_size as u64,
        c.eviction as u64,
        c.shard_id as u64,
        // The items' CAS values and the saved counter mean something only
        // under the layout that made them (a node whose index in the member
        // list changed would otherwise make another node's values).
        store.cas_layout.tag,
        u64::from(store.cas_layout.tag_bits),
        // memcached's restart refuses a change of -C too: the items' CAS
        // values would mean nothing (or be missing) under the other setting.
        u64::from(store.uses_cas()),
        store.layout.hdr as u64,
        // Under -M every item carries the exptime word: a store that evicts may have
        // left items without it, which -M could not give a TTL without memory.
        u64::from(store.layout.always_exp),
        // Items stored while CAS words were on demand may have none, which a store
        // whose every item must carry one (a cluster's) cannot read.
        store.layout.cas_words as u64,
        store.slabs.n_pages as u64,
    ];
    w.extend(store.slabs.classes.iter().map(|c| c.size as u64));
    w
}

fn layout_names() -> [&'static str; 14] {
    [
        "memory limit",
        "arena size",
        "slab page size",
        "growth factor",
        "item size limit",
        "eviction policy",
        "shard id",
        "CAS tag",
        "CAS tag width",
        "CAS setting (-C)",
        "item header",
        "eviction setting (-M)",
        "CAS words (cluster, -M)",
        "page count",
    ]
}

impl Store {
    /// The state to write beside the arena at a graceful stop, after the last request.
    /// Also syncs a file-backed arena to its file.
    pub fn save_state(&mut self) -> std::io::Result<Vec<u8>> {
        // An index still growing holds entries in two tables; the rebuild makes one.
        let mut e = Enc::default();
        e.u32(STATE_VERSION);
        let layout = layout_words(self);
        e.u64(layout.len() as u64);
        for w in layout {
            e.u64(w);
        }
        e.u64(self.process_started);
        e.u32(self.now);
        e.u64(self.cas_counter);
        e.u32(self.oldest_live);
        e.u64(self.oldest_cas);
        e.u32(u32::from(self.flush_second_by_cas));
        e.u64(self.index.capacity() as u64);
        self.slabs.save(&mut e);
        self.policies.save(&mut e);
        e.u64(self.arena_checksum());
        self.arena.sync()?;
        Ok(e.0)
    }

    /// xxh3 over every carved chunk of every page handed to a class.
    fn arena_checksum(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        let page = self.slabs.page_size;
        for (p, &owner) in self.slabs.page_class.iter().enumerate() {
            if owner == UNASSIGNED {
                continue;
            }
            let c = &self.slabs.classes[owner as usize];
            let carved = c.carved(p as u32) as usize * c.size as usize;
            h.update(&(p as u32).to_le_bytes());
            h.update(self.arena.bytes(p * page, carved));
        }
        h.digest()
    }

    /// Builds the store over an arena that holds a previous run's items, from the state
    /// that run saved. An error says why the state cannot be used; the caller then
    /// starts cold (the arena's bytes are never read as items).
    pub(crate) fn restore_from(&mut self, saved: &[u8]) -> Result<Restored, String> {
        let started = std::time::Instant::now();
        let mut d = Dec::new(saved);
        let version = d.u32()?;
        if version != STATE_VERSION {
            return Err(format!(
                "the saved shard state has version {version}, this build reads {STATE_VERSION}"
            ));
        }
        let want = layout_words(self);
        let n = d.u64()? as usize;
        if n > 1024 {
            return Err("the saved layout is corrupt".into());
        }
        let have: Vec<u64> = (0..n).map(|_| d.u64()).collect::<DecResult<_>>()?;
        if have != want {
            let what = layout_names()
                .iter()
                .zip(want.iter().zip(&have))
                .find(|(_, (a, b))| a != b)
                .map_or("size classes", |(n, _)| n);
            return Err(format!("the {what} differs from the saved one"));
        }
        let old_base = d.u64()?;
        let stop_now = d.u32()?;
        let cas_counter = d.u64()?;
        let oldest_live = d.u32()?;
        let oldest_cas = d.u64()?;
        let flush_second_by_cas = d.u32()? != 0;
        let index_cap = d.u64()? as usize;
        self.slabs.load(&mut d)?;
        self.policies.load(&mut d, &self.slabs)?;
        let checksum = d.u64()?;
        if !d.is_empty() {
            return Err("the saved shard state has trailing bytes".into());
        }
        if checksum != self.arena_checksum() {
            return Err("the memory file's contents differ from what was saved".into());
        }
        // Relative times of the old run count from old_base; ours from
        // process_started. `old_now` is now on the old clock: time stopped counts
        // (a wall clock that went back counts as no time stopped).
        let new_now = self.now as i64;
        let old_now = (self.process_started as i64 - old_base as i64 + new_now)
            .clamp(stop_now as i64, u32::MAX as i64) as u32;
        let shift = old_now as i64 - new_now;
        // Never below where this store's own counter starts (it may start at a clock).
        self.cas_counter = cas_counter.max(self.cas_counter);
        self.oldest_live = oldest_live;
        self.oldest_cas = oldest_cas;
        self.flush_second_by_cas = flush_second_by_cas;
        self.set_time(old_now);
        let flush_passed = self.oldest_live != 0 && self.oldest_live <= old_now;
        self.index = Index::with_capacity(self.slabs.max_handle(self.arena.len), index_cap);
        let mut dead = Vec::new();
        let mut items = 0u64;
        for p in 0..self.slabs.n_pages {
            let owner = self.slabs.page_class[p as usize];
            if owner == UNASSIGNED {
                continue;
            }
            let cls = owner as usize;
            let (size, carved) = {
                let c = &self.slabs.classes[cls];
                (c.size, c.carved(p))
            };
            for i in 0..carved {
                let h = self.slabs.chunk_handle(p, i, size);
                let it = self.item(h);
                if it.is_free() {
                    continue;
                }
                let klen = it.klen();
                let total = self.layout.item_total(it);
                if klen > KEY_MAX_LENGTH || total > size as usize {
                    return Err(format!("chunk {h} holds an impossible item"));
                }
                let hash = key_hash(self.layout.key(it));
                let (arena, layout) = (&self.arena, self.layout);
                self.index
                    .insert(hash, h, |x| key_hash(layout.key(ItemPtr(arena.item(x)))));
                let c = &mut self.slabs.classes[cls];
                c.items += 1;
                c.requested += total as u64;
                self.stats.curr_items += 1;
                self.stats.bytes += total as u64;
                if self.is_expired(it) || self.is_flushed(it) {
                    dead.push(h);
                    continue;
                }
                items += 1;
                move_times(self.layout, it, old_now, self.now, shift);
            }
        }
        for &h in &dead {
            self.unlink_handle(h);
        }
        for t in self.slabs.page_atime.iter_mut() {
            *t = t.wrapping_sub(shift as u32);
        }
        if flush_passed {
            // Every item it flushed was just dropped.
            self.oldest_live = 0;
            self.oldest_cas = 0;
            self.flush_second_by_cas = false;
        } else if self.oldest_live != 0 {
            self.oldest_live = (self.oldest_live as i64 - shift).max(new_now + 1) as u32;
        }
        self.now = new_now as u32;
        Ok(Restored {
            items,
            dropped: dead.len() as u64,
            micros: started.elapsed().as_micros() as u64,
        })
    }

    /// Forgets every item: the arena's bytes become unused pages again (a cold start
    /// over a file whose contents cannot be trusted).
    pub(crate) fn reset_empty(&mut self, now: u32) {
        // A restore that failed after reading the state has moved the clock and
        // taken the old run's flush horizon: neither belongs to an empty store
        // (a delayed flush left in place would flush this run's items later).
        self.oldest_live = 0;
        self.oldest_cas = 0;
        self.flush_second_by_cas = false;
        self.now = now;
        let fresh = Slabs::new(self.arena.len, self.slabs.page_size, &self.class_sizes());
        let n_pages = self.slabs.n_pages;
        self.slabs = fresh;
        self.slabs.reserve_pages(self.slabs.n_pages - n_pages);
        if self.arena.backing == super::arena::Backing::Thp {
            let page = self.slabs.page_size;
            self.slabs.huge = Some(super::slab::HugeRegions::new(self.slabs.n_pages, page));
        }
        self.policies.clear();
        self.index = Index::new(self.slabs.max_handle(self.arena.len));
        self.stats.curr_items = 0;
        self.stats.bytes = 0;
    }
}

/// Moves an item's times from the old clock (`old_now`) to the new (`new_now`,
/// `shift` seconds behind it): its expiry keeps its unix time, its idle time
/// keeps growing through the time stopped.
fn move_times(layout: Layout, it: ItemPtr, old_now: u32, new_now: u32, shift: i64) {
    let idle = it.idle(old_now);
    it.set_atime(new_now.wrapping_sub(idle));
    let e = layout.exptime(it);
    if e != 0 {
        let moved = (e as i64 - shift).clamp(new_now as i64 + 1, u32::MAX as i64) as u32;
        layout.set_exptime_word(it, moved);
    }
}

/// Whether `h` names a carved chunk of class `cls`, or is NONE.
pub(crate) fn check_handle(slabs: &Slabs, h: u32, cls: usize) -> DecResult<()> {
    if h == NONE || slabs.valid_in(h, cls) {
        Ok(())
    } else {
        Err(format!("saved handle {h} is not a chunk of class {cls}"))
    }
}
