//! SASL list-mechs, auth and step: length rules and the success replies.
//!
//! Request bodies: list-mechs is empty; auth and step carry the mechanism name
//! as the key and the client's data as the value. memcached without `-S`
//! answers all three `UnknownCommand`; with SASL, a mechanism name over 32
//! bytes is `InvalidArguments` (the engine checks that: it knows whether SASL is on).

use super::response::{ResponseHeader, Status, encode_response};
use super::{Check, HEADER_LEN, Header, Opcode, ReplyTo};
use crate::Limits;

pub(crate) fn check<'a>(h: &Header, opcode: Opcode, limits: &Limits) -> Check<'a> {
    if opcode == Opcode::SaslListMechs {
        return if h.extlen == 0 && h.keylen == 0 && h.bodylen == 0 {
            Check::Body
        } else {
            h.einval()
        };
    }
    if h.extlen != 0 || h.keylen == 0 {
        return h.einval();
    }
    let vlen = h.vlen();
    if vlen <= limits.max_item_size {
        return Check::Body;
    }
    // memcached reads the data into an item; one too large to allocate is
    // `OutOfMemory`, its bytes swallowed, the connection kept.
    let need = HEADER_LEN + h.keylen;
    Check::RefuseAt {
        need,
        inv: h.refuse(Status::OutOfMemory, need, vlen, false),
        unlink: false,
    }
}

/// The mechanisms, space-separated, as the value.
pub fn encode_mechs(out: &mut Vec<u8>, to: ReplyTo, mechs: &str) {
    let h = ResponseHeader::new(to, Status::Success, 0);
    encode_response(out, &h, &[], &[], mechs.as_bytes());
}

/// Authentication succeeded: memcached's "Authenticated" value.
pub fn encode_authenticated(out: &mut Vec<u8>, to: ReplyTo) {
    let h = ResponseHeader::new(to, Status::Success, 0);
    encode_response(out, &h, &[], &[], b"Authenticated");
}
