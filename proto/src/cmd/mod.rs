//! The classic text commands, one file per family: request type, parse, encode
//! and the family's replies.

pub mod admin;
pub mod arith;
pub mod delete;
pub mod get;
pub mod stats;
pub mod store;
pub mod touch;

pub use arith::{Arith, ArithCmd};
pub use delete::Delete;
pub use get::{Get, GetKind, Keys};
pub use stats::Stats;
pub use store::{Store, StoreCmd};
pub use touch::Touch;

use crate::meta::put_u64;

/// Append ` <n>`.
#[inline]
pub(crate) fn put_sp_u64(out: &mut Vec<u8>, n: u64) {
    out.push(b' ');
    put_u64(out, n);
}

/// Append ` <n>` for a signed number.
#[inline]
pub(crate) fn put_sp_i64(out: &mut Vec<u8>, n: i64) {
    out.push(b' ');
    crate::meta::put_i64(out, n);
}

/// `noreply` suffix for request encoders.
#[inline]
pub(crate) fn put_noreply(out: &mut Vec<u8>, noreply: bool) {
    if noreply {
        out.extend_from_slice(b" noreply");
    }
}
