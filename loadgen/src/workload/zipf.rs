//! Key popularity samplers. Zipf uses rand_distr's rejection-inversion
//! sampler (constant memory and time, whatever the key space), so a key space
//! of a billion costs nothing to set up.

use rand::rngs::SmallRng;
use rand_distr::{Distribution, Uniform, Zipf};

use crate::spec::KeyDist;

/// Draws key indices in `0..n`; index 0 is the most popular under zipf.
#[derive(Clone, Debug)]
pub enum KeySampler {
    Uniform(Uniform<u64>),
    Zipf { zipf: Zipf<f64>, n: u64 },
}

impl KeySampler {
    /// `n` must be at least 1 (the workload checks it).
    pub fn new(dist: KeyDist, n: u64) -> KeySampler {
        assert!(n >= 1, "empty key space");
        match dist {
            KeyDist::Uniform => KeySampler::Uniform(Uniform::new(0, n).expect("non-empty range")),
            KeyDist::Zipf(skew) => KeySampler::Zipf {
                zipf: Zipf::new(n as f64, skew).expect("n >= 1 and skew >= 0 are checked"),
                n,
            },
        }
    }

    #[inline]
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        match self {
            KeySampler::Uniform(u) => u.sample(rng),
            // The sampler returns ranks 1..=n as floats.
            KeySampler::Zipf { zipf, n } => (zipf.sample(rng) as u64).clamp(1, *n) - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The expected share of rank k (1-based) among n under exponent s.
    fn expected(n: u64, s: f64) -> Vec<f64> {
        let h: f64 = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).sum();
        (1..=n).map(|k| 1.0 / (k as f64).powf(s) / h).collect()
    }

    /// Pearson's chi-square statistic of observed counts against shares.
    fn chi_square(counts: &[u64], shares: &[f64], total: u64) -> f64 {
        counts
            .iter()
            .zip(shares)
            .map(|(&o, &p)| {
                let e = p * total as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    #[test]
    fn zipf_matches_expected_frequencies() {
        for &(n, s) in &[(100u64, 0.99), (50, 1.5), (20, 0.5)] {
            let sampler = KeySampler::new(KeyDist::Zipf(s), n);
            let mut rng = SmallRng::seed_from_u64(7);
            let total = 400_000u64;
            let mut counts = vec![0u64; n as usize];
            for _ in 0..total {
                counts[sampler.sample(&mut rng) as usize] += 1;
            }
            let shares = expected(n, s);
            // n-1 degrees of freedom; 99.9th percentile of chi2(99) is ~149.
            // A sampler off by a few percent on the head ranks lands in the
            // thousands.
            let chi = chi_square(&counts, &shares, total);
            assert!(chi < 160.0, "n={n} s={s}: chi-square {chi}");
            // And the head explicitly: rank 1 within 2% of its share.
            let head = counts[0] as f64 / total as f64;
            assert!(
                (head / shares[0] - 1.0).abs() < 0.02,
                "head {head} vs {}",
                shares[0]
            );
        }
    }

    #[test]
    fn uniform_covers_the_key_space_evenly() {
        let sampler = KeySampler::new(KeyDist::Uniform, 10);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = [0u64; 10];
        for _ in 0..100_000 {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        let chi = chi_square(&counts, &[0.1; 10], 100_000);
        assert!(chi < 30.0, "chi-square {chi}: {counts:?}");
    }

    #[test]
    fn zipf_skew_zero_is_uniform_and_a_bad_sampler_fails() {
        let sampler = KeySampler::new(KeyDist::Zipf(0.0), 10);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut counts = [0u64; 10];
        for _ in 0..100_000 {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        assert!(chi_square(&counts, &[0.1; 10], 100_000) < 30.0);
        // The statistic does reject a wrong distribution: uniform counts
        // against zipf(0.99) shares.
        assert!(chi_square(&counts, &expected(10, 0.99), 100_000) > 1000.0);
    }
}
