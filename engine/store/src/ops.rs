//! The classic commands: get/gets, gat/gats, touch, set/add/replace/append/prepend/cas,
//! delete, incr/decr, flush_all. Semantics follow memcached 1.6 (`do_store_item`,
//! `do_add_delta`, `item_is_flushed`).

use super::index::Found;
use super::item::{self, CasWords};
use super::item::{BIT_FETCHED, BIT_STALE, BIT_TOKEN_SENT};
use super::slab::NONE;
use super::{AllocError, HashedKey, ItemView, RelTime, Store};

/// Which storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Store only if the item's CAS equals the given one.
    Cas,
}

/// Result of a storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored; the item's new CAS (0 unless asked for: `store_with_cas`, ms `c`, `E`,
    /// or every item carries one, see `StoreConfig::cas_on_demand`).
    Stored { cas: u64 },
    /// add on an existing key, replace/append/prepend on a missing one.
    NotStored,
    /// cas (or a meta CAS compare) on an item whose CAS differs.
    Exists,
    /// cas on a missing key.
    NotFound,
    /// Larger than max_item_size or any size class (`SERVER_ERROR object too large`).
    TooLarge,
    /// No memory could be found for it (`SERVER_ERROR out of memory storing object`).
    OutOfMemory,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchOutcome {
    Touched,
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// md with a CAS that does not match.
    Exists,
    /// md `x`: the emptied item could not be stored.
    NotStored,
    /// md `x`: no memory for the emptied item.
    OutOfMemory,
}

/// Result of incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value and the item's new CAS (0 when it carries none).
    Value {
        value: u64,
        cas: u64,
    },
    NotFound,
    /// The stored value is not a decimal u64 (`CLIENT_ERROR cannot increment or
    /// decrement non-numeric value`).
    NonNumeric,
    /// A CAS compare failed (meta only).
    Exists,
    OutOfMemory,
}

/// Everything `do_store` needs; classic and meta storage commands both build one.
pub(crate) struct StoreReq<'k, 'v> {
    pub(crate) mode: StoreMode,
    pub(crate) key: HashedKey<'k>,
    pub(crate) value: &'v [u8],
    pub(crate) flags: u32,
    pub(crate) exptime: RelTime,
    /// CAS to compare, 0 for none.
    pub(crate) cas: u64,
    /// ms `I`: a CAS below the item's stores the value but marks it stale.
    pub(crate) set_stale: bool,
    /// ms `E`: the CAS to give the new item.
    pub(crate) new_cas: Option<u64>,
    /// ms `N` in append/prepend mode: create the item on a miss with this exptime.
    pub(crate) vivify: Option<RelTime>,
    /// Drop the existing item when the new one cannot be stored (memcached does this for
    /// set, and for every ms mode, so stale data does not outlive a failed update).
    pub(crate) unlink_on_fail: bool,
    /// The caller returns the new item's CAS: it gets the CAS word.
    pub(crate) want_cas: bool,
}

impl<'k, 'v> StoreReq<'k, 'v> {
    /// Whether the new item gets the CAS word: its CAS is returned or given.
    fn with_cas(&self) -> bool {
        self.want_cas || self.new_cas.is_some()
    }

    /// A store with none of the meta options: no CAS to compare, no stale
    /// marking, a fresh CAS, no vivify, the old item kept when it fails.
    pub(crate) fn plain(
        mode: StoreMode,
        key: HashedKey<'k>,
        value: &'v [u8],
        flags: u32,
        exptime: RelTime,
    ) -> StoreReq<'k, 'v> {
        StoreReq {
            mode,
            key,
            value,
            flags,
            exptime,
            cas: 0,
            set_stale: false,
            new_cas: None,
            vivify: None,
            unlink_on_fail: false,
            want_cas: false,
        }
    }
}

impl Store {
    /// get: the item, marked fetched and bumped for the policy. Its `cas` is 0 unless
    /// it carries the CAS word: use [`gets`](Self::gets) to print it.
    pub fn get(&mut self, key: HashedKey<'_>) -> Option<ItemView<'_>> {
        self.do_get(key, false)
    }

    /// gets (and every read whose reply prints the CAS): [`get`](Self::get), the item
    /// given its CAS word first if it has none (an item that found no room for it
    /// was evicted, and this is a miss: see `give_cas_word`).
    pub fn gets(&mut self, key: HashedKey<'_>) -> Option<ItemView<'_>> {
        self.do_get(key, true)
    }

    fn do_get(&mut self, key: HashedKey<'_>, with_cas: bool) -> Option<ItemView<'_>> {
        let found = self.lookup(key, true);
        let found = self.cas_word_if(found, key.hash(), with_cas);
        let Some(found) = found else {
            self.stats.get_misses += 1;
            return None;
        };
        let h = found.handle();
        let it = self.item(h);
        let (idle, fetched) = (it.idle(self.now), it.has(BIT_FETCHED));
        self.stats.get_hits += 1;
        let cls = self.class_of(h);
        self.slabs.classes[cls].stats.get_hits += 1;
        self.do_bump(h, cls);
        Some(self.view(h, cls, idle, fetched))
    }

    /// gat: get and set a new expiry. Counted as touches, as memcached does.
    /// (An item that had to make room for a TTL and found none was evicted and is a
    /// miss: see `set_item_exptime`.) Its `cas` as in [`get`](Self::get).
    pub fn gat(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<ItemView<'_>> {
        self.do_gat(key, exptime, false)
    }

    /// gats (and the binary protocol's GAT and TOUCH, whose replies carry the CAS):
    /// [`gat`](Self::gat) giving the item its CAS word as [`gets`](Self::gets) does.
    pub fn gats(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<ItemView<'_>> {
        self.do_gat(key, exptime, true)
    }

    fn do_gat(&mut self, key: HashedKey<'_>, exptime: i64, with_cas: bool) -> Option<ItemView<'_>> {
        let exp = self.realtime(exptime);
        let found = self.lookup(key, true);
        let before = found.map(|f| {
            let it = self.item(f.handle());
            (it.idle(self.now), it.has(BIT_FETCHED))
        });
        let hash = key.hash();
        let found = found.and_then(|f| self.set_item_exptime(f, hash, exp));
        let found = self.cas_word_if(found, hash, with_cas);
        let Some(found) = found else {
            self.stats.touch_misses += 1;
            return None;
        };
        let (idle, fetched) = before.unwrap_or_default();
        let h = found.handle();
        self.stats.touch_hits += 1;
        let cls = self.class_of(h);
        self.slabs.classes[cls].stats.touch_hits += 1;
        self.do_bump(h, cls);
        Some(self.view(h, cls, idle, fetched))
    }

    /// touch: set a new expiry without fetching.
    pub fn touch(&mut self, key: HashedKey<'_>, exptime: i64) -> TouchOutcome {
        let exp = self.realtime(exptime);
        let found = self.lookup(key, true);
        let Some(found) = found.and_then(|f| self.set_item_exptime(f, key.hash(), exp)) else {
            self.stats.touch_misses += 1;
            return TouchOutcome::NotFound;
        };
        self.stats.touch_hits += 1;
        let cls = self.class_of(found.handle());
        self.slabs.classes[cls].stats.touch_hits += 1;
        self.do_bump(found.handle(), cls);
        TouchOutcome::Touched
    }

    /// A storage command: `exptime` as sent by the client (see `realtime`), `cas` only
    /// for `StoreMode::Cas`. append/prepend keep the item's flags and expiry.
    pub fn store(
        &mut self,
        mode: StoreMode,
        key: HashedKey<'_>,
        flags: u32,
        exptime: i64,
        value: &[u8],
        cas: u64,
    ) -> StoreOutcome {
        let req = self.classic_req(mode, key, flags, exptime, value, cas);
        self.do_store(req)
    }

    /// The request of a classic storage command (`exptime` in client form).
    fn classic_req<'k, 'v>(
        &self,
        mode: StoreMode,
        key: HashedKey<'k>,
        flags: u32,
        exptime: i64,
        value: &'v [u8],
        cas: u64,
    ) -> StoreReq<'k, 'v> {
        StoreReq {
            cas: if mode == StoreMode::Cas { cas } else { 0 },
            unlink_on_fail: mode == StoreMode::Set,
            ..StoreReq::plain(mode, key, value, flags, self.realtime(exptime))
        }
    }

    /// [`store`](Self::store) whose reply carries the new item's CAS (the binary
    /// protocol's): the item gets the CAS word.
    pub fn store_with_cas(
        &mut self,
        mode: StoreMode,
        key: HashedKey<'_>,
        flags: u32,
        exptime: i64,
        value: &[u8],
        cas: u64,
    ) -> StoreOutcome {
        let req = StoreReq {
            want_cas: true,
            ..self.classic_req(mode, key, flags, exptime, value, cas)
        };
        self.do_store(req)
    }

    /// `set` with the common arguments.
    pub fn set(
        &mut self,
        key: HashedKey<'_>,
        value: &[u8],
        flags: u32,
        exptime: i64,
    ) -> StoreOutcome {
        self.store(StoreMode::Set, key, flags, exptime, value, 0)
    }

    pub(crate) fn do_store(&mut self, req: StoreReq<'_, '_>) -> StoreOutcome {
        let hash = req.key.hash();
        let old = self.lookup_for_store(req.key);
        let out = match old {
            Some(found) => self.do_store_existing(&req, hash, found),
            None => self.do_store_missing(&req, hash),
        };
        match out {
            StoreOutcome::TooLarge | StoreOutcome::OutOfMemory => {
                if out == StoreOutcome::TooLarge {
                    self.stats.store_too_large += 1;
                } else {
                    self.stats.store_no_memory += 1;
                }
                if req.unlink_on_fail
                    && let Some(found) = self.lookup(req.key, false)
                {
                    self.do_unlink(found);
                }
            }
            _ => {}
        }
        out
    }

    fn do_store_existing(
        &mut self,
        req: &StoreReq<'_, '_>,
        hash: u64,
        found: Found,
    ) -> StoreOutcome {
        let it = self.item(found.handle());
        let old_cas = self.item_cas(it);
        let req_cas = self.request_cas(req.cas);
        #[derive(PartialEq)]
        enum Cas {
            None,
            Match,
            Stale,
            Bad,
        }
        let cas_res = if req_cas == 0 {
            Cas::None
        } else if Some(req_cas) == old_cas {
            Cas::Match
        } else if req.set_stale && req_cas < old_cas.unwrap_or_else(|| self.unseen_cas()) {
            Cas::Stale
        } else {
            Cas::Bad
        };
        let cls = self.class_of(found.handle());
        match req.mode {
            StoreMode::Add => {
                // add promotes the existing item, as memcached's do_item_update does.
                it.set_atime(self.now);
                StoreOutcome::NotStored
            }
            StoreMode::Cas => match cas_res {
                Cas::Match => {
                    self.stats.cas_hits += 1;
                    let _ = cls;
                    self.replace_with(req, hash, found, req.exptime, 0)
                }
                Cas::Stale => {
                    // Keep the TTL, mark stale, carry the win token over.
                    self.stats.cas_hits += 1;
                    let mut bits = BIT_STALE;
                    if it.has(BIT_TOKEN_SENT) {
                        bits |= BIT_TOKEN_SENT;
                    }
                    self.replace_with(req, hash, found, self.layout.exptime(it), bits)
                }
                _ => {
                    self.stats.cas_badval += 1;
                    StoreOutcome::Exists
                }
            },
            StoreMode::Append | StoreMode::Prepend => {
                if cas_res != Cas::None && cas_res != Cas::Match {
                    return StoreOutcome::Exists;
                }
                let old_val = self.layout.value(it);
                let flags = self.layout.flags(it);
                let vlen = old_val.len() + req.value.len();
                let append = req.mode == StoreMode::Append;
                let new = req.value;
                let exptime = self.layout.exptime(it);
                let (key, pinned, with_cas) = (req.key.bytes(), found.handle(), req.with_cas());
                let r = self.write_item(key, flags, exptime, vlen, pinned, with_cas, |dst| {
                    let (a, b) = if append {
                        (old_val, new)
                    } else {
                        (new, old_val)
                    };
                    dst[..a.len()].copy_from_slice(a);
                    dst[a.len()..].copy_from_slice(b);
                });
                match r {
                    Ok(h) => {
                        self.do_link(h, hash, req.new_cas, Some(found));
                        self.stored(h)
                    }
                    Err(e) => alloc_outcome(e),
                }
            }
            StoreMode::Set | StoreMode::Replace => {
                self.replace_with(req, hash, found, req.exptime, 0)
            }
        }
    }

    fn do_store_missing(&mut self, req: &StoreReq<'_, '_>, hash: u64) -> StoreOutcome {
        match req.mode {
            StoreMode::Add | StoreMode::Set => self.insert_new(req, hash, req.exptime),
            StoreMode::Cas => {
                self.stats.cas_misses += 1;
                StoreOutcome::NotFound
            }
            StoreMode::Append | StoreMode::Prepend => match req.vivify {
                Some(exp) => self.insert_new(req, hash, exp),
                None => StoreOutcome::NotStored,
            },
            StoreMode::Replace => StoreOutcome::NotStored,
        }
    }

    fn insert_new(&mut self, req: &StoreReq<'_, '_>, hash: u64, exptime: RelTime) -> StoreOutcome {
        let (v, with_cas) = (req.value, req.with_cas());
        match self.write_item(
            req.key.bytes(),
            req.flags,
            exptime,
            v.len(),
            NONE,
            with_cas,
            |d| d.copy_from_slice(v),
        ) {
            Ok(h) => {
                self.do_link(h, hash, req.new_cas, None);
                self.stored(h)
            }
            Err(e) => alloc_outcome(e),
        }
    }

    fn replace_with(
        &mut self,
        req: &StoreReq<'_, '_>,
        hash: u64,
        found: Found,
        exptime: RelTime,
        bits: u32,
    ) -> StoreOutcome {
        let v = req.value;
        match self.write_item(
            req.key.bytes(),
            req.flags,
            exptime,
            v.len(),
            found.handle(),
            req.with_cas(),
            |d| d.copy_from_slice(v),
        ) {
            Ok(h) => {
                if bits != 0 {
                    self.item(h).set_bit(bits, true);
                }
                self.do_link(h, hash, req.new_cas, Some(found));
                self.stored(h)
            }
            Err(e) => alloc_outcome(e),
        }
    }

    /// The outcome of a store that linked the item at `h`.
    fn stored(&self, h: u32) -> StoreOutcome {
        StoreOutcome::Stored {
            cas: self.layout.cas(self.item(h)),
        }
    }

    /// delete.
    pub fn delete(&mut self, key: HashedKey<'_>) -> DeleteOutcome {
        match self.lookup(key, false) {
            Some(found) => {
                self.do_unlink(found);
                self.stats.delete_hits += 1;
                DeleteOutcome::Deleted
            }
            None => {
                self.stats.delete_misses += 1;
                DeleteOutcome::NotFound
            }
        }
    }

    /// incr/decr: 64-bit wrap on incr, floor at 0 on decr. A number that grows longer
    /// moves to a new item (the length changes); a shorter one is space-padded in place,
    /// as memcached does.
    pub fn incr_decr(&mut self, key: HashedKey<'_>, incr: bool, delta: u64) -> ArithOutcome {
        let out = self.do_add_delta(key, incr, delta, 0);
        if out == ArithOutcome::NotFound {
            if incr {
                self.stats.incr_misses += 1;
            } else {
                self.stats.decr_misses += 1;
            }
        }
        out
    }

    pub fn incr(&mut self, key: HashedKey<'_>, delta: u64) -> ArithOutcome {
        self.incr_decr(key, true, delta)
    }

    pub fn decr(&mut self, key: HashedKey<'_>, delta: u64) -> ArithOutcome {
        self.incr_decr(key, false, delta)
    }

    /// memcached's do_add_delta. `cas` 0 means no compare. Misses are not counted here.
    pub(crate) fn do_add_delta(
        &mut self,
        key: HashedKey<'_>,
        incr: bool,
        delta: u64,
        cas: u64,
    ) -> ArithOutcome {
        let hash = key.hash();
        let Some(found) = self.lookup(key, false) else {
            return ArithOutcome::NotFound;
        };
        let h = found.handle();
        let it = self.item(h);
        // memcached's order: an empty value is non-numeric before the CAS compare, any
        // other value is parsed after it.
        if self.layout.vlen(it) == 0 {
            return ArithOutcome::NonNumeric;
        }
        if cas != 0 && self.item_cas(it) != Some(cas) {
            return ArithOutcome::Exists;
        }
        let Some(value) = parse_u64(self.layout.value(it)) else {
            return ArithOutcome::NonNumeric;
        };
        let value = if incr {
            value.wrapping_add(delta)
        } else {
            value.saturating_sub(delta)
        };
        if incr {
            self.stats.incr_hits += 1;
        } else {
            self.stats.decr_hits += 1;
        }
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(value).as_bytes();
        let old_len = self.layout.vlen(it);
        if digits.len() <= old_len {
            // In place, padded with spaces to the old length, as memcached does: a client
            // that later appends to the counter sees memcached's bytes (and "5   x" still
            // parses as 5). A longer number moves to a new item below.
            let dst = self.layout.value_mut(it, old_len);
            dst[..digits.len()].copy_from_slice(digits);
            dst[digits.len()..].fill(b' ');
            // A new version: a new CAS, if the item carries the word (one without it
            // still has a CAS no client has seen).
            let cas = if it.has(item::BIT_HAS_CAS) {
                let cas = self.next_cas();
                self.stamp_cas(it, cas)
            } else {
                0
            };
            it.set_atime(self.now);
            return ArithOutcome::Value { value, cas };
        }
        let (flags, exptime) = (self.layout.flags(it), self.layout.exptime(it));
        match self.write_item(key.bytes(), flags, exptime, digits.len(), h, false, |d| {
            d.copy_from_slice(digits)
        }) {
            Ok(nh) => {
                self.do_link(nh, hash, None, Some(found));
                ArithOutcome::Value {
                    value,
                    cas: self.layout.cas(self.item(nh)),
                }
            }
            Err(_) => ArithOutcome::OutOfMemory,
        }
    }

    /// flush_all [delay]: items older than the flush instant become invisible (memcached's
    /// oldest_live / oldest_cas rule). Without CAS there is no exact cliff: as memcached
    /// does then, everything last touched up to the flush's second goes, including
    /// items stored after the flush within that second.
    pub fn flush_all(&mut self, delay: i64) {
        let new_oldest = if delay > 0 {
            self.realtime(delay)
        } else {
            self.now
        };
        self.flush_second_by_cas = false;
        if !self.uses_cas() {
            self.oldest_live = new_oldest.max(1);
            self.oldest_cas = 0;
            return;
        }
        if delay <= 0 && self.layout.cas_words == CasWords::OnDemand {
            // Items stored earlier in this second may carry no CAS to cut by: the
            // whole second goes, except items that carry a CAS from after the flush
            // (every item stored in the rest of the second gets one, `Store::words`).
            self.oldest_live = self.now;
            self.oldest_cas = self.cas_layout.cas(self.cas_counter);
            self.flush_second_by_cas = true;
            return;
        }
        self.oldest_live = new_oldest.saturating_sub(1).max(1);
        self.oldest_cas = if self.oldest_live <= self.now {
            self.cas_layout.cas(self.cas_counter)
        } else {
            // Taken by set_time when the flush instant arrives.
            0
        };
    }
}

fn alloc_outcome(e: AllocError) -> StoreOutcome {
    match e {
        AllocError::TooLarge => StoreOutcome::TooLarge,
        AllocError::OutOfMemory => StoreOutcome::OutOfMemory,
    }
}

/// memcached's safe_strtoull on an item value: optional leading whitespace, an optional
/// sign, decimal digits, then whitespace or the end. Overflow and negative numbers are
/// not numbers (strtoull's quirk of accepting "-0" is kept).
pub(crate) fn parse_u64(v: &[u8]) -> Option<u64> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut i = 0;
    while i < v.len() && is_space(v[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < v.len() && (v[i] == b'+' || v[i] == b'-') {
        neg = v[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut n: u64 = 0;
    while i < v.len() && v[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add((v[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start || (i < v.len() && !is_space(v[i])) {
        return None;
    }
    if neg {
        let r = n.wrapping_neg();
        if (r as i64) < 0 {
            return None;
        }
        return Some(r);
    }
    Some(n)
}
