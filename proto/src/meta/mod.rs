//! The meta protocol: `mg`, `ms`, `md`, `ma`, `mn`, `me`.
//!
//! All meta commands share one flag grammar (memcached's `_meta_flag_preparse`):
//! every flag known to any meta command is accepted by all of them, each at most
//! once, and the reply carries the requested return flags in request order. A
//! parsed request keeps the raw flag text so that the reply encoders can follow
//! that order without storing it twice.

pub mod arith;
pub mod delete;
pub mod flags;
pub mod get;
pub mod set;

pub use arith::{ArithMode, MaOutcome, MetaArith};
pub use delete::{MdOutcome, MetaDelete};
pub use flags::{MetaFlag, MetaFlags};
pub use get::{MeInfo, MetaDebug, MetaGet, MgItem, MgOutcome};
pub use set::{MetaSet, MsOutcome, SetMode};

use crate::base64;

/// A buffer big enough for any decoded base64 key.
pub type KeyBuf = [u8; base64::MAX_DECODED_KEY];

/// A key as sent: plain, or base64 text when the request carried the `b` flag.
/// Base64 keys were checked to decode while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<'a> {
    raw: &'a [u8],
    base64: bool,
}

impl<'a> Key<'a> {
    /// A plain key.
    pub fn plain(raw: &'a [u8]) -> Self {
        Key { raw, base64: false }
    }

    /// A base64 key; `raw` must decode (see [`crate::base64::validate`]).
    pub fn base64(raw: &'a [u8]) -> Self {
        Key { raw, base64: true }
    }

    /// The bytes as they were on the wire.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the wire form is base64.
    pub fn is_base64(&self) -> bool {
        self.base64
    }

    /// The key bytes the store should use: the raw key, or its decoding written
    /// into `buf` (no allocation).
    pub fn decode<'b>(&self, buf: &'b mut KeyBuf) -> &'b [u8]
    where
        'a: 'b,
    {
        if !self.base64 {
            return self.raw;
        }
        let n = base64::decode(self.raw, buf).unwrap_or(0);
        &buf[..n]
    }
}

/// Append ` k<key>` (and ` b` for binary keys, base64-encoding them), as memcached's
/// `META_KEY` does. `key` is the stored (decoded) key.
pub(crate) fn put_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64::encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// ` k…` for a request key (used on misses, where no item supplies the key).
pub(crate) fn put_request_key(out: &mut Vec<u8>, key: &Key<'_>) {
    let mut buf = [0u8; base64::MAX_DECODED_KEY];
    let decoded = key.decode(&mut buf);
    put_key(out, decoded, key.is_base64());
}

/// Append ` O<opaque>` and ` k<key>` in request order: the echo every meta reply
/// carries when nothing else is known.
pub(crate) fn put_echo(out: &mut Vec<u8>, flags: &MetaFlags<'_>, key: &Key<'_>) {
    for t in flags.raw_tokens() {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => put_request_key(out, key),
            _ => {}
        }
    }
}

#[inline]
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}
