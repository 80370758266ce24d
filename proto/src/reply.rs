//! Server-side reply encoders. Each appends to the caller's buffer; none
//! allocates beyond the buffer's amortised growth. The engine never writes wire
//! bytes itself: it calls these with typed outcomes.
//!
//! Classic commands: the engine sends nothing when the request had `noreply`
//! ([`crate::Request::noreply`]). Meta commands: the `encode_m*` functions apply
//! `q` themselves, per outcome, as memcached does.

pub use crate::cmd::admin::AdminReply;
pub use crate::cmd::get::{encode_end, encode_value};
pub use crate::cmd::stats::{encode_stat, encode_stat_fmt, encode_stat_i64, encode_stat_u64};
pub use crate::error::ErrorReply;
pub use crate::meta::arith::encode_ma;
pub use crate::meta::delete::encode_md;
pub use crate::meta::get::{encode_me, encode_mg, encode_mn};
pub use crate::meta::set::encode_ms;

use crate::meta::put_u64;

/// Fixed status lines of the classic protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    End,
    /// The answer to `stats reset`.
    Reset,
}

impl Status {
    /// The line without `\r\n`.
    pub fn line(self) -> &'static [u8] {
        match self {
            Status::Stored => b"STORED",
            Status::NotStored => b"NOT_STORED",
            Status::Exists => b"EXISTS",
            Status::NotFound => b"NOT_FOUND",
            Status::Deleted => b"DELETED",
            Status::Touched => b"TOUCHED",
            Status::Ok => b"OK",
            Status::End => b"END",
            Status::Reset => b"RESET",
        }
    }

    /// Append the line.
    #[inline]
    pub fn encode(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line());
        out.extend_from_slice(b"\r\n");
    }

    /// Every status, for tests.
    pub const ALL: [Status; 9] = [
        Status::Stored,
        Status::NotStored,
        Status::Exists,
        Status::NotFound,
        Status::Deleted,
        Status::Touched,
        Status::Ok,
        Status::End,
        Status::Reset,
    ];
}

/// Append `<n>\r\n`, the reply to `incr`/`decr`.
#[inline]
pub fn encode_number(out: &mut Vec<u8>, n: u64) {
    put_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Append `VERSION <version>\r\n`.
pub fn encode_version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}
