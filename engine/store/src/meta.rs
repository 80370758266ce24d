//! What the meta commands need beyond the classic ones (memcached 1.6 proto_text.c):
//!
//! - mg: no-bump reads (`u`), touch (`T`), vivify on miss (`N`), recache (`R`), and the
//!   win / stale / already-won tokens (`W`, `X`, `Z`); `h`, `l`, `t` report the state
//!   from before the request.
//! - ms: modes, CAS compare (`C`), invalidate (`I`: a lower CAS stores the value as
//!   stale), explicit new CAS (`E`), vivify on miss for append/prepend (`N`).
//! - md: CAS compare, invalidate (`I`: mark stale, new CAS, drop the win token) with a
//!   new TTL (`T`).
//! - ma: incr/decr, delta (`D`), CAS compare (`C`), vivify (`N`) with an initial value
//!   (`J`), TTL update (`T`), explicit CAS (`E`).
//!
//! Flag order on the wire can matter in memcached (`t` before or after `T`); the hit
//! carries the TTL before and after so the engine can print either.

use super::item::{self, BIT_FETCHED, BIT_STALE, BIT_TOKEN_SENT};
use super::ops::{ArithOutcome, DeleteOutcome, StoreMode, StoreOutcome, StoreReq};
use super::{HashedKey, ItemView, Store};

/// mg flags that change what the store does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaGetArgs {
    /// `u`: do not bump, mark fetched or update the access time.
    pub no_bump: bool,
    /// `T`: new TTL (client form, see `Store::realtime`).
    pub touch: Option<i64>,
    /// `N`: on a miss, create an empty item with this TTL and win it.
    pub vivify: Option<i64>,
    /// `R`: win if the remaining TTL is below this.
    pub recache: Option<i64>,
    /// memcached applies flags in request order: set this when `T` comes before `R` on
    /// the line, so that `R` sees the new TTL (by default it sees the old one).
    pub touch_before_recache: bool,
    /// `c`: the reply prints the CAS, so the item is given its CAS word (see
    /// `StoreConfig::cas_on_demand`); without it the hit's `cas` may be 0.
    pub return_cas: bool,
}

/// An mg hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaHit<'a> {
    /// The item after the request (new TTL and CAS). Its `last_access` and `fetched`
    /// are from before the request (mg `l` and `h`).
    pub item: ItemView<'a>,
    /// TTL before `T` or `N` applied (for a `t` that precedes them on the line; -1 for a
    /// vivified item).
    pub ttl_before: i64,
    /// `W`: this client won the right to recache.
    pub win: bool,
    /// `X`: the item is stale.
    pub stale: bool,
    /// `Z`: a win token was already handed out for this item.
    pub token_sent: bool,
    /// The item was created by `N` on this request.
    pub vivified: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaGet<'a> {
    Hit(MetaHit<'a>),
    Miss,
}

/// ms mode (`M` token).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetaSetMode {
    #[default]
    Set,
    /// `ME`
    Add,
    /// `MR`
    Replace,
    /// `MA`
    Append,
    /// `MP`
    Prepend,
}

/// ms flags that change what the store does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaSetArgs {
    pub mode: MetaSetMode,
    /// `F`
    pub flags: u32,
    /// `T` (client form; 0 never expires)
    pub exptime: i64,
    /// `C`
    pub compare_cas: Option<u64>,
    /// `I`
    pub invalidate: bool,
    /// `E`
    pub new_cas: Option<u64>,
    /// `N` (append/prepend modes only)
    pub vivify: Option<i64>,
    /// `c`: the reply prints the new CAS (the item gets the CAS word).
    pub return_cas: bool,
}

/// md flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaDeleteArgs {
    /// `C`
    pub compare_cas: Option<u64>,
    /// `I`
    pub invalidate: bool,
    /// `T`: the TTL of the stale item (`I`) or of the emptied one (`x`)
    pub exptime: Option<i64>,
    /// `x`: keep the item with an empty value instead of deleting it
    pub remove_value: bool,
    /// `F`: client flags of the emptied item (`x`)
    pub client_flags: u32,
    /// `E`: the CAS to give the item (`x` or `I`)
    pub new_cas: Option<u64>,
}

/// ma flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArithArgs {
    /// `MI`/`M+` (default) or `MD`/`M-`
    pub incr: bool,
    /// `D`, default 1
    pub delta: u64,
    /// `C`
    pub compare_cas: Option<u64>,
    /// `N`: create on a miss with this TTL
    pub vivify: Option<i64>,
    /// `J`: the created item's value, default 0
    pub initial: u64,
    /// `T`: new TTL on success
    pub touch: Option<i64>,
    /// `E`: CAS to give the item on success
    pub new_cas: Option<u64>,
    /// `c`: the reply prints the CAS (the item gets the CAS word).
    pub return_cas: bool,
}

impl Default for MetaArithArgs {
    fn default() -> Self {
        MetaArithArgs {
            incr: true,
            delta: 1,
            compare_cas: None,
            vivify: None,
            initial: 0,
            touch: None,
            new_cas: None,
            return_cas: false,
        }
    }
}

/// ma result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaArith {
    /// HD / VA: the value, the item's CAS and its TTL (-1 for never);
    /// `created` when `N` made the item on this request.
    Value {
        value: u64,
        cas: u64,
        ttl: i64,
        created: bool,
    },
    /// NF
    NotFound,
    /// NS: vivify could not create the item.
    NotStored,
    /// EX
    Exists,
    /// CLIENT_ERROR cannot increment or decrement non-numeric value
    NonNumeric,
    /// SERVER_ERROR out of memory
    OutOfMemory,
}

impl Store {
    /// mg.
    pub fn meta_get(&mut self, key: HashedKey<'_>, args: &MetaGetArgs) -> MetaGet<'_> {
        let mut found = self.lookup(key, true);
        let mut vivified = false;
        if found.is_none()
            && let Some(n) = args.vivify
        {
            let req = StoreReq {
                want_cas: args.return_cas,
                ..StoreReq::plain(StoreMode::Add, key, b"", 0, self.realtime(n))
            };
            if let StoreOutcome::Stored { .. } = self.do_store(req) {
                found = self.find(key);
                vivified = found.is_some();
            }
        }
        let Some(f) = found else {
            // memcached counts a miss as a get miss, T or not.
            self.stats.get_misses += 1;
            return MetaGet::Miss;
        };
        let it = self.item(f.handle());
        let (idle, fetched) = (it.idle(self.now), it.has(BIT_FETCHED));
        let token_sent = it.has(BIT_TOKEN_SENT);
        let stale = it.has(BIT_STALE);
        // A vivified item had no TTL before `N` gave it one (memcached prints t-1 for a
        // `t` ahead of `N` on the line).
        let exp_before = self.layout.exptime(it);
        let ttl_before = if vivified {
            -1
        } else {
            ttl_of(exp_before, self.now)
        };
        let mut win = vivified;
        let recache = |s: &Store, e: u32| match args.recache {
            Some(r) => !token_sent && !vivified && e != 0 && e < s.realtime(r),
            None => false,
        };
        if !args.touch_before_recache {
            win |= recache(self, exp_before);
        }
        let mut f = f;
        if let Some(t) = args.touch {
            let exp = self.realtime(t);
            // An item that found no room for its TTL was evicted: a miss.
            let Some(moved) = self.set_item_exptime(f, key.hash(), exp) else {
                self.stats.get_misses += 1;
                return MetaGet::Miss;
            };
            f = moved;
        }
        if args.return_cas {
            // The same for its CAS word.
            let Some(moved) = self.give_cas_word(f, key.hash()) else {
                self.stats.get_misses += 1;
                return MetaGet::Miss;
            };
            f = moved;
        }
        let h = f.handle();
        if args.touch_before_recache {
            win |= recache(self, self.layout.exptime(self.item(h)));
        }
        if stale && !token_sent {
            win = true;
        }
        if win {
            self.item(h).set_bit(BIT_TOKEN_SENT, true);
        }
        let cls = self.class_of(h);
        if args.touch.is_some() {
            self.stats.touch_hits += 1;
            self.slabs.classes[cls].stats.touch_hits += 1;
        } else {
            self.stats.get_hits += 1;
            self.slabs.classes[cls].stats.get_hits += 1;
        }
        if !args.no_bump {
            self.do_bump(h, cls);
        }
        MetaGet::Hit(MetaHit {
            item: self.view(h, cls, idle, fetched),
            ttl_before,
            win,
            stale,
            token_sent,
            vivified,
        })
    }

    /// ms. The value is the data block; `args.exptime` in client form.
    pub fn meta_set(
        &mut self,
        key: HashedKey<'_>,
        value: &[u8],
        args: &MetaSetArgs,
    ) -> StoreOutcome {
        let mut mode = match args.mode {
            MetaSetMode::Set => StoreMode::Set,
            MetaSetMode::Add => StoreMode::Add,
            MetaSetMode::Replace => StoreMode::Replace,
            MetaSetMode::Append => StoreMode::Append,
            MetaSetMode::Prepend => StoreMode::Prepend,
        };
        let cas = args.compare_cas.unwrap_or(0);
        // A `C` token upgrades set and replace to cas (memcached's `has_cas`:
        // even `C0`, which then matches no item and answers EX); add ignores
        // it; append/prepend compare a non-zero one.
        if args.compare_cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace) {
            mode = StoreMode::Cas;
        }
        let exptime = self.realtime(args.exptime);
        let vivify = match mode {
            StoreMode::Append | StoreMode::Prepend => args.vivify.map(|n| self.realtime(n)),
            _ => None,
        };
        self.do_store(StoreReq {
            mode,
            key,
            value,
            flags: args.flags,
            exptime,
            cas,
            set_stale: args.invalidate && mode == StoreMode::Cas,
            new_cas: args.new_cas,
            vivify,
            unlink_on_fail: true,
            want_cas: args.return_cas,
        })
    }

    /// md.
    pub fn meta_delete(&mut self, key: HashedKey<'_>, args: &MetaDeleteArgs) -> DeleteOutcome {
        let Some(found) = self.lookup(key, false) else {
            self.stats.delete_misses += 1;
            return DeleteOutcome::NotFound;
        };
        let it = self.item(found.handle());
        if let Some(c) = args.compare_cas
            && self.item_cas(it) != Some(c)
        {
            self.stats.delete_misses += 1;
            return DeleteOutcome::Exists;
        }
        let mut found = found;
        if args.remove_value {
            // memcached replaces the item with an empty one: flags from F, TTL
            // from T, and the old CAS unless E gives one (an old item without the
            // CAS word had a CAS no client knows, and the new one keeps not having it).
            let old_cas = it.has(item::BIT_HAS_CAS).then(|| self.layout.cas(it));
            let exptime = self.realtime(args.exptime.unwrap_or(0));
            let req = StoreReq {
                new_cas: args.new_cas.or(old_cas),
                ..StoreReq::plain(StoreMode::Set, key, b"", args.client_flags, exptime)
            };
            match self.do_store(req) {
                StoreOutcome::Stored { .. } => {}
                StoreOutcome::OutOfMemory | StoreOutcome::TooLarge => {
                    return DeleteOutcome::OutOfMemory;
                }
                _ => return DeleteOutcome::NotStored,
            }
            let Some(f) = self.find(key) else {
                return DeleteOutcome::NotStored;
            };
            found = f;
        }
        if args.invalidate {
            if let Some(t) = args.exptime {
                let exp = self.realtime(t);
                // An item that found no room for its TTL was evicted: as if gone before.
                let Some(moved) = self.set_item_exptime(found, key.hash(), exp) else {
                    self.stats.delete_misses += 1;
                    return DeleteOutcome::NotFound;
                };
                found = moved;
            }
            if args.new_cas.is_some() {
                let Some(f) = self.give_cas_word(found, key.hash()) else {
                    self.stats.delete_misses += 1;
                    return DeleteOutcome::NotFound;
                };
                found = f;
            }
            let it = self.item(found.handle());
            it.set_bit(BIT_STALE, true);
            it.set_bit(BIT_TOKEN_SENT, false);
            let cas = args.new_cas.unwrap_or_else(|| self.next_cas());
            self.stamp_cas(it, cas);
        } else {
            self.stats.delete_hits += 1;
            if !args.remove_value {
                self.do_unlink(found);
            }
        }
        DeleteOutcome::Deleted
    }

    /// ma.
    pub fn meta_arith(&mut self, key: HashedKey<'_>, args: &MetaArithArgs) -> MetaArith {
        let out = self.do_add_delta(key, args.incr, args.delta, args.compare_cas.unwrap_or(0));
        let (value, created) = match out {
            ArithOutcome::Value { value, .. } => (value, false),
            ArithOutcome::Exists => return MetaArith::Exists,
            ArithOutcome::NonNumeric => return MetaArith::NonNumeric,
            ArithOutcome::OutOfMemory => return MetaArith::OutOfMemory,
            ArithOutcome::NotFound => {
                let Some(n) = args.vivify else {
                    if args.incr {
                        self.stats.incr_misses += 1;
                    } else {
                        self.stats.decr_misses += 1;
                    }
                    return MetaArith::NotFound;
                };
                let mut buf = itoa::Buffer::new();
                let digits = buf.format(args.initial).as_bytes();
                let req = StoreReq {
                    want_cas: args.return_cas,
                    ..StoreReq::plain(StoreMode::Add, key, digits, 0, self.realtime(n))
                };
                match self.do_store(req) {
                    StoreOutcome::Stored { .. } => (args.initial, true),
                    StoreOutcome::OutOfMemory | StoreOutcome::TooLarge => {
                        return MetaArith::OutOfMemory;
                    }
                    _ => return MetaArith::NotStored,
                }
            }
        };
        // Evicted by its own store (memory too small), or by finding no room for the
        // TTL `T` gives it (`set_item_exptime`): report what was computed.
        let gone = MetaArith::Value {
            value,
            cas: 0,
            ttl: -1,
            created,
        };
        let Some(mut found) = self.find(key) else {
            return gone;
        };
        if let Some(t) = args.touch {
            let exp = self.realtime(t);
            let Some(moved) = self.set_item_exptime(found, key.hash(), exp) else {
                return gone;
            };
            found = moved;
        }
        if args.return_cas || args.new_cas.is_some() {
            let Some(f) = self.give_cas_word(found, key.hash()) else {
                return gone;
            };
            found = f;
        }
        let it = self.item(found.handle());
        if let Some(c) = args.new_cas {
            self.stamp_cas(it, c);
        }
        MetaArith::Value {
            value,
            cas: self.layout.cas(it),
            ttl: ttl_of(self.layout.exptime(it), self.now),
            created,
        }
    }

    /// The item without touching it. Its `cas` is 0 unless it carries the CAS word.
    pub fn peek(&mut self, key: HashedKey<'_>) -> Option<ItemView<'_>> {
        self.do_peek(key, false)
    }

    /// me: [`peek`](Self::peek), the item given its CAS word first (`me` prints it).
    pub fn peek_with_cas(&mut self, key: HashedKey<'_>) -> Option<ItemView<'_>> {
        self.do_peek(key, true)
    }

    fn do_peek(&mut self, key: HashedKey<'_>, with_cas: bool) -> Option<ItemView<'_>> {
        let found = self.lookup(key, false);
        let found = self.cas_word_if(found, key.hash(), with_cas)?;
        let it = self.item(found.handle());
        let (idle, fetched) = (it.idle(self.now), it.has(BIT_FETCHED));
        let cls = self.class_of(found.handle());
        Some(self.view(found.handle(), cls, idle, fetched))
    }
}

fn ttl_of(exptime: u32, now: u32) -> i64 {
    if exptime == 0 {
        -1
    } else {
        exptime as i64 - now as i64
    }
}
