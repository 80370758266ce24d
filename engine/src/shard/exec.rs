//! One request on this shard's store: the typed request from `proto` in, a
//! store call, the reply through `proto`'s encoders out. The store never
//! sees wire bytes and this file never writes any by hand.

use proto::cmd::arith::ArithCmd;
use proto::cmd::get::{GetKind, encode_end, encode_value};
use proto::cmd::store::StoreCmd;
use proto::meta::arith::{ArithMode, MaOutcome, encode_ma};
use proto::meta::delete::{MdOutcome, encode_md};
use proto::meta::get::{MeInfo, MgItem, MgOutcome, encode_me, encode_mg};
use proto::meta::set::{MsOutcome, SetMode, encode_ms};
use proto::reply::{Status, encode_number};
use proto::{ClientError, ErrorReply, Request, ServerError};

use super::route::key_hash;
use super::stats::ShardStats;
use crate::logger::line::{self, FetchStatus, StoreStatus};
use crate::logger::{EV_FETCHERS, EV_MUTATIONS, ShardLog};
use store::{
    ArithOutcome, DeleteOutcome, HashedKey, MetaArith, MetaArithArgs, MetaDeleteArgs, MetaGet,
    MetaGetArgs, MetaSetArgs, MetaSetMode, Store, StoreMode, StoreOutcome, TouchOutcome,
};

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    /// `quit`: close once the replies before it are out.
    Close,
}

/// The parts of a shard a request runs against.
/// An [`Exec`] over a `Core`'s store, stats and log (`exec!(self)`): a
/// macro, not a method, so that the borrows stay per field and the caller
/// may hold another field (a connection's reply queue) meanwhile.
macro_rules! exec {
    ($core:expr) => {
        $crate::shard::exec::Exec {
            store: &mut $core.store,
            stats: &mut $core.stats,
            log: &mut $core.log,
            cfd: $core.log_cfd,
        }
    };
}
pub(super) use exec;

pub(super) struct Exec<'a> {
    pub store: &'a mut Store,
    pub stats: &'a mut ShardStats,
    /// Lines for log watchers: written only when one watches the kind.
    pub log: &'a mut ShardLog,
    /// The client's descriptor for those lines (-1 when not on this shard).
    pub cfd: i32,
}

fn status(out: &mut Vec<u8>, noreply: bool, s: Status) {
    if !noreply {
        s.encode(out);
    }
}

fn error(out: &mut Vec<u8>, noreply: bool, e: impl Into<ErrorReply>) {
    if !noreply {
        e.into().encode(out);
    }
}

impl Exec<'_> {
    /// Runs a keyed request whose (first) key hashes to `hash`.
    pub(super) fn run(&mut self, request: &Request<'_>, hash: u64, out: &mut Vec<u8>) -> Outcome {
        match request {
            Request::Get(get) => {
                let single = get.keys.len() == 1;
                let keys = get.keys.clone().map(|k| {
                    let h = if single { hash } else { key_hash(k) };
                    (k, h)
                });
                self.values(get.kind, get.exptime, keys, out);
                encode_end(out);
            }
            Request::Store(s) => {
                self.stats.cmd_set += 1;
                let mode = match s.cmd {
                    StoreCmd::Set => StoreMode::Set,
                    StoreCmd::Add => StoreMode::Add,
                    StoreCmd::Replace => StoreMode::Replace,
                    StoreCmd::Append => StoreMode::Append,
                    StoreCmd::Prepend => StoreMode::Prepend,
                    StoreCmd::Cas => StoreMode::Cas,
                };
                self.log_lookup_before_store(s.key, hash);
                let outcome = self.store.store(
                    mode,
                    HashedKey::with_hash(s.key, hash),
                    s.flags,
                    s.exptime.into(),
                    s.data,
                    s.cas,
                );
                if self.log.wants(EV_MUTATIONS) {
                    self.log_store(s.key, hash, &outcome, s.cmd.name(), s.data.len());
                }
                store_reply(out, s.noreply, outcome);
            }
            Request::Delete(d) => {
                let s = match self.store.delete(HashedKey::with_hash(d.key, hash)) {
                    DeleteOutcome::Deleted => Status::Deleted,
                    DeleteOutcome::NotFound
                    | DeleteOutcome::Exists
                    | DeleteOutcome::NotStored
                    | DeleteOutcome::OutOfMemory => Status::NotFound,
                };
                status(out, d.noreply, s);
            }
            Request::Arith(a) => {
                match self.store.incr_decr(
                    HashedKey::with_hash(a.key, hash),
                    a.cmd == ArithCmd::Incr,
                    a.delta,
                ) {
                    ArithOutcome::Value { value, .. } => {
                        if !a.noreply {
                            encode_number(out, value);
                        }
                    }
                    ArithOutcome::NotFound | ArithOutcome::Exists => {
                        status(out, a.noreply, Status::NotFound)
                    }
                    ArithOutcome::NonNumeric => error(out, a.noreply, ClientError::NonNumericValue),
                    ArithOutcome::OutOfMemory => error(out, a.noreply, ServerError::OutOfMemory),
                }
            }
            Request::Touch(t) => {
                self.stats.cmd_touch += 1;
                let s = match self
                    .store
                    .touch(HashedKey::with_hash(t.key, hash), t.exptime.into())
                {
                    TouchOutcome::Touched => Status::Touched,
                    TouchOutcome::NotFound => Status::NotFound,
                };
                status(out, t.noreply, s);
            }
            Request::MetaGet(m) => {
                self.stats.cmd_meta += 1;
                self.meta_get(m, hash, out);
            }
            Request::MetaSet(m) => {
                self.stats.cmd_meta += 1;
                self.stats.cmd_set += 1;
                self.meta_set(m, hash, out);
            }
            Request::MetaDelete(m) => {
                self.stats.cmd_meta += 1;
                let mut buf: proto::meta::KeyBuf = [0; _];
                let key = m.key.decode(&mut buf);
                // A replica's delete: only what is not newer than the item
                // the owner deleted.
                if m.flags.if_newer()
                    && let Some(cas) = m.flags.new_cas()
                {
                    self.store.observe_cas(cas);
                    if self.newer_stored(key, hash, cas + 1) {
                        encode_md(out, m, MdOutcome::Exists);
                        return Outcome::Done;
                    }
                }
                let args = MetaDeleteArgs {
                    compare_cas: m.flags.compare_cas(),
                    invalidate: m.flags.invalidate(),
                    exptime: m.flags.ttl().map(i64::from),
                    remove_value: m.flags.remove_value(),
                    client_flags: m.flags.client_flags().unwrap_or(0),
                    new_cas: m.flags.new_cas(),
                };
                let outcome = match self
                    .store
                    .meta_delete(HashedKey::with_hash(key, hash), &args)
                {
                    DeleteOutcome::Deleted => MdOutcome::Deleted,
                    DeleteOutcome::NotFound => MdOutcome::NotFound,
                    DeleteOutcome::Exists => MdOutcome::Exists,
                    DeleteOutcome::NotStored => MdOutcome::NotStored,
                    DeleteOutcome::OutOfMemory => {
                        ErrorReply::from(ServerError::OutOfMemory).encode(out);
                        return Outcome::Done;
                    }
                };
                encode_md(out, m, outcome);
            }
            Request::MetaArith(m) => {
                self.stats.cmd_meta += 1;
                self.meta_arith(m, hash, out);
            }
            Request::MetaDebug(m) => {
                self.stats.cmd_meta += 1;
                let mut buf: proto::meta::KeyBuf = [0; _];
                let key = m.key.decode(&mut buf);
                let info = self
                    .store
                    .peek_with_cas(HashedKey::with_hash(key, hash))
                    .map(|it| MeInfo {
                        key: it.key,
                        key_binary: m.key.is_base64(),
                        exp: it.ttl,
                        last_access: it.last_access.into(),
                        cas: it.cas,
                        fetched: it.fetched,
                        class: it.class_id,
                        size: it.size as u64,
                    });
                encode_me(out, info.as_ref());
            }
            Request::Quit => return Outcome::Close,
            // Commands without a key are handled by the shard (they may need
            // every shard); see `admin`.
            _ => debug_assert!(false, "keyless request routed to the store: {request:?}"),
        }
        Outcome::Done
    }

    /// The VALUE blocks of a get-family request for `keys`, each with its
    /// hash (no END).
    pub(super) fn values<'k>(
        &mut self,
        kind: GetKind,
        exptime: i32,
        keys: impl Iterator<Item = (&'k [u8], u64)>,
        out: &mut Vec<u8>,
    ) {
        let cas = kind.with_cas();
        for (key, hash) in keys {
            // memcached counts gat/gats as touches only.
            if kind.touches() {
                self.stats.cmd_touch += 1;
            } else {
                self.stats.cmd_get += 1;
            }
            // gets and gats print the CAS: the item is given its CAS word.
            let key_h = HashedKey::with_hash(key, hash);
            let item = match (kind.touches(), cas) {
                (true, false) => self.store.gat(key_h, exptime.into()),
                (true, true) => self.store.gats(key_h, exptime.into()),
                (false, false) => self.store.get(key_h),
                (false, true) => self.store.gets(key_h),
            };
            let logged = self
                .log
                .wants(EV_FETCHERS)
                .then(|| item.as_ref().map(|it| (it.class_id, it.value.len())));
            if let Some(it) = item {
                encode_value(out, it.key, it.flags, it.value, cas.then_some(it.cas));
            }
            if let Some(found) = logged {
                self.log_get(key, found);
            }
        }
    }

    /// `type=item_get` for `key`: its class and value size when found.
    fn log_get(&mut self, key: &[u8], found: Option<(u32, usize)>) {
        let cfd = self.cfd;
        let (status, clsid, size) = match found {
            Some((clsid, size)) => (FetchStatus::Found, clsid, size),
            None => (FetchStatus::NotFound, 0, 0),
        };
        self.log.log(EV_FETCHERS, |out, stamp| {
            line::item_get(out, stamp, key, status, clsid, cfd, size)
        });
    }

    /// memcached looks the old item up before every store, and that lookup
    /// is a fetch its watchers see (`item_get`, size 0 when there was none):
    /// clients of `watch fetchers mutations` expect that line first.
    fn log_lookup_before_store(&mut self, key: &[u8], hash: u64) {
        if self.log.wants(EV_FETCHERS) {
            let found = self
                .store
                .peek(HashedKey::with_hash(key, hash))
                .map(|it| (it.class_id, it.value.len()));
            self.log_get(key, found);
        }
    }

    /// `type=item_store` for `key` after a store command: the stored item's
    /// class and seconds left are read back (only while someone watches).
    fn log_store(&mut self, key: &[u8], hash: u64, outcome: &StoreOutcome, cmd: &str, size: usize) {
        let status = match outcome {
            StoreOutcome::Stored { .. } => StoreStatus::Stored,
            StoreOutcome::NotStored => StoreStatus::NotStored,
            StoreOutcome::Exists => StoreStatus::Exists,
            StoreOutcome::NotFound => StoreStatus::NotFound,
            StoreOutcome::TooLarge => StoreStatus::TooLarge,
            StoreOutcome::OutOfMemory => StoreStatus::NoMemory,
        };
        let (clsid, ttl) = match status {
            StoreStatus::Stored => self
                .store
                .peek(HashedKey::with_hash(key, hash))
                .map_or((0, 0), |it| (it.class_id, it.ttl.max(0) as u64)),
            _ => (0, 0),
        };
        let cfd = self.cfd;
        self.log.log(EV_MUTATIONS, |out, stamp| {
            line::item_store(out, stamp, key, status, cmd, ttl, clsid, cfd, size)
        });
    }

    fn meta_get(&mut self, m: &proto::meta::get::MetaGet<'_>, hash: u64, out: &mut Vec<u8>) {
        let mut buf: proto::meta::KeyBuf = [0; _];
        let key = m.key.decode(&mut buf);
        let f = &m.flags;
        let args = MetaGetArgs {
            no_bump: f.no_bump(),
            touch: f.ttl().map(i64::from),
            vivify: f.vivify().map(i64::from),
            recache: f.recache().map(i64::from),
            touch_before_recache: flag_precedes(f.raw(), b'T', b'R'),
            return_cas: f.has(b'c'),
        };
        let result = self.store.meta_get(HashedKey::with_hash(key, hash), &args);
        let logged = self.log.wants(EV_FETCHERS).then_some(match &result {
            MetaGet::Hit(hit) => Some((hit.item.class_id, hit.item.value.len())),
            MetaGet::Miss => None,
        });
        let outcome = match result {
            MetaGet::Hit(hit) => MgOutcome::Hit(MgItem {
                key: hit.item.key,
                key_binary: m.key.is_base64(),
                client_flags: hit.item.flags,
                cas: hit.item.cas,
                value: hit.item.value,
                ttl: hit.item.ttl,
                last_access: hit.item.last_access.into(),
                fetched: hit.item.fetched,
                stale: hit.stale,
                won: hit.win,
                win_sent: hit.token_sent,
            }),
            MetaGet::Miss => MgOutcome::Miss,
        };
        // As memcached: a hit with T is a touch; a miss (T or not) and a
        // vivified item are gets.
        if args.touch.is_some() && matches!(outcome, MgOutcome::Hit(_)) {
            self.stats.cmd_touch += 1;
        } else {
            self.stats.cmd_get += 1;
        }
        encode_mg(out, m, &outcome);
        if let Some(found) = logged {
            self.log_get(key, found);
        }
    }

    /// Whether the stored item under `key` has a CAS of at least `cas`.
    fn newer_stored(&mut self, key: &[u8], hash: u64, cas: u64) -> bool {
        self.store
            .peek(HashedKey::with_hash(key, hash))
            .is_some_and(|it| it.cas >= cas)
    }

    /// Whether a replica record setting `key` to `value` and `flags` with
    /// `cas` loses to the stored item: its CAS is greater, or equal with a
    /// value and flags that are not smaller. A cluster's CAS values carry the
    /// node and shard that made them (`ClusterPlan::cas_layout`), so two
    /// writers never give two versions one CAS; a tie is a copy applied twice
    /// (a re-sync of an item the replica already has), which changes nothing,
    /// or two versions a client gave one `E`. The bytes then decide, the same
    /// way on every node, so copies still converge on one.
    fn newer_or_tie_stored(
        &mut self,
        key: &[u8],
        hash: u64,
        cas: u64,
        value: &[u8],
        flags: u32,
    ) -> bool {
        self.store
            .peek(HashedKey::with_hash(key, hash))
            .is_some_and(|it| {
                it.cas > cas || (it.cas == cas && (it.value, it.flags) >= (value, flags))
            })
    }

    fn meta_set(&mut self, m: &proto::meta::set::MetaSet<'_>, hash: u64, out: &mut Vec<u8>) {
        let mut buf: proto::meta::KeyBuf = [0; _];
        let key = m.key.decode(&mut buf);
        let f = &m.flags;
        // A replica record: applied as a set with the owner's CAS, only if
        // that CAS is newer than the stored item's (see replicate.rs).
        if f.if_newer()
            && let Some(cas) = f.new_cas()
        {
            let flags = f.client_flags().unwrap_or(0);
            if self.newer_or_tie_stored(key, hash, cas, m.data, flags) {
                return encode_ms(out, m, &MsOutcome::NotStored);
            }
            self.store.observe_cas(cas);
        }
        let args = MetaSetArgs {
            mode: match m.mode {
                SetMode::Set => MetaSetMode::Set,
                SetMode::Add => MetaSetMode::Add,
                SetMode::Replace => MetaSetMode::Replace,
                SetMode::Append => MetaSetMode::Append,
                SetMode::Prepend => MetaSetMode::Prepend,
            },
            flags: f.client_flags().unwrap_or(0),
            exptime: f.ttl().map_or(0, i64::from),
            compare_cas: f.compare_cas().filter(|_| !f.if_newer()),
            invalidate: f.invalidate(),
            new_cas: f.new_cas(),
            vivify: f.vivify().map(i64::from),
            return_cas: f.has(b'c'),
        };
        self.log_lookup_before_store(key, hash);
        let stored = self
            .store
            .meta_set(HashedKey::with_hash(key, hash), m.data, &args);
        if self.log.wants(EV_MUTATIONS) {
            let cmd = match m.mode {
                SetMode::Set => "set",
                SetMode::Add => "add",
                SetMode::Replace => "replace",
                SetMode::Append => "append",
                SetMode::Prepend => "prepend",
            };
            self.log_store(key, hash, &stored, cmd, m.data.len());
        }
        let outcome = match stored {
            StoreOutcome::Stored { cas } => MsOutcome::Stored { cas },
            StoreOutcome::NotStored => MsOutcome::NotStored,
            StoreOutcome::Exists => MsOutcome::Exists,
            StoreOutcome::NotFound => MsOutcome::NotFound,
            StoreOutcome::TooLarge => {
                return ErrorReply::from(ServerError::ObjectTooLarge).encode(out);
            }
            StoreOutcome::OutOfMemory => {
                return ErrorReply::from(ServerError::OutOfMemoryStoring).encode(out);
            }
        };
        encode_ms(out, m, &outcome);
    }

    fn meta_arith(&mut self, m: &proto::meta::arith::MetaArith<'_>, hash: u64, out: &mut Vec<u8>) {
        let mut buf: proto::meta::KeyBuf = [0; _];
        let key = m.key.decode(&mut buf);
        let f = &m.flags;
        let args = MetaArithArgs {
            incr: m.mode == ArithMode::Incr,
            delta: m.delta,
            compare_cas: f.compare_cas(),
            vivify: f.vivify().map(i64::from),
            initial: m.initial,
            touch: f.ttl().map(i64::from),
            new_cas: f.new_cas(),
            return_cas: f.has(b'c'),
        };
        let outcome = match self
            .store
            .meta_arith(HashedKey::with_hash(key, hash), &args)
        {
            MetaArith::Value {
                value,
                cas,
                ttl,
                created,
            } => MaOutcome::Done {
                value,
                cas,
                ttl,
                created,
            },
            MetaArith::NotFound => MaOutcome::NotFound,
            MetaArith::NotStored => MaOutcome::NotStored,
            MetaArith::Exists => MaOutcome::Exists,
            MetaArith::NonNumeric => {
                return ErrorReply::from(ClientError::NonNumericValue).encode(out);
            }
            MetaArith::OutOfMemory => {
                return ErrorReply::from(ServerError::OutOfMemory).encode(out);
            }
        };
        encode_ma(out, m, &outcome);
    }
}

/// Whether flag `a` comes before flag `b` in a meta request's flag tokens
/// (memcached applies some flags in the order they were sent).
fn flag_precedes(raw: &[u8], a: u8, b: u8) -> bool {
    let mut seen_a = false;
    for token in raw.split(|&c| c == b' ').filter(|t| !t.is_empty()) {
        match token[0] {
            c if c == a => seen_a = true,
            c if c == b => return seen_a,
            _ => {}
        }
    }
    false
}

fn store_reply(out: &mut Vec<u8>, noreply: bool, outcome: StoreOutcome) {
    match outcome {
        StoreOutcome::Stored { .. } => status(out, noreply, Status::Stored),
        StoreOutcome::NotStored => status(out, noreply, Status::NotStored),
        StoreOutcome::Exists => status(out, noreply, Status::Exists),
        StoreOutcome::NotFound => status(out, noreply, Status::NotFound),
        StoreOutcome::TooLarge => error(out, noreply, ServerError::ObjectTooLarge),
        StoreOutcome::OutOfMemory => error(out, noreply, ServerError::OutOfMemoryStoring),
    }
}
