//! Byte sizes written as numbers or with a k/m/g suffix ("64k", "1m"), as
//! memcached's -I accepts them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let (digits, shift) = match t.as_bytes().last().map(u8::to_ascii_lowercase) {
            Some(b'k') => (&t[..t.len() - 1], 10),
            Some(b'm') => (&t[..t.len() - 1], 20),
            Some(b'g') => (&t[..t.len() - 1], 30),
            _ => (t, 0),
        };
        let n: u64 = digits
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a size (write e.g. 4096, 64k, 1m)"))?;
        n.checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match () {
            _ if n >= 1 << 30 && n.is_multiple_of(1 << 30) => write!(f, "{}g", n >> 30),
            _ if n >= 1 << 20 && n.is_multiple_of(1 << 20) => write!(f, "{}m", n >> 20),
            _ if n >= 1 << 10 && n.is_multiple_of(1 << 10) => write!(f, "{}k", n >> 10),
            _ => write!(f, "{n}"),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes_and_prints_them_back() {
        for (text, bytes, shown) in [
            ("4096", 4096, "4k"),
            ("64k", 65536, "64k"),
            ("1m", 1 << 20, "1m"),
            ("1M", 1 << 20, "1m"),
            ("2g", 2 << 30, "2g"),
            ("1000", 1000, "1000"),
        ] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.0, bytes, "{text}");
            assert_eq!(size.to_string(), shown);
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "k", "12q", "-1", "1.5m", "99999999999999999999g"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
