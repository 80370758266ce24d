//! increment decrement (+q): length rules, decoding, the counter reply.
//!
//! Request body: delta (8) ‖ initial value (8) ‖ expiration (4) ‖ key. A miss
//! creates the counter at `initial` (the delta is not applied) unless the
//! expiration is [`NO_CREATE`]. The reply's value is the new counter as 8
//! big-endian bytes, with the item's CAS.

use super::response::{ResponseHeader, Status, encode_response};
use super::{BinOp, Body, Check, Header, NO_CREATE, Opcode, ReplyTo, be32, be64};

/// Which way the counter moves. Decrements stop at 0; increments wrap at 2^64,
/// as memcached's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithMode {
    Increment,
    Decrement,
}

impl ArithMode {
    pub(crate) fn opcodes(self) -> (Opcode, Opcode) {
        match self {
            ArithMode::Increment => (Opcode::Increment, Opcode::IncrementQ),
            ArithMode::Decrement => (Opcode::Decrement, Opcode::DecrementQ),
        }
    }
}

/// An increment or decrement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arith<'a> {
    pub mode: ArithMode,
    pub key: &'a [u8],
    pub delta: u64,
    /// The value a missing counter is created with.
    pub initial: u64,
    /// The expiration of a created counter; [`NO_CREATE`]: a miss is `NotFound`.
    pub exptime: u32,
}

impl Arith<'_> {
    /// Whether a miss creates the counter.
    pub fn creates(&self) -> bool {
        self.exptime != NO_CREATE
    }
}

/// memcached: 20 bytes of extras, a key, nothing else.
pub(crate) fn check<'a>(h: &Header) -> Check<'a> {
    if h.extlen == 20 && h.keylen > 0 && h.bodylen == 20 + h.keylen {
        Check::Body
    } else {
        h.einval()
    }
}

pub(crate) fn decode<'a>(opcode: Opcode, b: &Body<'a>) -> BinOp<'a> {
    let mode = match opcode {
        Opcode::Increment | Opcode::IncrementQ => ArithMode::Increment,
        _ => ArithMode::Decrement,
    };
    BinOp::Arith(Arith {
        mode,
        key: b.key,
        delta: be64(&b.extras[..8]),
        initial: be64(&b.extras[8..16]),
        exptime: be32(&b.extras[16..]),
    })
}

/// The new counter value (8 bytes, no extras) with the item's CAS.
pub fn encode_counter(out: &mut Vec<u8>, to: ReplyTo, value: u64, cas: u64) {
    let h = ResponseHeader::new(to, Status::Success, cas);
    encode_response(out, &h, &[], &[], &value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use crate::binary::{BinParse, BinRequest, HEADER_LEN, parse};

    #[test]
    fn extras_layout_and_no_create() {
        let a = Arith {
            mode: ArithMode::Decrement,
            key: b"n",
            delta: 1,
            initial: 2,
            exptime: NO_CREATE,
        };
        assert!(!a.creates());
        assert!(Arith { exptime: 0, ..a }.creates());
        let mut wire = Vec::new();
        BinRequest::new(BinOp::Arith(a), false, 0, 0).encode(&mut wire);
        assert_eq!(wire[4], 20);
        assert_eq!(
            &wire[HEADER_LEN..],
            b"\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x02\xff\xff\xff\xffn"
        );
        let BinParse::Complete { request, .. } = parse(&wire, &Limits::default()) else {
            panic!()
        };
        assert_eq!(request.op, BinOp::Arith(a));
    }

    #[test]
    fn counter_reply() {
        let mut out = Vec::new();
        let to = ReplyTo {
            opcode: 0x05,
            opaque: 3,
        };
        encode_counter(&mut out, to, 15, 8);
        assert_eq!(out.len(), HEADER_LEN + 8);
        assert_eq!(&out[HEADER_LEN..], &15u64.to_be_bytes());
        assert_eq!(&out[16..24], &8u64.to_be_bytes());
    }
}
