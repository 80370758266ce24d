//! `ma` (meta arithmetic).

use crate::error::ClientError;
use crate::line::Tokens;
use crate::meta::get::parse_key_and_flags;
use crate::meta::{Key, MetaFlags, put_echo, put_i64, put_request_key, put_u64};
use crate::text::{Ctx, Parsed};

/// `ma` mode (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithMode {
    /// `MI`, `M+`, or no mode.
    Incr,
    /// `MD`, `M-`.
    Decr,
}

/// `ma <key> <flags>*`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaArith<'a> {
    pub key: Key<'a>,
    pub mode: ArithMode,
    /// `D`, default 1.
    pub delta: u64,
    /// `J`, default 0: the value seeded by `N` on a miss.
    pub initial: u64,
    pub flags: MetaFlags<'a>,
}

pub(crate) fn parse_ma<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, MetaArith<'a>> {
    let (key, flags) = parse_key_and_flags(
        t,
        2,
        cx,
        ClientError::OptionsTooLong,
        Some(ClientError::InvalidOrDuplicateFlag),
    )?;
    let mode = match flags.mode() {
        None | Some(b'I' | b'+') => ArithMode::Incr,
        Some(b'D' | b'-') => ArithMode::Decr,
        Some(_) => return cx.invalid(ClientError::InvalidArithMode, true),
    };
    cx.done(MetaArith {
        key,
        mode,
        delta: flags.delta().unwrap_or(1),
        initial: flags.initial().unwrap_or(0),
        flags,
    })
}

impl MetaArith<'_> {
    /// Append `ma <key> <flags>\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ma ");
        out.extend_from_slice(self.key.raw());
        self.flags.encode(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// The store's answer to an `ma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaOutcome {
    /// Applied (or created by `N`): the new value, its CAS and remaining TTL
    /// (-1 for none); `created` when `N` vivified it.
    Done {
        value: u64,
        cas: u64,
        ttl: i64,
        created: bool,
    },
    /// `NF`.
    NotFound,
    /// `NS`: vivify failed to store.
    NotStored,
    /// `EX`: the `C` value did not match.
    Exists,
}

/// Append the reply to an `ma`: `HD`/`VA <len>` with `c t O k` in request order
/// and the number as data for `v`; or `NF`/`NS`/`EX` with the `O`/`k` echo.
/// Under `q` memcached 1.6.18 suppresses a successful update but not a vivified
/// item, nor `NF`/`NS`/`EX`; so do we.
pub fn encode_ma(out: &mut Vec<u8>, req: &MetaArith<'_>, outcome: &MaOutcome) {
    let (value, cas, ttl) = match *outcome {
        MaOutcome::Done {
            value,
            cas,
            ttl,
            created,
        } => {
            if req.flags.quiet() && !created {
                return;
            }
            (value, cas, ttl)
        }
        other => {
            out.extend_from_slice(match other {
                MaOutcome::NotFound => b"NF",
                MaOutcome::NotStored => b"NS",
                _ => b"EX",
            });
            put_echo(out, &req.flags, &req.key);
            out.extend_from_slice(b"\r\n");
            return;
        }
    };
    let mut num = itoa::Buffer::new();
    let digits = num.format(value).as_bytes();
    let v = req.flags.return_value();
    if v {
        out.extend_from_slice(b"VA ");
        put_u64(out, digits.len() as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    for t in req.flags.raw_tokens() {
        match t[0] {
            b'c' => {
                out.extend_from_slice(b" c");
                put_u64(out, cas);
            }
            b't' => {
                out.extend_from_slice(b" t");
                put_i64(out, ttl);
            }
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => put_request_key(out, &req.key),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    if v {
        out.extend_from_slice(digits);
        out.extend_from_slice(b"\r\n");
    }
}
