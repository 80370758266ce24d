//! `mg` (meta get), `me` (meta debug) and `mn` (meta no-op).

use crate::error::{ClientError, ErrorReply, Invalid};
use crate::line::Tokens;
use crate::meta::flags::MAX_META_TOKENS;
use crate::meta::{Key, MetaFlags, put_echo, put_i64, put_key, put_request_key, put_u64};
use crate::text::{Ctx, Parsed};
use crate::{base64, check_key};

/// `mg <key> <flags>*`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaGet<'a> {
    pub key: Key<'a>,
    pub flags: MetaFlags<'a>,
}

/// `me <key> [b]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaDebug<'a> {
    pub key: Key<'a>,
}

/// Checks shared by `mg`, `md` and `ma` (memcached's order): token count, key
/// length, flag count, flags, opaque length. `too_many` and `flag_error` differ.
pub(crate) fn parse_key_and_flags<'a>(
    t: &Tokens<'a>,
    first_flag: usize,
    cx: &Ctx<'a>,
    too_many: ClientError,
    flag_error: Option<ClientError>,
) -> Result<(Key<'a>, MetaFlags<'a>), Invalid<'a>> {
    let fail = |e: ErrorReply| Err(Invalid::line(e, cx.next, true));
    if t.len() < 2 {
        return fail(ErrorReply::Error);
    }
    let raw_key = t.get(1);
    if !check_key(raw_key, &cx.limits) {
        return fail(ClientError::BadCommandLineFormat.into());
    }
    if t.len() > MAX_META_TOKENS {
        return fail(too_many.into());
    }
    let toks = (first_flag..t.len()).map(|i| t.get(i));
    let flags = match MetaFlags::parse(toks, t.rest(first_flag), raw_key) {
        Ok(f) => f,
        Err(e) => return fail(flag_error.unwrap_or(e).into()),
    };
    if flags.opaque_too_long() {
        return fail(ClientError::OpaqueTooLong.into());
    }
    let key = if flags.base64() {
        Key::base64(raw_key)
    } else {
        Key::plain(raw_key)
    };
    Ok((key, flags))
}

// Inlined into the dispatch, which then builds the request in place (fewer
// instructions per parse, counted with callgrind).
#[inline]
pub(crate) fn parse_mg<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, MetaGet<'a>> {
    let (key, flags) = parse_key_and_flags(t, 2, cx, ClientError::GetOptionsTooLong, None)?;
    cx.done(MetaGet { key, flags })
}

pub(crate) fn parse_me<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, MetaDebug<'a>> {
    let bad = || cx.invalid(ClientError::BadCommandLineFormat, true);
    if t.len() < 2 || !check_key(t.get(1), &cx.limits) {
        return bad();
    }
    let raw = t.get(1);
    let key = if t.len() >= 3 && t.get(2) == b"b" {
        if !base64::validate(raw) {
            return bad();
        }
        Key::base64(raw)
    } else {
        Key::plain(raw)
    };
    cx.done(MetaDebug { key })
}

impl MetaGet<'_> {
    /// Append `mg <key> <flags>\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"mg ");
        out.extend_from_slice(self.key.raw());
        self.flags.encode(out);
        out.extend_from_slice(b"\r\n");
    }
}

impl MetaDebug<'_> {
    /// Append `me <key>[ b]\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"me ");
        out.extend_from_slice(self.key.raw());
        if self.key.is_base64() {
            out.extend_from_slice(b" b");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// What the store knows about an item an `mg` found. The engine fills it; the
/// encoder turns it into the reply the request's flags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MgItem<'a> {
    /// The stored key (decoded, if it was sent in base64).
    pub key: &'a [u8],
    /// The key was stored through a base64 (`b`) request: `k` returns it encoded.
    pub key_binary: bool,
    pub client_flags: u32,
    pub cas: u64,
    /// The value (its length is the `VA` size and the `s` flag).
    pub value: &'a [u8],
    /// Remaining TTL in seconds, -1 for none.
    pub ttl: i64,
    /// Seconds since last access, before this request.
    pub last_access: u64,
    /// Whether it was fetched before this request (`h`).
    pub fetched: bool,
    /// Marked stale by an invalidation (`X`).
    pub stale: bool,
    /// This request won the right to recache (`W`).
    pub won: bool,
    /// Another request already won it (`Z`).
    pub win_sent: bool,
}

/// Outcome of an `mg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgOutcome<'a> {
    Hit(MgItem<'a>),
    Miss,
}

/// Append the reply to `req`: `VA <size> <flags>\r\n<data>\r\n`, `HD <flags>\r\n`,
/// or `EN\r\n` (nothing at all for a miss under `q`, as memcached).
pub fn encode_mg(out: &mut Vec<u8>, req: &MetaGet<'_>, outcome: &MgOutcome<'_>) {
    let it = match outcome {
        MgOutcome::Miss => {
            if req.flags.quiet() {
                return;
            }
            out.extend_from_slice(b"EN");
            put_echo(out, &req.flags, &req.key);
            out.extend_from_slice(b"\r\n");
            return;
        }
        MgOutcome::Hit(it) => it,
    };
    let value = req.flags.return_value();
    if value {
        out.extend_from_slice(b"VA ");
        put_u64(out, it.value.len() as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    for t in req.flags.raw_tokens() {
        let c = t[0];
        match c {
            b's' | b'c' | b'f' | b'l' => {
                out.push(b' ');
                out.push(c);
                put_u64(
                    out,
                    match c {
                        b's' => it.value.len() as u64,
                        b'c' => it.cas,
                        b'f' => it.client_flags.into(),
                        _ => it.last_access,
                    },
                );
            }
            b't' => {
                out.extend_from_slice(b" t");
                put_i64(out, it.ttl);
            }
            b'h' => out.extend_from_slice(if it.fetched { b" h1" } else { b" h0" }),
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => put_key(out, it.key, it.key_binary),
            _ => {}
        }
    }
    // memcached's order: Z, then X, then W.
    if it.win_sent {
        out.extend_from_slice(b" Z");
    }
    if it.stale {
        out.extend_from_slice(b" X");
    }
    if it.won {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if value {
        out.extend_from_slice(it.value);
        out.extend_from_slice(b"\r\n");
    }
}

/// What `me` shows about an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeInfo<'a> {
    pub key: &'a [u8],
    pub key_binary: bool,
    /// memcached prints `-1` for no expiry.
    pub exp: i64,
    pub last_access: u64,
    pub cas: u64,
    pub fetched: bool,
    pub class: u32,
    pub size: u64,
}

/// Append `ME <key> exp=… la=… cas=… fetch=… cls=… size=…\r\n`, or `EN\r\n`.
pub fn encode_me(out: &mut Vec<u8>, info: Option<&MeInfo<'_>>) {
    let Some(i) = info else {
        out.extend_from_slice(b"EN\r\n");
        return;
    };
    out.extend_from_slice(b"ME ");
    if i.key_binary {
        base64::encode(i.key, out);
    } else {
        out.extend_from_slice(i.key);
    }
    out.extend_from_slice(b" exp=");
    put_i64(out, i.exp);
    out.extend_from_slice(b" la=");
    put_u64(out, i.last_access);
    out.extend_from_slice(b" cas=");
    put_u64(out, i.cas);
    out.extend_from_slice(if i.fetched {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    out.extend_from_slice(b" cls=");
    put_u64(out, i.class.into());
    out.extend_from_slice(b" size=");
    put_u64(out, i.size);
    out.extend_from_slice(b"\r\n");
}

/// Append `MN\r\n`, the reply to `mn`.
pub fn encode_mn(out: &mut Vec<u8>) {
    out.extend_from_slice(b"MN\r\n");
}

/// Append ` k<key>` for a miss reply built by hand (rarely needed).
pub fn encode_request_key(out: &mut Vec<u8>, key: &Key<'_>) {
    put_request_key(out, key);
}
