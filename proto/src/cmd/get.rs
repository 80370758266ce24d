//! `get`, `gets`, `gat`, `gats`: request, parse, encode, and the `VALUE` replies.

use crate::check_key;
use crate::error::{ClientError, ErrorReply};
use crate::line::Tokens;
use crate::line::find;
use crate::meta::put_u64;
use crate::num::strtol;
use crate::text::{Ctx, Parsed};

/// Which retrieval command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetKind {
    Get,
    /// `gets`: return CAS values.
    Gets,
    /// `gat`: get and touch.
    Gat,
    /// `gats`: get and touch, with CAS values.
    Gats,
}

impl GetKind {
    /// Whether `VALUE` lines carry the CAS value.
    pub fn with_cas(self) -> bool {
        matches!(self, GetKind::Gets | GetKind::Gats)
    }

    /// Whether the command touches (`gat`, `gats`).
    pub fn touches(self) -> bool {
        matches!(self, GetKind::Gat | GetKind::Gats)
    }

    fn word(self) -> &'static [u8] {
        match self {
            GetKind::Get => b"get",
            GetKind::Gets => b"gets",
            GetKind::Gat => b"gat",
            GetKind::Gats => b"gats",
        }
    }
}

/// A retrieval request. `exptime` is meaningful for `gat`/`gats` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Get<'a> {
    pub kind: GetKind,
    pub exptime: i32,
    pub keys: Keys<'a>,
}

/// The keys of a multi-key get, read lazily from the already validated line:
/// no allocation, however many keys.
#[derive(Debug, Clone)]
pub struct Keys<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Keys<'a> {
    /// Keys from a space-separated list (each already checked).
    fn new(rest: &'a [u8], count: usize) -> Self {
        Keys { rest, left: count }
    }
}

impl PartialEq for Keys<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.clone().eq(other.clone())
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest;
        let start = s.iter().position(|&b| b != b' ')?;
        let end = find(b' ', &s[start..]).map_or(s.len(), |p| start + p);
        self.rest = &s[end..];
        self.left -= 1;
        Some(&s[start..end])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Keys<'_> {}

// Inlined into the dispatch, which then builds the request in place (fewer
// instructions per parse, counted with callgrind). `always`: as a plain hint
// it was not taken, and the Get came back through memory and was copied into
// the Request, stalling on loads that straddle the stores just made.
#[inline(always)]
pub(crate) fn parse<'a>(kind: GetKind, t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Get<'a>> {
    // memcached wants at least one token after the command, even for `gat`, whose
    // key list may then be empty (`gat 10` answers `END`).
    if t.len() < 2 {
        return cx.invalid(ErrorReply::Error, true);
    }
    let (exptime, first) = if kind.touches() {
        match strtol(t.get(1)) {
            Some(e) => (e, 2),
            None => return cx.invalid(ClientError::InvalidExptime, true),
        }
    } else {
        (0, 1)
    };
    let rest = t.rest(first);
    let mut count = 0;
    for key in Keys::new(rest, usize::MAX) {
        if !check_key(key, &cx.limits) {
            return cx.invalid(ClientError::BadCommandLineFormat, true);
        }
        count += 1;
    }
    cx.done(Get {
        kind,
        exptime,
        keys: Keys::new(rest, count),
    })
}

impl Get<'_> {
    /// Append the request line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_request(out, self.kind, self.exptime, self.keys.clone());
    }
}

/// Append `get|gets <keys>\r\n` or `gat|gats <exptime> <keys>\r\n` (client side).
pub fn encode_request<'k>(
    out: &mut Vec<u8>,
    kind: GetKind,
    exptime: i32,
    keys: impl IntoIterator<Item = &'k [u8]>,
) {
    out.extend_from_slice(kind.word());
    if kind.touches() {
        super::put_sp_i64(out, exptime.into());
    }
    for k in keys {
        out.push(b' ');
        out.extend_from_slice(k);
    }
    out.extend_from_slice(b"\r\n");
}

/// Append one hit: `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
#[inline]
pub fn encode_value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + data.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    put_u64(out, flags.into());
    out.push(b' ');
    put_u64(out, data.len() as u64);
    if let Some(c) = cas {
        out.push(b' ');
        put_u64(out, c);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Append `END\r\n`, closing a retrieval (or stats) reply.
#[inline]
pub fn encode_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"END\r\n");
}
