//! What requests to send: the key space and its popularity, value sizes,
//! the get:set mix and multi-get width, all drawn from a seeded RNG so a run
//! can be repeated exactly.

mod keys;
mod owner;
mod sizes;
mod zipf;

pub use keys::{min_key_size, parse_key, write_key};
pub use owner::{KeyOwner, KeySpace, OwnerError};
pub use sizes::SizeSampler;
pub use zipf::KeySampler;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::spec::{KeyDist, ValueSizes};
use crate::verify;

/// memcached's key length limit.
pub const MAX_KEY: usize = 250;

/// The workload, as given on the command line (and recorded in results).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub keys: u64,
    pub key_size: usize,
    pub value_sizes: ValueSizes,
    pub get_weight: u32,
    pub set_weight: u32,
    /// Keys per get request.
    pub mget: usize,
    pub key_dist: KeyDist,
    pub seed: u64,
    pub verify: bool,
    /// Only the keys this cluster node owns (`--key-owner`); None: every key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_owner: Option<KeyOwner>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkloadError {
    #[error("--keys must be at least 1")]
    NoKeys,
    #[error("--key-size {size} is too small for {keys} keys (need >= {min})")]
    KeySizeTooSmall { size: usize, keys: u64, min: usize },
    #[error("--key-size {0} exceeds memcached's limit of {MAX_KEY}")]
    KeySizeTooLarge(usize),
    #[error("--mget must be between 1 and 1024")]
    BadMget,
    #[error("--verify needs values of at least {header} bytes (--value-size min is {0})", header = verify::HEADER)]
    VerifyValueTooSmall(usize),
    #[error(transparent)]
    KeyOwner(#[from] OwnerError),
}

impl Workload {
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.keys == 0 {
            return Err(WorkloadError::NoKeys);
        }
        let min = min_key_size(self.keys);
        if self.key_size < min {
            return Err(WorkloadError::KeySizeTooSmall {
                size: self.key_size,
                keys: self.keys,
                min,
            });
        }
        if self.key_size > MAX_KEY {
            return Err(WorkloadError::KeySizeTooLarge(self.key_size));
        }
        if self.mget == 0 || self.mget > 1024 {
            return Err(WorkloadError::BadMget);
        }
        if self.verify && self.value_sizes.min() < verify::HEADER {
            return Err(WorkloadError::VerifyValueTooSmall(self.value_sizes.min()));
        }
        self.key_space()?;
        Ok(())
    }

    /// The key indices this workload draws from and prefills.
    pub fn key_space(&self) -> Result<KeySpace, WorkloadError> {
        match &self.key_owner {
            None => Ok(KeySpace::All(self.keys)),
            Some(o) => Ok(o.owned(self.keys, self.key_size)?),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Get,
    Set,
}

/// One thread's request stream. Threads get distinct streams from one seed.
pub struct Generator {
    rng: SmallRng,
    /// Draws positions in `space`, so popularity (zipf ranks) applies to the
    /// keys kept, whatever filter kept them.
    keys: KeySampler,
    space: KeySpace,
    sizes: SizeSampler,
    get_weight: u32,
    total_weight: u32,
    width: usize,
    key_size: usize,
    verify: bool,
    /// Versions written by this stream; the thread id sits in the top bits
    /// so two threads never write the same version.
    version: u64,
    filler: Vec<u8>,
}

impl Generator {
    /// `w` must be valid ([`Workload::validate`]).
    pub fn new(w: &Workload, stream: u64) -> Generator {
        let space = w.key_space().expect("the workload was validated");
        // Decorrelate streams: splitmix-style odd multiplier.
        let seed = w.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Generator {
            rng: SmallRng::seed_from_u64(seed),
            keys: KeySampler::new(w.key_dist, space.len()),
            space,
            sizes: SizeSampler::new(&w.value_sizes),
            get_weight: w.get_weight,
            total_weight: w.get_weight + w.set_weight,
            width: w.mget,
            key_size: w.key_size,
            verify: w.verify,
            version: stream << 40,
            filler: vec![b'x'; w.value_sizes.max()],
        }
    }

    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// The key indices drawn from (prefill sets exactly these).
    pub fn key_space(&self) -> &KeySpace {
        &self.space
    }

    #[inline]
    fn key(&mut self) -> u64 {
        let pos = self.keys.sample(&mut self.rng);
        self.space.index(pos)
    }

    /// Draws the next operation: for a get, `keys` gets the width's key
    /// indices; for a set, one key, and the value length is returned.
    #[inline]
    pub fn next(&mut self, keys: &mut Vec<u64>) -> (OpKind, usize) {
        keys.clear();
        let is_get = self.rng.random_range(0..self.total_weight) < self.get_weight;
        if is_get {
            for _ in 0..self.width {
                let k = self.key();
                keys.push(k);
            }
            (OpKind::Get, 0)
        } else {
            let k = self.key();
            keys.push(k);
            (OpKind::Set, self.sizes.sample(&mut self.rng))
        }
    }

    /// A set of a given key (prefill), with a drawn size.
    pub fn value_len(&mut self) -> usize {
        self.sizes.sample(&mut self.rng)
    }

    /// Appends a value of `len` bytes for `key` (checksummed under --verify).
    #[inline]
    pub fn write_value(&mut self, out: &mut Vec<u8>, key: &[u8], len: usize) {
        if self.verify {
            self.version += 1;
            verify::write_value(out, key, self.version, len);
        } else {
            out.extend_from_slice(&self.filler[..len]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            keys: 1000,
            key_size: 10,
            value_sizes: ValueSizes::Fixed(40),
            get_weight: 9,
            set_weight: 1,
            mget: 3,
            key_dist: KeyDist::Uniform,
            seed: 42,
            verify: true,
            key_owner: None,
        }
    }

    #[test]
    fn the_mix_and_width_follow_the_workload() {
        let mut g = Generator::new(&workload(), 0);
        let mut keys = Vec::new();
        let mut gets = 0;
        for _ in 0..10_000 {
            match g.next(&mut keys) {
                (OpKind::Get, _) => {
                    gets += 1;
                    assert_eq!(keys.len(), 3);
                }
                (OpKind::Set, len) => {
                    assert_eq!(keys.len(), 1);
                    assert_eq!(len, 40);
                }
            }
            assert!(keys.iter().all(|&k| k < 1000));
        }
        assert!((8_800..9_200).contains(&gets), "{gets}");
    }

    #[test]
    fn one_seed_gives_one_stream_and_streams_differ() {
        let w = workload();
        let draw = |stream| {
            let mut g = Generator::new(&w, stream);
            let mut keys = Vec::new();
            (0..50)
                .flat_map(|_| {
                    g.next(&mut keys);
                    keys.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(0), draw(0));
        assert_ne!(draw(0), draw(1));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut w = workload();
        assert_eq!(w.validate(), Ok(()));
        w.key_size = 3;
        assert!(matches!(
            w.validate(),
            Err(WorkloadError::KeySizeTooSmall { min: 4, .. })
        ));
        w.key_size = 10;
        w.value_sizes = ValueSizes::Uniform(8, 100);
        assert_eq!(w.validate(), Err(WorkloadError::VerifyValueTooSmall(8)));
        w.verify = false;
        assert_eq!(w.validate(), Ok(()));
        w.mget = 0;
        assert_eq!(w.validate(), Err(WorkloadError::BadMget));
    }

    #[test]
    fn a_key_owner_keeps_the_draws_on_its_keys() {
        let mut w = workload();
        w.key_size = 8;
        w.key_owner = Some(KeyOwner {
            node: "b".into(),
            peers: "a=127.0.0.1:20001,b=127.0.0.1:20002".into(),
            ring: "libketama".into(),
        });
        assert_eq!(w.validate(), Ok(()));
        let KeySpace::Subset(owned) = w.key_space().unwrap() else {
            panic!("a subset");
        };
        assert!(owned.len() > 300 && owned.len() < 700, "{}", owned.len());
        let mut g = Generator::new(&w, 0);
        let mut keys = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5_000 {
            g.next(&mut keys);
            for k in &keys {
                assert!(owned.binary_search(k).is_ok(), "key {k} is not b's");
                seen.insert(*k);
            }
        }
        // Uniform over the kept keys: nearly all of them drawn.
        assert!(
            seen.len() * 10 > owned.len() * 9,
            "{} of {}",
            seen.len(),
            owned.len()
        );
        w.key_owner.as_mut().unwrap().node = "z".into();
        assert!(matches!(w.validate(), Err(WorkloadError::KeyOwner(_))));
    }

    #[test]
    fn verified_values_check_against_their_key() {
        let mut g = Generator::new(&workload(), 3);
        let mut key = Vec::new();
        write_key(&mut key, 17, 10);
        let mut v = Vec::new();
        g.write_value(&mut v, &key, 40);
        assert_eq!(crate::verify::check_value(&key, &v), Ok(()));
    }
}
