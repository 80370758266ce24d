//! The request type, and the entry point that parses one request: it frames the
//! line, reads the command word and hands the line to that command's family,
//! whose value it wraps into a [`Request`].

use crate::Limits;
use crate::cmd::admin::{
    Admin, CacheMemlimit, DebugTime, FlushAll, Lru, LruCrawler, ShutdownMode, Slabs, Verbosity,
    Watch,
};
use crate::cmd::{Arith, Delete, Get, Keys, Stats, Store, Touch};
use crate::cmd::{admin, arith, delete, get, stats, store, touch};
use crate::error::{ClientError, ErrorReply, Invalid};
use crate::line::{Frame, Tokens, frame};
use crate::meta::{self, Key, MetaArith, MetaDebug, MetaDelete, MetaGet, MetaSet};
use crate::text::{Ctx, Parsed, Stop};
use crate::verb::Verb;

/// One client request. Keys, values and flag text borrow from the parsed buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    /// `get`, `gets`, `gat`, `gats` (and the ancient `bget`, read as `get`).
    Get(Get<'a>),
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store(Store<'a>),
    Delete(Delete<'a>),
    /// `incr`, `decr`.
    Arith(Arith<'a>),
    Touch(Touch<'a>),
    FlushAll(FlushAll),
    Stats(Stats<'a>),
    Version,
    Verbosity(Verbosity),
    Quit,
    Shutdown(ShutdownMode),
    CacheMemlimit(CacheMemlimit),
    Slabs(Slabs),
    LruCrawler(LruCrawler<'a>),
    Lru(Lru),
    Watch(Watch),
    /// Debug builds of memcached only; release builds answer `ERROR`.
    Misbehave,
    /// Reload the TLS certificate and key (`OK`, or why not).
    RefreshCerts,
    /// Debug builds of memcached only; release builds answer `ERROR`.
    DebugTime(DebugTime),
    MetaGet(MetaGet<'a>),
    MetaSet(MetaSet<'a>),
    MetaDelete(MetaDelete<'a>),
    MetaArith(MetaArith<'a>),
    /// `mn`: answered `MN`.
    MetaNoop,
    MetaDebug(MetaDebug<'a>),
    /// `cluster_link <node>`: corecache's own, not memcached's. Another node
    /// of the cluster opens its peer link with it; requests on that
    /// connection are then served where they land, never forwarded again.
    /// Answered `OK`.
    ClusterLink(&'a [u8]),
}

/// The result of parsing the start of a buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Parse<'a> {
    /// A request, and the bytes it took (line and data block).
    Complete {
        request: Request<'a>,
        consumed: usize,
    },
    /// More bytes are needed; `more` is how many when known (the rest of a data
    /// block), `None` while the command line is unfinished.
    Incomplete { more: Option<usize> },
    /// memcached would refuse this; the value says what to answer and how to
    /// resynchronise.
    Invalid(Invalid<'a>),
}

impl<'a> From<Stop<'a>> for Parse<'a> {
    #[inline]
    fn from(s: Stop<'a>) -> Self {
        match s {
            Stop::More(n) => Parse::Incomplete { more: Some(n) },
            Stop::Invalid(i) => Parse::Invalid(i),
        }
    }
}

/// A family's result as a [`Parse`], its value wrapped into a [`Request`].
#[inline(always)]
fn wrap<'a, T>(parsed: Parsed<'a, T>, variant: impl FnOnce(T) -> Request<'a>) -> Parse<'a> {
    match parsed {
        Ok((value, consumed)) => Parse::Complete {
            request: variant(value),
            consumed,
        },
        Err(stop) => stop.into(),
    }
}

impl<'a> From<Admin<'a>> for Request<'a> {
    #[inline]
    fn from(a: Admin<'a>) -> Self {
        match a {
            Admin::FlushAll(r) => Request::FlushAll(r),
            Admin::Version => Request::Version,
            Admin::Verbosity(r) => Request::Verbosity(r),
            Admin::Quit => Request::Quit,
            Admin::Shutdown(r) => Request::Shutdown(r),
            Admin::CacheMemlimit(r) => Request::CacheMemlimit(r),
            Admin::Slabs(r) => Request::Slabs(r),
            Admin::LruCrawler(r) => Request::LruCrawler(r),
            Admin::Lru(r) => Request::Lru(r),
            Admin::Watch(r) => Request::Watch(r),
            Admin::Misbehave => Request::Misbehave,
            Admin::RefreshCerts => Request::RefreshCerts,
            Admin::DebugTime(r) => Request::DebugTime(r),
            Admin::ClusterLink(name) => Request::ClusterLink(name),
        }
    }
}

/// Parse one request (text or meta, told apart by the command word) from the
/// start of `buf`.
///
/// ```
/// use proto::{parse, Limits, Parse, Request};
/// let limits = Limits::default();
/// let buf = b"set k 0 0 2\r\nhi\r\nget k\r\n";
/// let Parse::Complete { request: Request::Store(s), consumed } = parse(buf, &limits) else {
///     panic!()
/// };
/// assert_eq!((s.key, s.data, consumed), (&b"k"[..], &b"hi"[..], 17));
/// assert!(matches!(parse(&buf[consumed..], &limits), Parse::Complete { .. }));
/// assert_eq!(parse(b"set k 0 0 2\r\nh", &limits), Parse::Incomplete { more: Some(3) });
/// ```
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parse<'a> {
    let (line, next) = match frame(buf, limits) {
        Frame::Line { line, next } => (line, next),
        Frame::Incomplete => return Parse::Incomplete { more: None },
        Frame::TooLong { get } => {
            // memcached closes without a word; for our bounded get lines, say why.
            let error = if get {
                ErrorReply::Client(ClientError::LineTooLong)
            } else {
                ErrorReply::Error
            };
            return Parse::Invalid(Invalid {
                error,
                reply: get,
                consumed: buf.len(),
                swallow: 0,
                close: true,
                unlink: None,
            });
        }
    };
    let cx = Ctx {
        buf,
        next,
        limits: *limits,
    };
    let t = Tokens::new(line);
    if t.len() == 0 || t.get(0).len() < 2 {
        return Parse::Invalid(Invalid::line(ErrorReply::Error, next, true));
    }
    match Verb::of(t.get(0)) {
        Verb::Get(kind) => wrap(get::parse(kind, &t, &cx), Request::Get),
        Verb::Store(cmd) => wrap(store::parse(cmd, &t, &cx), Request::Store),
        Verb::Delete => wrap(delete::parse(&t, &cx), Request::Delete),
        Verb::Arith(cmd) => wrap(arith::parse(cmd, &t, &cx), Request::Arith),
        Verb::Touch => wrap(touch::parse(&t, &cx), Request::Touch),
        Verb::Stats => wrap(stats::parse(&t, &cx), Request::Stats),
        Verb::MetaGet => wrap(meta::get::parse_mg(&t, &cx), Request::MetaGet),
        Verb::MetaSet => wrap(meta::set::parse_ms(&t, &cx), Request::MetaSet),
        Verb::MetaDelete => wrap(meta::delete::parse_md(&t, &cx), Request::MetaDelete),
        Verb::MetaArith => wrap(meta::arith::parse_ma(&t, &cx), Request::MetaArith),
        Verb::MetaNoop => Parse::Complete {
            request: Request::MetaNoop,
            consumed: next,
        },
        Verb::MetaDebug => wrap(meta::get::parse_me(&t, &cx), Request::MetaDebug),
        Verb::Other => wrap(admin::parse(&t, &cx), Request::from),
    }
}

impl<'a> Request<'a> {
    /// Every key the request names, in order, as sent (plain for the classic
    /// commands); none for keyless requests. This is the one place that says
    /// which requests carry keys: its `match` has no catch-all, so a new variant
    /// does not compile until it is classified here.
    pub fn keys(&self) -> RequestKeys<'a> {
        let one = |key| RequestKeys(KeysInner::One(Some(key)));
        match self {
            Request::Get(r) => RequestKeys(KeysInner::List(r.keys.clone())),
            Request::Store(r) => one(Key::plain(r.key)),
            Request::Delete(r) => one(Key::plain(r.key)),
            Request::Arith(r) => one(Key::plain(r.key)),
            Request::Touch(r) => one(Key::plain(r.key)),
            Request::MetaGet(r) => one(r.key),
            Request::MetaSet(r) => one(r.key),
            Request::MetaDelete(r) => one(r.key),
            Request::MetaArith(r) => one(r.key),
            Request::MetaDebug(r) => one(r.key),
            Request::FlushAll(_)
            | Request::Stats(_)
            | Request::Version
            | Request::Verbosity(_)
            | Request::Quit
            | Request::Shutdown(_)
            | Request::CacheMemlimit(_)
            | Request::Slabs(_)
            | Request::LruCrawler(_)
            | Request::Lru(_)
            | Request::Watch(_)
            | Request::Misbehave
            | Request::RefreshCerts
            | Request::DebugTime(_)
            | Request::ClusterLink(_)
            | Request::MetaNoop => RequestKeys(KeysInner::Keyless),
        }
    }

    /// The key of a keyed request (the first of a multi-key get); `None` for a
    /// keyless request and for a `gat` without keys.
    #[inline]
    pub fn key(&self) -> Option<Key<'a>> {
        self.keys().next()
    }

    /// How many keys the request names (what [`peek_keys`](crate::peek_keys)
    /// reports for it).
    #[inline]
    pub fn key_count(&self) -> usize {
        self.keys().len()
    }

    /// Whether this is a keyed command, to be run where its key lives. A get
    /// always is, even `gat 10` with no key at all.
    #[inline]
    pub fn is_keyed(&self) -> bool {
        !matches!(self.keys().0, KeysInner::Keyless)
    }
}

/// The keys of one request, in order: see [`Request::keys`]. No allocation,
/// however many keys.
#[derive(Debug, Clone)]
pub struct RequestKeys<'a>(KeysInner<'a>);

#[derive(Debug, Clone)]
enum KeysInner<'a> {
    Keyless,
    One(Option<Key<'a>>),
    List(Keys<'a>),
}

impl<'a> Iterator for RequestKeys<'a> {
    type Item = Key<'a>;

    #[inline]
    fn next(&mut self) -> Option<Key<'a>> {
        match &mut self.0 {
            KeysInner::Keyless => None,
            KeysInner::One(key) => key.take(),
            KeysInner::List(keys) => keys.next().map(Key::plain),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            KeysInner::Keyless => 0,
            KeysInner::One(key) => usize::from(key.is_some()),
            KeysInner::List(keys) => keys.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for RequestKeys<'_> {}

impl Request<'_> {
    /// Append this request in canonical wire form (the client side of the codec;
    /// parsing the result gives back an equal request).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Get(r) => r.encode(out),
            Request::Store(r) => r.encode(out),
            Request::Delete(r) => r.encode(out),
            Request::Arith(r) => r.encode(out),
            Request::Touch(r) => r.encode(out),
            Request::Stats(r) => r.encode(out),
            Request::MetaGet(r) => r.encode(out),
            Request::MetaSet(r) => r.encode(out),
            Request::MetaDelete(r) => r.encode(out),
            Request::MetaArith(r) => r.encode(out),
            Request::MetaDebug(r) => r.encode(out),
            Request::MetaNoop => out.extend_from_slice(b"mn\r\n"),
            Request::FlushAll(r) => Admin::FlushAll(*r).encode(out),
            Request::Version => Admin::Version.encode(out),
            Request::Verbosity(r) => Admin::Verbosity(*r).encode(out),
            Request::Quit => Admin::Quit.encode(out),
            Request::Shutdown(r) => Admin::Shutdown(*r).encode(out),
            Request::CacheMemlimit(r) => Admin::CacheMemlimit(*r).encode(out),
            Request::Slabs(r) => Admin::Slabs(*r).encode(out),
            Request::LruCrawler(r) => Admin::LruCrawler(*r).encode(out),
            Request::Lru(r) => Admin::Lru(*r).encode(out),
            Request::Watch(r) => Admin::Watch(*r).encode(out),
            Request::Misbehave => Admin::Misbehave.encode(out),
            Request::RefreshCerts => Admin::RefreshCerts.encode(out),
            Request::DebugTime(r) => Admin::DebugTime(*r).encode(out),
            Request::ClusterLink(name) => Admin::ClusterLink(name).encode(out),
        }
    }

    /// Whether the client asked for no reply (`noreply`, or `q` for meta commands,
    /// whose encoders apply it per outcome themselves).
    pub fn noreply(&self) -> bool {
        match self {
            Request::Store(r) => r.noreply,
            Request::Delete(r) => r.noreply,
            Request::Arith(r) => r.noreply,
            Request::Touch(r) => r.noreply,
            Request::FlushAll(r) => r.noreply,
            Request::Verbosity(r) => r.noreply,
            Request::CacheMemlimit(r) => r.noreply,
            Request::Slabs(Slabs::Automove { noreply, .. })
            | Request::Slabs(Slabs::AutomoveRatio { noreply, .. })
            | Request::Lru(Lru { noreply, .. }) => *noreply,
            Request::MetaGet(r) => r.flags.quiet(),
            Request::MetaSet(r) => r.flags.quiet(),
            Request::MetaDelete(r) => r.flags.quiet(),
            Request::MetaArith(r) => r.flags.quiet(),
            _ => false,
        }
    }

    /// Whether this is a keyed meta command (mg, ms, md, ma, me), whose quiet
    /// mode hides only the common outcomes, never an error.
    pub fn is_meta(&self) -> bool {
        matches!(
            self,
            Request::MetaGet(_)
                | Request::MetaSet(_)
                | Request::MetaDelete(_)
                | Request::MetaArith(_)
                | Request::MetaDebug(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variant's name. No catch-all, so a new variant breaks this test's
    /// build until the table below has a row for it.
    fn variant(r: &Request<'_>) -> &'static str {
        match r {
            Request::Get(_) => "Get",
            Request::Store(_) => "Store",
            Request::Delete(_) => "Delete",
            Request::Arith(_) => "Arith",
            Request::Touch(_) => "Touch",
            Request::FlushAll(_) => "FlushAll",
            Request::Stats(_) => "Stats",
            Request::Version => "Version",
            Request::Verbosity(_) => "Verbosity",
            Request::Quit => "Quit",
            Request::Shutdown(_) => "Shutdown",
            Request::CacheMemlimit(_) => "CacheMemlimit",
            Request::Slabs(_) => "Slabs",
            Request::LruCrawler(_) => "LruCrawler",
            Request::Lru(_) => "Lru",
            Request::Watch(_) => "Watch",
            Request::Misbehave => "Misbehave",
            Request::RefreshCerts => "RefreshCerts",
            Request::DebugTime(_) => "DebugTime",
            Request::MetaGet(_) => "MetaGet",
            Request::MetaSet(_) => "MetaSet",
            Request::MetaDelete(_) => "MetaDelete",
            Request::MetaArith(_) => "MetaArith",
            Request::MetaNoop => "MetaNoop",
            Request::MetaDebug(_) => "MetaDebug",
            Request::ClusterLink(_) => "ClusterLink",
        }
    }

    const ALL: usize = 26;

    /// (request, variant, keyed, keys as (raw, base64))
    type Row = (
        &'static [u8],
        &'static str,
        bool,
        &'static [(&'static [u8], bool)],
    );

    #[test]
    fn keys_of_every_variant() {
        const P: bool = false;
        const B: bool = true;
        let rows: &[Row] = &[
            (
                b"get a b c\r\n",
                "Get",
                true,
                &[(b"a", P), (b"b", P), (b"c", P)],
            ),
            (b"bget a\r\n", "Get", true, &[(b"a", P)]),
            (b"gets a\r\n", "Get", true, &[(b"a", P)]),
            (b"gat 10\r\n", "Get", true, &[]),
            (b"gats 10 x y\r\n", "Get", true, &[(b"x", P), (b"y", P)]),
            (b"set k 0 0 1\r\nv\r\n", "Store", true, &[(b"k", P)]),
            (
                b"cas k 0 0 1 5 noreply\r\nv\r\n",
                "Store",
                true,
                &[(b"k", P)],
            ),
            (b"delete k\r\n", "Delete", true, &[(b"k", P)]),
            (b"decr k 1\r\n", "Arith", true, &[(b"k", P)]),
            (b"touch k 10\r\n", "Touch", true, &[(b"k", P)]),
            (b"flush_all 0\r\n", "FlushAll", false, &[]),
            (b"stats items\r\n", "Stats", false, &[]),
            (b"version\r\n", "Version", false, &[]),
            (b"verbosity 1\r\n", "Verbosity", false, &[]),
            (b"quit\r\n", "Quit", false, &[]),
            (b"shutdown graceful\r\n", "Shutdown", false, &[]),
            (b"cache_memlimit 100\r\n", "CacheMemlimit", false, &[]),
            (b"slabs automove 1\r\n", "Slabs", false, &[]),
            (b"lru_crawler crawl all\r\n", "LruCrawler", false, &[]),
            (b"lru mode flat\r\n", "Lru", false, &[]),
            (b"watch\r\n", "Watch", false, &[]),
            (b"misbehave\r\n", "Misbehave", false, &[]),
            (b"refresh_certs\r\n", "RefreshCerts", false, &[]),
            (b"debugtime p\r\n", "DebugTime", false, &[]),
            (b"mg k v\r\n", "MetaGet", true, &[(b"k", P)]),
            (b"mg Zm9v b v\r\n", "MetaGet", true, &[(b"Zm9v", B)]),
            (b"ms k 1 T0\r\nv\r\n", "MetaSet", true, &[(b"k", P)]),
            (b"ms Zm9v 1 b\r\nv\r\n", "MetaSet", true, &[(b"Zm9v", B)]),
            (b"md k q\r\n", "MetaDelete", true, &[(b"k", P)]),
            (b"ma k D2\r\n", "MetaArith", true, &[(b"k", P)]),
            (b"mn\r\n", "MetaNoop", false, &[]),
            (b"me k\r\n", "MetaDebug", true, &[(b"k", P)]),
            (b"me Zm9v b\r\n", "MetaDebug", true, &[(b"Zm9v", B)]),
            (b"cluster_link node-1\r\n", "ClusterLink", false, &[]),
        ];
        let limits = Limits::default();
        let mut seen = Vec::new();
        for &(wire, name, keyed, want) in rows {
            let shown = String::from_utf8_lossy(wire);
            let Parse::Complete { request, consumed } = parse(wire, &limits) else {
                panic!("{shown:?} did not parse");
            };
            assert_eq!(consumed, wire.len(), "{shown:?}");
            assert_eq!(variant(&request), name, "{shown:?}");
            seen.push(name);
            let want: Vec<Key<'_>> = want
                .iter()
                .map(|&(raw, b64)| {
                    if b64 {
                        Key::base64(raw)
                    } else {
                        Key::plain(raw)
                    }
                })
                .collect();
            assert_eq!(request.keys().collect::<Vec<_>>(), want, "{shown:?}");
            assert_eq!(request.key(), want.first().copied(), "{shown:?}");
            assert_eq!(request.key_count(), want.len(), "{shown:?}");
            assert_eq!(request.is_keyed(), keyed, "{shown:?}");
            // The iterator knows how many are left at every step.
            let mut keys = request.keys();
            for left in (0..=want.len()).rev() {
                assert_eq!(keys.len(), left, "{shown:?}");
                keys.next();
            }
            // The prefetch hint, reading the same bytes unparsed, agrees.
            let mut peeked = Vec::new();
            assert_eq!(
                crate::peek_keys(wire, usize::MAX, |k| peeked.push(k)),
                wire.len()
            );
            let raw: Vec<&[u8]> = want.iter().map(Key::raw).collect();
            assert_eq!(peeked, raw, "{shown:?}");
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ALL, "a variant has no row: {seen:?}");
    }
}
