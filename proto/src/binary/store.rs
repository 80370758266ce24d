//! set add replace (+q), append prepend (+q): their length rules and decoding.
//!
//! Request bodies: set/add/replace = flags (4) ‖ expiration (4) ‖ key ‖ value;
//! append/prepend = key ‖ value. The header's CAS, when not 0, makes the write a
//! compare-and-swap. A stored item is answered with [`super::response::encode_ok`]
//! carrying its new CAS.

use super::response::Status;
use super::{BinOp, Body, Check, HEADER_LEN, Header, Opcode, be32};
use crate::Limits;

/// How set/add/replace treat an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
}

impl StoreMode {
    /// (loud, quiet) opcodes.
    pub(crate) fn opcodes(self) -> (Opcode, Opcode) {
        match self {
            StoreMode::Set => (Opcode::Set, Opcode::SetQ),
            StoreMode::Add => (Opcode::Add, Opcode::AddQ),
            StoreMode::Replace => (Opcode::Replace, Opcode::ReplaceQ),
        }
    }

    /// The status memcached sends when the store refuses to write (memcached's
    /// `complete_update_bin`): an existing key for add, a missing one for
    /// replace, and `NotStored` for set.
    pub fn not_stored_status(self) -> Status {
        match self {
            StoreMode::Set => Status::NotStored,
            StoreMode::Add => Status::KeyExists,
            StoreMode::Replace => Status::NotFound,
        }
    }
}

/// Which end of the old value append/prepend write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConcatMode {
    Append,
    Prepend,
}

impl ConcatMode {
    pub(crate) fn opcodes(self) -> (Opcode, Opcode) {
        match self {
            ConcatMode::Append => (Opcode::Append, Opcode::AppendQ),
            ConcatMode::Prepend => (Opcode::Prepend, Opcode::PrependQ),
        }
    }
}

/// memcached: 8 bytes of extras, a key, any value. A value over the item size
/// limit is refused as `TooLarge` once the key is in, and swallowed; a refused
/// `set` also unlinks the key (memcached's `process_bin_update`).
pub(crate) fn check_store<'a>(h: &Header, opcode: Opcode, limits: &Limits) -> Check<'a> {
    if h.extlen != 8 || h.keylen == 0 {
        return h.einval();
    }
    too_large(h, limits, matches!(opcode, Opcode::Set | Opcode::SetQ))
}

/// memcached: no extras, a key, any value (even an empty one).
pub(crate) fn check_concat<'a>(h: &Header, limits: &Limits) -> Check<'a> {
    if h.extlen != 0 || h.keylen == 0 {
        return h.einval();
    }
    too_large(h, limits, false)
}

fn too_large<'a>(h: &Header, limits: &Limits, unlink: bool) -> Check<'a> {
    let vlen = h.vlen();
    if vlen <= limits.max_item_size {
        return Check::Body;
    }
    let need = HEADER_LEN + h.extlen + h.keylen;
    Check::RefuseAt {
        need,
        inv: h.refuse(Status::TooLarge, need, vlen, false),
        unlink,
    }
}

pub(crate) fn decode_store<'a>(opcode: Opcode, b: &Body<'a>) -> BinOp<'a> {
    let mode = match opcode {
        Opcode::Set | Opcode::SetQ => StoreMode::Set,
        Opcode::Add | Opcode::AddQ => StoreMode::Add,
        _ => StoreMode::Replace,
    };
    BinOp::Store {
        mode,
        key: b.key,
        flags: be32(&b.extras[..4]),
        exptime: be32(&b.extras[4..]),
        value: b.value,
    }
}

pub(crate) fn decode_concat<'a>(opcode: Opcode, b: &Body<'a>) -> BinOp<'a> {
    let mode = match opcode {
        Opcode::Append | Opcode::AppendQ => ConcatMode::Append,
        _ => ConcatMode::Prepend,
    };
    BinOp::Concat {
        mode,
        key: b.key,
        value: b.value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::{BinParse, BinRequest, parse};

    #[test]
    fn set_extras_are_flags_then_exptime() {
        let mut wire = Vec::new();
        let op = BinOp::Store {
            mode: StoreMode::Add,
            key: b"k",
            flags: 0xa0b0_c0d0,
            exptime: 300,
            value: b"v",
        };
        BinRequest::new(op, true, 1, 9).encode(&mut wire);
        assert_eq!(wire[1], Opcode::AddQ as u8);
        assert_eq!(
            &wire[HEADER_LEN..HEADER_LEN + 8],
            b"\xa0\xb0\xc0\xd0\0\0\x01\x2c"
        );
        let BinParse::Complete { request, .. } = parse(&wire, &Limits::default()) else {
            panic!("{wire:?}")
        };
        assert_eq!((request.op, request.cas, request.quiet), (op, 9, true));
    }

    #[test]
    fn the_limit_is_inclusive() {
        let limits = Limits {
            max_item_size: 4,
            ..Limits::default()
        };
        for (value, fits) in [(&b"1234"[..], true), (b"12345", false)] {
            let mut wire = Vec::new();
            let op = BinOp::Concat {
                mode: ConcatMode::Prepend,
                key: b"k",
                value,
            };
            BinRequest::new(op, false, 0, 0).encode(&mut wire);
            let got = parse(&wire, &limits);
            assert_eq!(matches!(got, BinParse::Complete { .. }), fits, "{got:?}");
        }
    }
}
