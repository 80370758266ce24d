//! Key names: `k` followed by the key's index, zero-padded to the key size,
//! so every key of the space has the same length and is unique.

/// The shortest key size that keeps every index of a space of `keys` unique.
pub fn min_key_size(keys: u64) -> usize {
    1 + digits(keys.saturating_sub(1))
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Appends the name of key `index` (exactly `size` bytes) to `out`.
/// `size` must be at least [`min_key_size`] of the key space.
#[inline]
pub fn write_key(out: &mut Vec<u8>, index: u64, size: usize) {
    let start = out.len();
    out.resize(start + size, b'0');
    let key = &mut out[start..];
    key[0] = b'k';
    let mut n = index;
    let mut pos = size;
    loop {
        pos -= 1;
        key[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || pos == 1 {
            break;
        }
    }
}

/// The index a key name encodes (the inverse of [`write_key`]).
pub fn parse_key(key: &[u8]) -> Option<u64> {
    let digits = key.strip_prefix(b"k")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_width_and_round_trip() {
        let mut out = Vec::new();
        write_key(&mut out, 42, 8);
        assert_eq!(out, b"k0000042");
        assert_eq!(parse_key(&out), Some(42));
        out.clear();
        write_key(&mut out, 0, 2);
        assert_eq!(out, b"k0");
        assert_eq!(min_key_size(1), 2);
        assert_eq!(min_key_size(10), 2);
        assert_eq!(min_key_size(11), 3);
        assert_eq!(min_key_size(1_000_000), 7);
        out.clear();
        write_key(&mut out, 999_999, min_key_size(1_000_000));
        assert_eq!(out, b"k999999");
    }
}
