//! Number tokens read exactly as memcached reads them.
//!
//! memcached parses with `strtol`/`strtoul`/`strtoull` and its `safe_strto*`
//! wrappers, so a leading sign or whitespace is allowed, anything after the digits
//! must begin with whitespace, and 32-bit results are the low bits of a 64-bit
//! parse (`flags 4294967297` stores 1, checked against memcached 1.6.18). Clients
//! rely on none of this on purpose, but a cache that answers differently from
//! memcached on the same bytes breaks the rule that it is a drop-in.

/// C `isspace` in the "C" locale.
#[inline]
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtoull`-style scan: returns (magnitude wrapped by sign, negative?, rest) or
/// `None` when no digit follows or the magnitude exceeds 64 bits (ERANGE).
#[inline]
fn scan(tok: &[u8]) -> Option<(u64, bool, &[u8])> {
    let mut i = 0;
    while i < tok.len() && is_c_space(tok[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < tok.len() && (tok[i] == b'+' || tok[i] == b'-') {
        neg = tok[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while i < tok.len() && tok[i].is_ascii_digit() {
        let d = u64::from(tok[i] - b'0');
        match v.checked_mul(10).and_then(|x| x.checked_add(d)) {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start || overflow {
        return None;
    }
    Some((v, neg, &tok[i..]))
}

/// What may follow the digits: nothing, or whitespace and then anything.
#[inline]
fn tail_ok(rest: &[u8]) -> bool {
    rest.first().is_none_or(|&b| is_c_space(b))
}

/// `safe_strtoull`: unsigned 64-bit; a negative result is refused only when it
/// lands above `i64::MAX` (as memcached does).
pub(crate) fn strtoull(tok: &[u8]) -> Option<u64> {
    let (mag, neg, rest) = scan(tok)?;
    if !tail_ok(rest) {
        return None;
    }
    let v = if neg { mag.wrapping_neg() } else { mag };
    if (v as i64) < 0 && tok.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// `safe_strtoul` on a 64-bit host: [`strtoull`] truncated to 32 bits.
pub(crate) fn strtoul(tok: &[u8]) -> Option<u32> {
    strtoull(tok).map(|v| v as u32)
}

/// `strtoll` with ERANGE for results outside `i64`.
pub(crate) fn strtoll(tok: &[u8]) -> Option<i64> {
    let (mag, neg, rest) = scan(tok)?;
    if !tail_ok(rest) {
        return None;
    }
    if neg {
        if mag > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((mag as i64).wrapping_neg())
    } else {
        i64::try_from(mag).ok()
    }
}

/// `safe_strtol` on a 64-bit host: [`strtoll`] truncated to 32 bits.
pub(crate) fn strtol(tok: &[u8]) -> Option<i32> {
    strtoll(tok).map(|v| v as i32)
}

/// `safe_strtod`: the number part up to whitespace, read by Rust's float parser.
/// (C's `strtod` also takes hex floats; no memcached client sends those.)
pub(crate) fn strtod(tok: &[u8]) -> Option<f64> {
    let mut i = 0;
    while i < tok.len() && is_c_space(tok[i]) {
        i += 1;
    }
    let end = tok[i..]
        .iter()
        .position(|&b| is_c_space(b))
        .map_or(tok.len(), |p| i + p);
    std::str::from_utf8(&tok[i..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // (token, strtoull, strtoul, strtol) — behaviour checked against memcached
        // 1.6.18 through `set k <flags> <exptime> <bytes>` and `incr`.
        type Row = (&'static [u8], Option<u64>, Option<u32>, Option<i32>);
        let rows: &[Row] = &[
            (b"0", Some(0), Some(0), Some(0)),
            (b"+1", Some(1), Some(1), Some(1)),
            (b"01", Some(1), Some(1), Some(1)),
            (b"-0", Some(0), Some(0), Some(0)),
            (b"-1", None, None, Some(-1)),
            (b"abc", None, None, None),
            (b"", None, None, None),
            (b"1x", None, None, None),
            (b"0x1", None, None, None),
            (b"1\tjunk", Some(1), Some(1), Some(1)),
            (b"\t7", Some(7), Some(7), Some(7)),
            (b"4294967296", Some(4294967296), Some(0), Some(0)),
            (b"4294967297", Some(4294967297), Some(1), Some(1)),
            (
                b"18446744073709551615",
                Some(u64::MAX),
                Some(u32::MAX),
                None,
            ),
            (b"18446744073709551616", None, None, None),
            (b"-18446744073709551615", Some(1), Some(1), None),
            (
                b"99999999999",
                Some(99999999999),
                Some(1215752191),
                Some(1215752191),
            ),
            (
                b"2147483648",
                Some(2147483648),
                Some(2147483648),
                Some(i32::MIN),
            ),
            (b"+", None, None, None),
            (b"-", None, None, None),
        ];
        for (tok, ull, ul, l) in rows {
            assert_eq!(
                strtoull(tok),
                *ull,
                "strtoull {:?}",
                String::from_utf8_lossy(tok)
            );
            assert_eq!(
                strtoul(tok),
                *ul,
                "strtoul {:?}",
                String::from_utf8_lossy(tok)
            );
            assert_eq!(strtol(tok), *l, "strtol {:?}", String::from_utf8_lossy(tok));
        }
    }

    #[test]
    fn doubles() {
        assert_eq!(strtod(b"0.5"), Some(0.5));
        assert_eq!(strtod(b"2"), Some(2.0));
        assert_eq!(strtod(b"abc"), None);
        assert_eq!(strtod(b"1.5x"), None);
    }
}
