//! Value size sampling from a [`ValueSizes`] specification.

use rand::RngExt;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::SmallRng;
use rand_distr::Distribution;

use crate::spec::ValueSizes;

#[derive(Clone, Debug)]
pub enum SizeSampler {
    Fixed(usize),
    Uniform(usize, usize),
    Weighted(Vec<usize>, WeightedIndex<u32>),
}

impl SizeSampler {
    pub fn new(spec: &ValueSizes) -> SizeSampler {
        match spec {
            ValueSizes::Fixed(n) => SizeSampler::Fixed(*n),
            ValueSizes::Uniform(lo, hi) => SizeSampler::Uniform(*lo, *hi),
            ValueSizes::Weighted(list) => SizeSampler::Weighted(
                list.iter().map(|e| e.0).collect(),
                WeightedIndex::new(list.iter().map(|e| e.1)).expect("weights checked at parse"),
            ),
        }
    }

    #[inline]
    pub fn sample(&self, rng: &mut SmallRng) -> usize {
        match self {
            SizeSampler::Fixed(n) => *n,
            SizeSampler::Uniform(lo, hi) => rng.random_range(*lo..=*hi),
            SizeSampler::Weighted(sizes, index) => sizes[index.sample(rng)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weighted_sizes_follow_their_weights() {
        let s = SizeSampler::new(&ValueSizes::Weighted(vec![(10, 3), (20, 1), (30, 0)]));
        let mut rng = SmallRng::seed_from_u64(5);
        let mut n10 = 0;
        for _ in 0..40_000 {
            match s.sample(&mut rng) {
                10 => n10 += 1,
                20 => {}
                other => panic!("size {other} has weight 0"),
            }
        }
        assert!((29_000..31_000).contains(&n10), "{n10}");
    }

    #[test]
    fn uniform_sizes_stay_in_range() {
        let s = SizeSampler::new(&ValueSizes::Uniform(5, 7));
        let mut rng = SmallRng::seed_from_u64(5);
        let mut seen = [false; 3];
        for _ in 0..1000 {
            let v = s.sample(&mut rng);
            assert!((5..=7).contains(&v));
            seen[v - 5] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
