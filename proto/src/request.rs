//! The request type, and the entry point that parses one request: it frames the
//! line, reads the command word and hands the line to that command's family,
//! whose value it wraps into a [`Request`].

use crate::Limits;
use crate::cmd::admin::{
    Admin, CacheMemlimit, DebugTime, FlushAll, Lru, LruCrawler, ShutdownMode, Slabs, Verbosity,
    Watch,
};
use crate::cmd::{Arith, Delete, Get, Stats, Store, Touch};
use crate::cmd::{admin, arith, delete, get, stats, store, touch};
use crate::error::{ClientError, ErrorReply, Invalid};
use crate::line::{Frame, Tokens, frame};
use crate::meta::{self, MetaArith, MetaDebug, MetaDelete, MetaGet, MetaSet};
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
    /// Debug builds of memcached only; release builds answer `ERROR`.
    DebugTime(DebugTime),
    MetaGet(MetaGet<'a>),
    MetaSet(MetaSet<'a>),
    MetaDelete(MetaDelete<'a>),
    MetaArith(MetaArith<'a>),
    /// `mn`: answered `MN`.
    MetaNoop,
    MetaDebug(MetaDebug<'a>),
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
            Admin::DebugTime(r) => Request::DebugTime(r),
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
            Request::DebugTime(r) => Admin::DebugTime(*r).encode(out),
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
}
