//! The request type and the entry point that parses one request.

use crate::Limits;
use crate::cmd::admin::{
    CacheMemlimit, DebugTime, FlushAll, Lru, LruCrawler, ShutdownMode, Slabs, Verbosity, Watch,
};
use crate::cmd::{Arith, Delete, Get, Stats, Store, Touch};
use crate::cmd::{admin, arith, delete, get, stats, store, touch};
use crate::error::{ClientError, ErrorReply, Invalid};
use crate::line::{Frame, Tokens, frame};
use crate::meta::{self, MetaArith, MetaDebug, MetaDelete, MetaGet, MetaSet};

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

/// Parsing context: the buffer, where the command line ends, the limits.
pub(crate) struct Ctx<'a> {
    pub buf: &'a [u8],
    /// Offset just past the command line's `\n`.
    pub next: usize,
    pub limits: Limits,
}

impl<'a> Ctx<'a> {
    #[inline]
    pub(crate) fn complete(&self, request: Request<'a>) -> Parse<'a> {
        Parse::Complete {
            request,
            consumed: self.next,
        }
    }

    #[inline]
    pub(crate) fn complete_with(&self, request: Request<'a>, consumed: usize) -> Parse<'a> {
        Parse::Complete { request, consumed }
    }

    /// An error answered (unless silenced) after skipping the line.
    #[inline]
    pub(crate) fn invalid(&self, e: impl Into<ErrorReply>, reply: bool) -> Parse<'a> {
        Parse::Invalid(Invalid::line(e, self.next, reply))
    }
}

/// The data block of `vlen` bytes after the line, which must end in `\r\n`
/// (memcached checks exactly those two bytes: `CLIENT_ERROR bad data chunk`,
/// the line and block consumed, the connection kept).
#[inline]
pub(crate) fn data_block<'a>(cx: &Ctx<'a>, vlen: usize, reply: bool) -> Result<&'a [u8], Stop<'a>> {
    let end = cx.next + vlen;
    let total = end + 2;
    if cx.buf.len() < total {
        return Err(Stop::More(total - cx.buf.len()));
    }
    if &cx.buf[end..total] != b"\r\n" {
        return Err(Stop::Invalid(Invalid::line(
            ClientError::BadDataChunk,
            total,
            reply,
        )));
    }
    Ok(&cx.buf[cx.next..end])
}

/// Why a helper stopped short of a request (kept small: `Parse` is not).
pub(crate) enum Stop<'a> {
    More(usize),
    Invalid(Invalid<'a>),
}

impl<'a> From<Stop<'a>> for Parse<'a> {
    fn from(s: Stop<'a>) -> Self {
        match s {
            Stop::More(n) => Parse::Incomplete { more: Some(n) },
            Stop::Invalid(i) => Parse::Invalid(i),
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
        return cx.invalid(ErrorReply::Error, true);
    }
    let cmd = t.get(0);
    if cmd.len() == 2 && cmd[0] == b'm' {
        return match cmd[1] {
            b'g' => meta::get::parse_mg(&t, &cx),
            b's' => meta::set::parse_ms(&t, &cx),
            b'd' => meta::delete::parse_md(&t, &cx),
            b'a' => meta::arith::parse_ma(&t, &cx),
            b'n' => cx.complete(Request::MetaNoop),
            b'e' => meta::get::parse_me(&t, &cx),
            _ => cx.invalid(ErrorReply::Error, true),
        };
    }
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => get::parse(&t, &cx),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => store::parse(&t, &cx),
        b"delete" => delete::parse(&t, &cx),
        b"incr" | b"decr" => arith::parse(&t, &cx),
        b"touch" => touch::parse(&t, &cx),
        b"stats" => stats::parse(&t, &cx),
        _ => admin::parse(&t, &cx),
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
            other => admin::encode(other, out),
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
