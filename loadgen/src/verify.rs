//! `--verify` values: each value carries the version that wrote it and a
//! checksum binding that version, the key and every value byte, so a get hit
//! that returns another key's value, a truncated value or flipped bytes is
//! counted as corruption instead of passing as a fast reply.
//!
//! ```text
//!  0               16              32                         len
//! +---------------+---------------+----------------------------+
//! | version (hex) | xxh3 (hex)    | filler: a..z from version  |
//! +---------------+---------------+----------------------------+
//!   xxh3 = xxh3_64(key || version as 8 LE bytes || filler)
//! ```
//! Hex keeps the value printable, which makes a corrupted value readable in
//! a packet capture or a `get` typed by hand.

use xxhash_rust::xxh3::Xxh3;

/// Bytes of header every verified value starts with; the smallest value size.
pub const HEADER: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("value of {len} bytes is shorter than the {HEADER}-byte verify header")]
    TooShort { len: usize },
    #[error("verify header is not hexadecimal")]
    BadHeader,
    #[error("checksum mismatch: value does not belong to this key or was altered")]
    Mismatch,
}

fn checksum(key: &[u8], version: u64, filler: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(key);
    h.update(&version.to_le_bytes());
    h.update(filler);
    h.digest()
}

fn put_hex(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

fn get_hex(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

/// Appends a verified value of `len` (>= [`HEADER`]) bytes for `key`.
pub fn write_value(out: &mut Vec<u8>, key: &[u8], version: u64, len: usize) {
    debug_assert!(len >= HEADER);
    let start = out.len();
    out.resize(start + len, 0);
    let value = &mut out[start..];
    for (i, b) in value[HEADER..].iter_mut().enumerate() {
        *b = b'a' + ((version as usize + i) % 26) as u8;
    }
    let sum = checksum(key, version, &value[HEADER..]);
    put_hex(&mut value[..16], version);
    put_hex(&mut value[16..HEADER], sum);
}

/// Checks a value returned for `key`.
pub fn check_value(key: &[u8], value: &[u8]) -> Result<(), VerifyError> {
    if value.len() < HEADER {
        return Err(VerifyError::TooShort { len: value.len() });
    }
    let version = get_hex(&value[..16]).ok_or(VerifyError::BadHeader)?;
    let sum = get_hex(&value[16..HEADER]).ok_or(VerifyError::BadHeader)?;
    if checksum(key, version, &value[HEADER..]) != sum {
        return Err(VerifyError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_value_checks_for_its_key_only() {
        let mut v = Vec::new();
        write_value(&mut v, b"k0001", 77, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(check_value(b"k0001", &v), Ok(()));
        assert_eq!(check_value(b"k0002", &v), Err(VerifyError::Mismatch));
    }

    #[test]
    fn every_single_byte_flip_is_caught() {
        let mut v = Vec::new();
        write_value(&mut v, b"key", 5, 64);
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x01;
            assert!(check_value(b"key", &bad).is_err(), "flip at {i} passed");
        }
    }

    #[test]
    fn truncation_and_short_values_are_caught() {
        let mut v = Vec::new();
        write_value(&mut v, b"key", 1, 40);
        assert_eq!(check_value(b"key", &v[..39]), Err(VerifyError::Mismatch));
        assert_eq!(
            check_value(b"key", &v[..10]),
            Err(VerifyError::TooShort { len: 10 })
        );
        assert_eq!(
            check_value(b"key", &[b'z'; 40]),
            Err(VerifyError::BadHeader)
        );
    }

    #[test]
    fn the_smallest_value_is_all_header() {
        let mut v = Vec::new();
        write_value(&mut v, b"key", u64::MAX, HEADER);
        assert_eq!(&v[..16], b"ffffffffffffffff");
        assert_eq!(check_value(b"key", &v), Ok(()));
    }
}
