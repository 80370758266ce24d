//! Parsers for the command line's compact value syntaxes: durations
//! (`10s`, `500ms`), core lists (`2-5,7`), value sizes (`100`, `64-1024`,
//! `100:90,1000:10`), ratios (`9:1`) and key distributions (`zipf:0.99`).
//! Each returns a [`SpecError`] that names what was wrong.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("bad duration {0:?}: use e.g. 10s, 500ms, 2m, 1.5s")]
    Duration(String),
    #[error("bad core list {0:?}: use e.g. 1, 2-5 or 0,2,4-7")]
    Cores(String),
    #[error("bad value size {0:?}: use N, MIN-MAX, or SIZE:WEIGHT,SIZE:WEIGHT,...")]
    Sizes(String),
    #[error("bad ratio {0:?}: use GET:SET, e.g. 9:1 (not both zero)")]
    Ratio(String),
    #[error("bad key distribution {0:?}: use uniform or zipf[:SKEW], SKEW >= 0")]
    KeyDist(String),
}

/// `10s`, `250ms`, `3m`, `1.5s`, `100us`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, SpecError> {
    let err = || SpecError::Duration(s.to_string());
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(err()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A list of CPU ids: `3`, `2-5`, `0,2,4-7`. Order is kept, duplicates refused.
pub fn parse_cores(s: &str) -> Result<Vec<usize>, SpecError> {
    let err = || SpecError::Cores(s.to_string());
    let cores = cpus::parse_list(s).map_err(|_| err())?;
    if cores.is_empty() || cpus::has_duplicates(&cores) {
        return Err(err());
    }
    Ok(cores)
}

/// How set values are sized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValueSizes {
    Fixed(usize),
    /// Uniform over MIN..=MAX.
    Uniform(usize, usize),
    /// (size, weight) pairs; a size is drawn with probability weight / sum.
    Weighted(Vec<(usize, u32)>),
}

impl ValueSizes {
    pub fn parse(s: &str) -> Result<ValueSizes, SpecError> {
        let err = || SpecError::Sizes(s.to_string());
        let t = s.trim();
        if t.contains(':') {
            let mut list = Vec::new();
            for item in t.split(',') {
                let (size, weight) = item.split_once(':').ok_or_else(err)?;
                let size: usize = size.trim().parse().map_err(|_| err())?;
                let weight: u32 = weight.trim().parse().map_err(|_| err())?;
                list.push((size, weight));
            }
            if list.iter().all(|&(_, w)| w == 0) {
                return Err(err());
            }
            return Ok(ValueSizes::Weighted(list));
        }
        if let Some((a, b)) = t.split_once('-') {
            let lo: usize = a.trim().parse().map_err(|_| err())?;
            let hi: usize = b.trim().parse().map_err(|_| err())?;
            if lo > hi {
                return Err(err());
            }
            return Ok(ValueSizes::Uniform(lo, hi));
        }
        t.parse().map(ValueSizes::Fixed).map_err(|_| err())
    }

    pub fn min(&self) -> usize {
        match self {
            ValueSizes::Fixed(n) => *n,
            ValueSizes::Uniform(lo, _) => *lo,
            ValueSizes::Weighted(l) => l.iter().filter(|e| e.1 > 0).map(|e| e.0).min().unwrap_or(0),
        }
    }

    pub fn max(&self) -> usize {
        match self {
            ValueSizes::Fixed(n) => *n,
            ValueSizes::Uniform(_, hi) => *hi,
            ValueSizes::Weighted(l) => l.iter().filter(|e| e.1 > 0).map(|e| e.0).max().unwrap_or(0),
        }
    }
}

/// `GET:SET` weights, e.g. `9:1`.
pub fn parse_ratio(s: &str) -> Result<(u32, u32), SpecError> {
    let err = || SpecError::Ratio(s.to_string());
    let (g, st) = s.split_once(':').ok_or_else(err)?;
    let g: u32 = g.trim().parse().map_err(|_| err())?;
    let st: u32 = st.trim().parse().map_err(|_| err())?;
    if g == 0 && st == 0 {
        return Err(err());
    }
    Ok((g, st))
}

/// Key popularity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum KeyDist {
    Uniform,
    /// Zipf with exponent `skew`: rank k is drawn with probability ∝ 1/k^skew.
    Zipf(f64),
}

impl KeyDist {
    pub fn parse(s: &str) -> Result<KeyDist, SpecError> {
        let err = || SpecError::KeyDist(s.to_string());
        match s.trim() {
            "uniform" => Ok(KeyDist::Uniform),
            "zipf" => Ok(KeyDist::Zipf(0.99)),
            t => {
                let skew = t.strip_prefix("zipf:").ok_or_else(err)?;
                let skew: f64 = skew.parse().map_err(|_| err())?;
                if !skew.is_finite() || skew < 0.0 {
                    return Err(err());
                }
                Ok(KeyDist::Zipf(skew))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_cores("1"), Ok(vec![1]));
        assert_eq!(parse_cores("2-5"), Ok(vec![2, 3, 4, 5]));
        assert_eq!(parse_cores("0,2,4-5"), Ok(vec![0, 2, 4, 5]));
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("1,1").is_err());
        assert!(parse_cores("a").is_err());
    }

    #[test]
    fn value_sizes() {
        assert_eq!(ValueSizes::parse("100"), Ok(ValueSizes::Fixed(100)));
        assert_eq!(
            ValueSizes::parse("64-1024"),
            Ok(ValueSizes::Uniform(64, 1024))
        );
        let w = ValueSizes::parse("100:90,1000:10").unwrap();
        assert_eq!(w, ValueSizes::Weighted(vec![(100, 90), (1000, 10)]));
        assert_eq!((w.min(), w.max()), (100, 1000));
        assert!(ValueSizes::parse("9-3").is_err());
        assert!(ValueSizes::parse("5:0").is_err());
        assert!(ValueSizes::parse("x").is_err());
    }

    #[test]
    fn ratios_and_key_dists() {
        assert_eq!(parse_ratio("9:1"), Ok((9, 1)));
        assert_eq!(parse_ratio("0:1"), Ok((0, 1)));
        assert!(parse_ratio("0:0").is_err());
        assert!(parse_ratio("9").is_err());
        assert_eq!(KeyDist::parse("uniform"), Ok(KeyDist::Uniform));
        assert_eq!(KeyDist::parse("zipf:1.2"), Ok(KeyDist::Zipf(1.2)));
        assert_eq!(KeyDist::parse("zipf"), Ok(KeyDist::Zipf(0.99)));
        assert!(KeyDist::parse("zipf:-1").is_err());
        assert!(KeyDist::parse("pareto").is_err());
    }
}
