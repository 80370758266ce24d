//! `ms` (meta set).

use crate::check_key;
use crate::error::{ClientError, ErrorReply, Invalid, ServerError};
use crate::line::Tokens;
use crate::meta::flags::MAX_META_TOKENS;
use crate::meta::{Key, MetaFlags, put_request_key, put_u64};
use crate::num::strtol;
use crate::text::{Ctx, Parsed};

/// The storage mode of an `ms` (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    /// `MS`, the default.
    Set,
    /// `ME`.
    Add,
    /// `MR`.
    Replace,
    /// `MA`.
    Append,
    /// `MP`.
    Prepend,
}

/// `ms <key> <datalen> <flags>*\r\n<data>\r\n`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaSet<'a> {
    pub key: Key<'a>,
    pub mode: SetMode,
    pub flags: MetaFlags<'a>,
    pub data: &'a [u8],
}

pub(crate) fn parse_ms<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, MetaSet<'a>> {
    let fail = |e: ErrorReply| cx.invalid(e, true);
    if t.len() < 2 {
        return fail(ErrorReply::Error);
    }
    let raw_key = t.get(1);
    if !check_key(raw_key, &cx.limits) || t.len() == 2 {
        return fail(ClientError::BadCommandLineFormat.into());
    }
    if t.len() > MAX_META_TOKENS {
        return fail(ClientError::OptionsTooLong.into());
    }
    // memcached reads the length as a 32-bit int (low bits of a 64-bit parse).
    let vlen = match strtol(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return fail(ClientError::BadCommandLineFormat.into()),
    };
    // From here on, an error swallows the data block, as memcached does.
    let swallow = |e: ErrorReply, unlink: Option<Key<'a>>| {
        Err(Invalid {
            error: e,
            reply: true,
            consumed: cx.next,
            swallow: vlen + 2,
            close: false,
            unlink,
        }
        .into())
    };
    let toks = (3..t.len()).map(|i| t.get(i));
    let flags = match MetaFlags::parse(toks, t.rest(3), raw_key) {
        Ok(f) => f,
        Err(e) => return swallow(e.into(), None),
    };
    if flags.opaque_too_long() {
        return swallow(ClientError::OpaqueTooLong.into(), None);
    }
    let mode = match flags.mode() {
        None | Some(b'S') => SetMode::Set,
        Some(b'E') => SetMode::Add,
        Some(b'A') => SetMode::Append,
        Some(b'P') => SetMode::Prepend,
        Some(b'R') => SetMode::Replace,
        Some(_) => return swallow(ClientError::InvalidSetMode.into(), None),
    };
    let key = if flags.base64() {
        Key::base64(raw_key)
    } else {
        Key::plain(raw_key)
    };
    if vlen > cx.limits.max_item_size {
        // memcached unlinks the old item whatever the mode.
        return swallow(ServerError::ObjectTooLarge.into(), Some(key));
    }
    let (data, consumed) = cx.data_block(vlen, true)?;
    let set = MetaSet {
        key,
        mode,
        flags,
        data,
    };
    Ok((set, consumed))
}

impl MetaSet<'_> {
    /// Append `ms <key> <len> <flags>\r\n<data>\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ms ");
        out.extend_from_slice(self.key.raw());
        out.push(b' ');
        put_u64(out, self.data.len() as u64);
        self.flags.encode(out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.data);
        out.extend_from_slice(b"\r\n");
    }
}

/// The store's answer to an `ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsOutcome {
    /// `HD`, with the new CAS value for the `c` flag.
    Stored { cas: u64 },
    /// `NS`.
    NotStored,
    /// `EX`.
    Exists,
    /// `NF`.
    NotFound,
}

/// Append the reply to an `ms`: the code and the `O`, `k`, `c` flags in request
/// order. Under `q` a success sends nothing; other codes are always sent.
pub fn encode_ms(out: &mut Vec<u8>, req: &MetaSet<'_>, outcome: &MsOutcome) {
    let (code, cas): (&[u8], u64) = match *outcome {
        MsOutcome::Stored { cas } => {
            if req.flags.quiet() {
                return;
            }
            (b"HD", cas)
        }
        // memcached reports c0 when nothing was stored.
        MsOutcome::NotStored => (b"NS", 0),
        MsOutcome::Exists => (b"EX", 0),
        MsOutcome::NotFound => (b"NF", 0),
    };
    out.extend_from_slice(code);
    for t in req.flags.raw_tokens() {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => put_request_key(out, &req.key),
            b'c' => {
                out.extend_from_slice(b" c");
                put_u64(out, cas);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}
