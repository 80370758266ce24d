//! `md` (meta delete).

use crate::error::ClientError;
use crate::line::Tokens;
use crate::meta::get::parse_key_and_flags;
use crate::meta::{Key, MetaFlags, put_echo};
use crate::text::{Ctx, Parsed};

/// `md <key> <flags>*`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaDelete<'a> {
    pub key: Key<'a>,
    pub flags: MetaFlags<'a>,
}

pub(crate) fn parse_md<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, MetaDelete<'a>> {
    let (key, flags) = parse_key_and_flags(
        t,
        2,
        cx,
        ClientError::OptionsTooLong,
        Some(ClientError::InvalidOrDuplicateFlag),
    )?;
    cx.done(MetaDelete { key, flags })
}

impl MetaDelete<'_> {
    /// Append `md <key> <flags>\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"md ");
        out.extend_from_slice(self.key.raw());
        self.flags.encode(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// The store's answer to an `md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdOutcome {
    /// `HD`: deleted (or marked stale with `I`).
    Deleted,
    /// `NF`.
    NotFound,
    /// `EX`: the `C` value did not match.
    Exists,
    /// `NS`: `x` could not store the emptied item.
    NotStored,
}

/// Append the reply to an `md`: code plus `O`/`k` echo. Under `q` only `HD` is
/// suppressed (memcached 1.6.18 still sends `NF` and `EX`).
pub fn encode_md(out: &mut Vec<u8>, req: &MetaDelete<'_>, outcome: MdOutcome) {
    let code: &[u8] = match outcome {
        MdOutcome::Deleted if req.flags.quiet() => return,
        MdOutcome::Deleted => b"HD",
        MdOutcome::NotFound => b"NF",
        MdOutcome::Exists => b"EX",
        MdOutcome::NotStored => b"NS",
    };
    out.extend_from_slice(code);
    put_echo(out, &req.flags, &req.key);
    out.extend_from_slice(b"\r\n");
}
