//! The client side: request encoders (for the loadgen and tests) and a parser
//! for server replies, zero-copy and total (it never panics, whatever the bytes).

use crate::cmd::get::{GetKind, encode_request as encode_get};
use crate::cmd::{Store, StoreCmd};
use crate::meta::flags::encode_list;
use crate::meta::{MetaFlag, put_u64};
use crate::reply::Status;
use memchr::memchr;

/// Longest reply line we wait for before calling the stream broken.
pub const MAX_REPLY_LINE: usize = 64 * 1024;

// ---------------------------------------------------------------- requests

/// Append `get <keys>\r\n`.
pub fn get<'k>(out: &mut Vec<u8>, keys: impl IntoIterator<Item = &'k [u8]>) {
    encode_get(out, GetKind::Get, 0, keys);
}

/// Append `gets <keys>\r\n`.
pub fn gets<'k>(out: &mut Vec<u8>, keys: impl IntoIterator<Item = &'k [u8]>) {
    encode_get(out, GetKind::Gets, 0, keys);
}

/// Append a storage command with its data block.
#[allow(clippy::too_many_arguments)]
pub fn store(
    out: &mut Vec<u8>,
    cmd: StoreCmd,
    key: &[u8],
    flags: u32,
    exptime: i32,
    data: &[u8],
    cas: u64,
    noreply: bool,
) {
    Store {
        cmd,
        key,
        flags,
        exptime,
        data,
        cas,
        noreply,
    }
    .encode(out);
}

/// Append `set <key> <flags> <exptime> <len>\r\n<data>\r\n`.
pub fn set(out: &mut Vec<u8>, key: &[u8], flags: u32, exptime: i32, data: &[u8]) {
    store(out, StoreCmd::Set, key, flags, exptime, data, 0, false);
}

/// Append `delete <key>\r\n`.
pub fn delete(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(b"delete ");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n");
}

/// Append `mg <key> <flags>\r\n`.
pub fn mg(out: &mut Vec<u8>, key: &[u8], flags: &[MetaFlag<'_>]) {
    meta_line(out, b"mg ", key, None, flags);
}

/// Append `ms <key> <len> <flags>\r\n<data>\r\n`.
pub fn ms(out: &mut Vec<u8>, key: &[u8], data: &[u8], flags: &[MetaFlag<'_>]) {
    meta_line(out, b"ms ", key, Some(data.len()), flags);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Append `md <key> <flags>\r\n`.
pub fn md(out: &mut Vec<u8>, key: &[u8], flags: &[MetaFlag<'_>]) {
    meta_line(out, b"md ", key, None, flags);
}

/// Append `ma <key> <flags>\r\n`.
pub fn ma(out: &mut Vec<u8>, key: &[u8], flags: &[MetaFlag<'_>]) {
    meta_line(out, b"ma ", key, None, flags);
}

/// Append `mn\r\n`.
pub fn mn(out: &mut Vec<u8>) {
    out.extend_from_slice(b"mn\r\n");
}

fn meta_line(
    out: &mut Vec<u8>,
    cmd: &[u8],
    key: &[u8],
    len: Option<usize>,
    flags: &[MetaFlag<'_>],
) {
    out.extend_from_slice(cmd);
    out.extend_from_slice(key);
    if let Some(n) = len {
        out.push(b' ');
        put_u64(out, n as u64);
    }
    encode_list(flags, out);
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------- replies

/// The result of parsing the start of a reply stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyParse<'a> {
    Complete {
        reply: Reply<'a>,
        consumed: usize,
    },
    /// More bytes needed; how many when a data block is being waited for.
    Incomplete {
        more: Option<usize>,
    },
    Invalid(ReplyError),
}

/// Why a reply stream cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// No `\r\n` within [`MAX_REPLY_LINE`] bytes.
    LineTooLong,
    /// A line ended in a bare `\n`.
    BareNewline,
    /// A malformed `VALUE`, `STAT`, `VA` or meta line.
    BadLine,
    /// A data block not followed by `\r\n`.
    BadDataTerminator,
    /// Something other than `VALUE` or `END` inside a retrieval reply (or other
    /// than `STAT`/`END` inside a stats reply).
    Unexpected,
}

/// One server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `VALUE` blocks up to `END` (none, for a bare `END`, which is also how an
    /// empty stats reply looks).
    Values(Values<'a>),
    /// `STAT` lines up to `END` (at least one).
    Stats(StatLines<'a>),
    Status(Status),
    /// `incr`/`decr` result.
    Number(u64),
    /// `VERSION <v>`.
    Version(&'a [u8]),
    /// Bare `ERROR`.
    Error,
    /// `CLIENT_ERROR <reason>`: the reason.
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <reason>`: the reason.
    ServerError(&'a [u8]),
    /// A meta reply (`VA HD EN NF NS EX MN ME`).
    Meta(MetaReply<'a>),
    /// Any other line (`ERROR <msg>`, `BUSY …`, `MEMLIMIT_…`), without `\r\n`.
    Other(&'a [u8]),
}

/// One `VALUE` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    pub key: &'a [u8],
    pub flags: u32,
    pub data: &'a [u8],
    pub cas: Option<u64>,
}

/// The `VALUE` blocks of a retrieval reply, read from the validated bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Values<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        let (v, used) = value_block(self.rest).ok().flatten()?;
        self.rest = &self.rest[used..];
        Some(v)
    }
}

/// The `STAT <name> <value>` lines of a stats reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for StatLines<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let (line, used) = line(self.rest).ok()??;
        let (name, value) = stat_line(line)?;
        self.rest = &self.rest[used..];
        Some((name, value))
    }
}

/// Meta reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCode {
    Va,
    Hd,
    En,
    Nf,
    Ns,
    Ex,
    Mn,
    Me,
}

/// A meta reply: code, return flags (for `ME`, the key and its `k=v` pairs), and
/// the data block of `VA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaReply<'a> {
    pub code: MetaCode,
    pub flags: ReplyFlags<'a>,
    pub value: Option<&'a [u8]>,
}

/// Return flags of a meta reply, read on demand from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFlags<'a> {
    raw: &'a [u8],
}

impl<'a> ReplyFlags<'a> {
    /// The flag text as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The tokens.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + Clone {
        crate::line::split_tokens(self.raw)
    }

    /// The token of flag `c` without its letter (empty for bare flags).
    pub fn get(&self, c: u8) -> Option<&'a [u8]> {
        self.iter().find(|t| t[0] == c).map(|t| &t[1..])
    }

    /// Whether flag `c` is present.
    pub fn has(&self, c: u8) -> bool {
        self.get(c).is_some()
    }

    fn num(&self, c: u8) -> Option<u64> {
        digits(self.get(c)?)
    }

    pub fn cas(&self) -> Option<u64> {
        self.num(b'c')
    }
    pub fn client_flags(&self) -> Option<u32> {
        self.num(b'f').and_then(|v| u32::try_from(v).ok())
    }
    pub fn size(&self) -> Option<u64> {
        self.num(b's')
    }
    pub fn last_access(&self) -> Option<u64> {
        self.num(b'l')
    }
    pub fn hit(&self) -> Option<bool> {
        self.num(b'h').map(|v| v != 0)
    }
    /// Remaining TTL, -1 for none.
    pub fn ttl(&self) -> Option<i64> {
        let t = self.get(b't')?;
        match t.strip_prefix(b"-") {
            Some(d) => digits(d).and_then(|v| i64::try_from(v).ok()).map(|v| -v),
            None => digits(t).and_then(|v| i64::try_from(v).ok()),
        }
    }
    pub fn key(&self) -> Option<&'a [u8]> {
        self.get(b'k')
    }
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.get(b'O')
    }
    /// `b`: the returned key is base64.
    pub fn base64(&self) -> bool {
        self.has(b'b')
    }
    /// `W`: this client won the recache.
    pub fn won(&self) -> bool {
        self.has(b'W')
    }
    /// `X`: the item is stale.
    pub fn stale(&self) -> bool {
        self.has(b'X')
    }
    /// `Z`: another client already won.
    pub fn win_sent(&self) -> bool {
        self.has(b'Z')
    }
}

/// Strict unsigned decimal (what servers send).
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |v, &d| {
        v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The next `\r\n`-terminated line: (content, bytes used), `None` if incomplete.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ReplyError> {
    let window = &buf[..buf.len().min(MAX_REPLY_LINE + 2)];
    match memchr(b'\n', window) {
        Some(nl) if nl > 0 && buf[nl - 1] == b'\r' => Ok(Some((&buf[..nl - 1], nl + 1))),
        Some(_) => Err(ReplyError::BareNewline),
        None if buf.len() > MAX_REPLY_LINE + 1 => Err(ReplyError::LineTooLong),
        None => Ok(None),
    }
}

fn stat_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"STAT ")?;
    let sp = memchr(b' ', rest)?;
    (sp > 0).then(|| (&rest[..sp], &rest[sp + 1..]))
}

/// Need `n` more bytes (data block not all here).
fn short(buf: &[u8], total: usize) -> ReplyParse<'static> {
    ReplyParse::Incomplete {
        more: Some(total.saturating_sub(buf.len())),
    }
}

/// One `VALUE` block at the start of `buf`: Ok(None) when it is not a VALUE line
/// (or is incomplete — the caller tells these apart by `line`).
#[allow(clippy::type_complexity)]
fn value_block(buf: &[u8]) -> Result<Option<(Value<'_>, usize)>, ReplyParse<'static>> {
    let (l, used) = match line(buf) {
        Ok(Some(x)) => x,
        Ok(None) => return Err(ReplyParse::Incomplete { more: None }),
        Err(e) => return Err(ReplyParse::Invalid(e)),
    };
    let Some(rest) = l.strip_prefix(b"VALUE ") else {
        return Ok(None);
    };
    let mut parts = rest.split(|&b| b == b' ');
    let bad = || ReplyParse::Invalid(ReplyError::BadLine);
    let key = parts.next().filter(|k| !k.is_empty()).ok_or_else(bad)?;
    let flags = parts
        .next()
        .and_then(digits)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(bad)?;
    let len = parts
        .next()
        .and_then(digits)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(bad)?;
    let cas = match parts.next() {
        Some(c) => Some(digits(c).ok_or_else(bad)?),
        None => None,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    let total = used
        .checked_add(len)
        .and_then(|t| t.checked_add(2))
        .ok_or_else(bad)?;
    if buf.len() < total {
        return Err(short(buf, total));
    }
    if &buf[total - 2..total] != b"\r\n" {
        return Err(ReplyParse::Invalid(ReplyError::BadDataTerminator));
    }
    Ok(Some((
        Value {
            key,
            flags,
            data: &buf[used..used + len],
            cas,
        },
        total,
    )))
}

/// Parse one reply from the start of `buf`.
pub fn parse_reply(buf: &[u8]) -> ReplyParse<'_> {
    let (l, used) = match line(buf) {
        Ok(Some(x)) => x,
        Ok(None) => return ReplyParse::Incomplete { more: None },
        Err(e) => return ReplyParse::Invalid(e),
    };
    let done = |reply, consumed| ReplyParse::Complete { reply, consumed };
    if l.starts_with(b"VALUE ") || l == b"END" {
        return values(buf);
    }
    if l.starts_with(b"STAT ") {
        return stats(buf);
    }
    if l.len() >= 2
        && l[..2].iter().all(u8::is_ascii_uppercase)
        && (l.len() == 2 || l[2] == b' ')
        && let Some(p) = meta(buf, l, used)
    {
        return p;
    }
    let reply = if let Some(s) = Status::ALL.iter().find(|s| s.line() == l) {
        Reply::Status(*s)
    } else if l == b"ERROR" {
        Reply::Error
    } else if let Some(r) = l.strip_prefix(b"CLIENT_ERROR ") {
        Reply::ClientError(r)
    } else if let Some(r) = l.strip_prefix(b"SERVER_ERROR ") {
        Reply::ServerError(r)
    } else if let Some(v) = l.strip_prefix(b"VERSION ") {
        Reply::Version(v)
    } else if let Some(n) = digits(l) {
        Reply::Number(n)
    } else {
        Reply::Other(l)
    };
    done(reply, used)
}

fn values(buf: &[u8]) -> ReplyParse<'_> {
    let mut at = 0;
    loop {
        match value_block(&buf[at..]) {
            Ok(Some((_, used))) => at += used,
            Ok(None) => {
                // Not a VALUE line: must be END.
                return match line(&buf[at..]) {
                    Ok(Some((b"END", used))) => ReplyParse::Complete {
                        reply: Reply::Values(Values { rest: &buf[..at] }),
                        consumed: at + used,
                    },
                    _ => ReplyParse::Invalid(ReplyError::Unexpected),
                };
            }
            Err(ReplyParse::Incomplete { more }) => {
                return ReplyParse::Incomplete { more };
            }
            Err(other) => return other,
        }
    }
}

fn stats(buf: &[u8]) -> ReplyParse<'_> {
    let mut at = 0;
    loop {
        match line(&buf[at..]) {
            Ok(Some((b"END", used))) => {
                return ReplyParse::Complete {
                    reply: Reply::Stats(StatLines { rest: &buf[..at] }),
                    consumed: at + used,
                };
            }
            Ok(Some((l, used))) => {
                if !l.starts_with(b"STAT ") {
                    return ReplyParse::Invalid(ReplyError::Unexpected);
                }
                if stat_line(l).is_none() {
                    return ReplyParse::Invalid(ReplyError::BadLine);
                }
                at += used;
            }
            Ok(None) => return ReplyParse::Incomplete { more: None },
            Err(e) => return ReplyParse::Invalid(e),
        }
    }
}

/// A meta reply, if the line's code is one.
fn meta<'a>(buf: &'a [u8], l: &'a [u8], used: usize) -> Option<ReplyParse<'a>> {
    let code = match &l[..2] {
        b"VA" => MetaCode::Va,
        b"HD" => MetaCode::Hd,
        b"EN" => MetaCode::En,
        b"NF" => MetaCode::Nf,
        b"NS" => MetaCode::Ns,
        b"EX" => MetaCode::Ex,
        b"MN" => MetaCode::Mn,
        b"ME" => MetaCode::Me,
        _ => return None,
    };
    let rest = if l.len() > 3 { &l[3..] } else { &[][..] };
    if code != MetaCode::Va {
        let ok = code == MetaCode::Me
            || crate::line::split_tokens(rest).all(|t| t[0].is_ascii_alphabetic());
        if !ok || (code == MetaCode::Mn && !rest.is_empty()) {
            return Some(ReplyParse::Invalid(ReplyError::BadLine));
        }
        return Some(ReplyParse::Complete {
            reply: Reply::Meta(MetaReply {
                code,
                flags: ReplyFlags { raw: rest },
                value: None,
            }),
            consumed: used,
        });
    }
    let (size, flags) = match memchr(b' ', rest) {
        Some(sp) => (&rest[..sp], &rest[sp + 1..]),
        None => (rest, &[][..]),
    };
    let Some(len) = digits(size).and_then(|v| usize::try_from(v).ok()) else {
        return Some(ReplyParse::Invalid(ReplyError::BadLine));
    };
    if !crate::line::split_tokens(flags).all(|t| t[0].is_ascii_alphabetic()) {
        return Some(ReplyParse::Invalid(ReplyError::BadLine));
    }
    let Some(total) = used.checked_add(len).and_then(|t| t.checked_add(2)) else {
        return Some(ReplyParse::Invalid(ReplyError::BadLine));
    };
    if buf.len() < total {
        return Some(short(buf, total));
    }
    if &buf[total - 2..total] != b"\r\n" {
        return Some(ReplyParse::Invalid(ReplyError::BadDataTerminator));
    }
    Some(ReplyParse::Complete {
        reply: Reply::Meta(MetaReply {
            code,
            flags: ReplyFlags { raw: flags },
            value: Some(&buf[used..used + len]),
        }),
        consumed: total,
    })
}
