//! quit(q) flush(q) noop version stat verbosity: length rules and the version
//! and stat replies.
//!
//! Request bodies: flush = nothing, or a 4-byte delay; stat = an optional group
//! name as the key; verbosity = a 4-byte level; the others are empty.

use super::response::{ResponseHeader, Status, encode_response};
use super::{Check, Header, Opcode, ReplyTo};

pub(crate) fn check<'a>(h: &Header, opcode: Opcode) -> Check<'a> {
    let ok = match opcode {
        Opcode::Flush | Opcode::FlushQ => {
            h.keylen == 0 && h.bodylen == h.extlen && (h.extlen == 0 || h.extlen == 4)
        }
        // memcached checks only the extras; a surplus body would be misread as
        // the next request, so we refuse it.
        Opcode::Stat => h.extlen == 0 && h.bodylen == h.keylen,
        // Not in memcached 1.6.18; the spec's layout.
        Opcode::Verbosity => h.extlen == 4 && h.keylen == 0 && h.bodylen == 4,
        _ => h.extlen == 0 && h.keylen == 0 && h.bodylen == 0,
    };
    if ok { Check::Body } else { h.einval() }
}

/// The version string as the value.
pub fn encode_version(out: &mut Vec<u8>, to: ReplyTo, version: &str) {
    let h = ResponseHeader::new(to, Status::Success, 0);
    encode_response(out, &h, &[], &[], version.as_bytes());
}

/// One stat: the name as the key, the value as the value, CAS 0 (memcached's
/// `append_bin_stats`).
pub fn encode_stat(out: &mut Vec<u8>, opaque: u32, name: &[u8], value: &[u8]) {
    let h = ResponseHeader {
        opcode: Opcode::Stat as u8,
        status: Status::Success,
        opaque,
        cas: 0,
    };
    encode_response(out, &h, &[], name, value);
}

/// The empty stat that ends a stats reply.
pub fn encode_stats_end(out: &mut Vec<u8>, opaque: u32) {
    encode_stat(out, opaque, &[], &[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::HEADER_LEN;

    #[test]
    fn stat_pair_and_end() {
        let mut out = Vec::new();
        encode_stat(&mut out, 4, b"pid", b"123");
        encode_stats_end(&mut out, 4);
        assert_eq!(out.len(), 2 * HEADER_LEN + 6);
        assert_eq!(&out[..4], &[0x81, 0x10, 0, 3]);
        assert_eq!(&out[HEADER_LEN..HEADER_LEN + 6], b"pid123");
        assert_eq!(&out[HEADER_LEN + 6..HEADER_LEN + 10], &[0x81, 0x10, 0, 0]);
        assert_eq!(&out[HEADER_LEN + 18..HEADER_LEN + 22], &4u32.to_be_bytes());
    }
}
