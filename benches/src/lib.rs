//! Shared helpers for corecache benchmarks: fixed-seed randomness, a zipf sampler, the
//! benchmark keys and the process's resident memory.

/// splitmix64: a fixed-seed generator, so every run draws the same keys.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Zipf over ranks 0..n with exponent `s`, by inverse CDF (a table of n f64).
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 1..=n {
            acc += 1.0 / (r as f64).powf(s);
            cdf.push(acc);
        }
        for v in &mut cdf {
            *v /= acc;
        }
        Zipf { cdf }
    }
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// The benchmark's 32-byte key for item `i`.
pub fn key32(mut i: u64) -> [u8; 32] {
    let mut k = [b'0'; 32];
    k[..4].copy_from_slice(b"key:");
    let mut p = 31;
    while i > 0 {
        k[p] = b'0' + (i % 10) as u8;
        i /= 10;
        p -= 1;
    }
    k
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// Resident set size of process `pid` ("self" for this one), in bytes: the `Rss`
/// of /proc/PID/smaps_rollup, which walks the page tables. (`VmRSS` in
/// /proc/PID/status comes from per-CPU counters the kernel folds in lazily; it
/// was seen lagging 4 MB behind an unmap by a second and more.)
pub fn rss_of(pid: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_bytes_and_zipf_is_skewed() {
        assert_eq!(&key32(7)[..], format!("key:{:028}", 7).as_bytes());
        let z = Zipf::new(1000, 1.1);
        let mut r = Rng(1);
        let top = (0..10_000).filter(|_| z.sample(&mut r) < 10).count();
        assert!(top > 3000, "{top}");
    }
}
