//! memcached protocol codecs for corecache: bytes in, typed requests out; typed
//! replies in, bytes out. No I/O, no clock, no allocation on the common path.
//!
//! ```text
//!   socket bytes ──► parse(buf, &limits) ──► Parse::Complete { Request<'buf>, consumed }
//!                                       ├──► Parse::Incomplete { more }   (read, then retry)
//!                                       └──► Parse::Invalid(Invalid)      (reply, resync)
//!   engine outcome ──► reply::encode_*(&mut out, …)  ──► socket bytes
//!   (client side: Request::encode / client::parse_reply, for the loadgen and tests)
//!   UDP: udp::UdpHeader, udp::request_payload, udp::split_reply
//! ```
//!
//! Module layout (one file per command family, each with its request type,
//! parse, encode and replies; a family's parser returns its own type and never
//! sees [`Request`], which only `request` builds):
//!
//! | module | what |
//! |---|---|
//! | [`request`] | [`Request`] (its keys: [`Request::keys`]), [`Parse`], the [`parse`] entry point: frames, dispatches, wraps |
//! | `line` | framing: the line-length guard, `\r\n`/`\n`, memcached's tokenizer |
//! | `text` | what every text family parses with: the context, the data block, the family's result |
//! | `verb` | the command words in one table, for the dispatch and for `peek_keys` |
//! | `num` | numbers read as memcached's `safe_strto*` read them |
//! | [`cmd::get`] | `get gets gat gats`, `VALUE`/`END` replies |
//! | [`cmd::store`] | `set add replace append prepend cas` |
//! | [`cmd::delete`], [`cmd::arith`], [`cmd::touch`] | `delete`, `incr decr`, `touch` |
//! | [`cmd::stats`] | `stats [args]`, `STAT` lines |
//! | [`cmd::admin`] | `flush_all version verbosity quit shutdown cache_memlimit slabs lru_crawler lru watch misbehave debugtime` |
//! | [`meta`] | `mg ms md ma mn me`, [`meta::MetaFlags`], meta reply encoders |
//! | [`base64`] | base64 keys with memcached's decoding rules |
//! | [`error`] | [`ErrorReply`] (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`) and [`Invalid`] |
//! | [`reply`] | server-side reply encoders gathered in one place |
//! | [`client`] | client-side reply parser |
//! | [`udp`] | the 8-byte UDP frame header and reply splitting |
//! | [`binary`] | the binary protocol: [`binary::parse`], response encoders, the client side |
//! | `peek` | [`peek_keys`]: the keys of a batch of requests, without parsing them (prefetch hints) |
//!
//! The reference is memcached 1.6's protocol.txt and its `proto_text.c`; where
//! they disagree with the installed memcached 1.6.18 on a byte, the tests say
//! which one was checked. docs/protocol.md lists what is supported and every
//! deliberate deviation.

pub mod base64;
pub mod binary;
pub mod client;
pub mod cmd;
pub mod error;
mod limits;
mod line;
pub mod meta;
mod num;
mod peek;
pub mod reply;
pub mod request;
mod text;
pub mod udp;
mod verb;

pub use error::{ClientError, ErrorMessage, ErrorReply, Invalid, ServerError};
pub use limits::{Limits, MAX_KEY_LEN};
pub use meta::{Key, MetaFlag, MetaFlags};
pub use peek::peek_keys;
pub use request::{Parse, Request, parse};

/// A key as memcached accepts it: not longer than the limit (and, when asked,
/// free of control characters). Spaces cannot occur: they separate tokens.
#[inline]
pub(crate) fn check_key(key: &[u8], limits: &Limits) -> bool {
    key.len() <= limits.max_key_len
        && (!limits.reject_control_keys || !key.iter().any(|&b| b < 0x20 || b == 0x7f))
}
