//! get getq getk getkq, gat gatq gatk gatkq, touch: their length rules and replies.
//!
//! Request bodies: get = key; gat and touch = 4-byte expiration ‖ key.
//! A hit carries the item's flags as 4 bytes of extras and its CAS; getk and
//! gatk add the key. A touch hit carries the flags and no value.

use super::response::{ResponseHeader, Status, encode_response, encode_status};
use super::{Check, Header, ReplyTo};

/// memcached: no extras, a key, nothing else.
pub(crate) fn check_get<'a>(h: &Header) -> Check<'a> {
    if h.extlen == 0 && h.keylen > 0 && h.bodylen == h.keylen {
        Check::Body
    } else {
        h.einval()
    }
}

/// memcached: 4 bytes of extras and a key. memcached does not check the body
/// length here; we refuse a surplus rather than misread it as the next request.
pub(crate) fn check_touch<'a>(h: &Header) -> Check<'a> {
    if h.extlen == 4 && h.keylen > 0 && h.bodylen == 4 + h.keylen {
        Check::Body
    } else {
        h.einval()
    }
}

/// A get or gat hit: flags, the item's CAS, the key when the request asked for
/// it ([`super::BinRequest::returns_key`]), the value.
pub fn encode_hit(
    out: &mut Vec<u8>,
    to: ReplyTo,
    flags: u32,
    cas: u64,
    key: Option<&[u8]>,
    value: &[u8],
) {
    let h = ResponseHeader::new(to, Status::Success, cas);
    encode_response(out, &h, &flags.to_be_bytes(), key.unwrap_or(&[]), value);
}

/// A get, gat or touch miss: `NotFound` with the key as the whole body for
/// getk/gatk (no message), else with memcached's message "Not found".
/// Quiet gets send nothing on a miss: the caller does not call this.
pub fn encode_miss(out: &mut Vec<u8>, to: ReplyTo, key: Option<&[u8]>) {
    match key {
        Some(key) if !key.is_empty() => {
            let h = ResponseHeader::new(to, Status::NotFound, 0);
            encode_response(out, &h, &[], key, &[]);
        }
        _ => encode_status(out, to, Status::NotFound),
    }
}

/// A touch hit: the flags as extras, the item's CAS, no key and no value.
pub fn encode_touched(out: &mut Vec<u8>, to: ReplyTo, flags: u32, cas: u64) {
    let h = ResponseHeader::new(to, Status::Success, cas);
    encode_response(out, &h, &flags.to_be_bytes(), &[], &[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::HEADER_LEN;

    const TO: ReplyTo = ReplyTo {
        opcode: 0x0c,
        opaque: 0xdead_beef,
    };

    #[test]
    fn hit_with_key() {
        let mut out = Vec::new();
        encode_hit(&mut out, TO, 0x0102_0304, 77, Some(b"key"), b"value");
        assert_eq!(out[4], 4, "extras length");
        assert_eq!(&out[2..4], &3u16.to_be_bytes());
        assert_eq!(&out[8..12], &12u32.to_be_bytes());
        assert_eq!(&out[12..16], &0xdead_beefu32.to_be_bytes());
        assert_eq!(&out[16..24], &77u64.to_be_bytes());
        assert_eq!(&out[HEADER_LEN..], b"\x01\x02\x03\x04keyvalue");
    }

    #[test]
    fn misses() {
        let mut out = Vec::new();
        encode_miss(&mut out, TO, Some(b"key"));
        assert_eq!(&out[6..8], &1u16.to_be_bytes());
        assert_eq!(&out[2..4], &3u16.to_be_bytes());
        assert_eq!(&out[HEADER_LEN..], b"key");
        out.clear();
        encode_miss(&mut out, TO, None);
        assert_eq!(&out[2..4], &0u16.to_be_bytes());
        assert_eq!(&out[HEADER_LEN..], b"Not found");
    }

    #[test]
    fn touched_has_flags_only() {
        let mut out = Vec::new();
        encode_touched(&mut out, TO, 9, 5);
        assert_eq!(out.len(), HEADER_LEN + 4);
        assert_eq!(&out[HEADER_LEN..], &9u32.to_be_bytes());
    }
}
