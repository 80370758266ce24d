//! Store unit tests, one file per feature. The clock is injected: nothing sleeps.

mod basic;
mod cas;
mod cas_word;
mod differential;
mod differential_meta;
mod exptime_word;
mod index;
mod key;
mod layout;
mod memory;
mod meta;
mod policy;
mod restart;
mod system;

use super::{HashedKey, HugePages, Policy, Store, StoreConfig};

/// A unix time for process start, so absolute expiry times are predictable.
pub(crate) const STARTED: u64 = 1_700_000_000;

pub(crate) fn config(limit: usize, policy: Policy) -> StoreConfig {
    StoreConfig {
        memory_limit: limit,
        hugepages: HugePages::Off,
        eviction: policy,
        process_started: STARTED,
        ..StoreConfig::default()
    }
}

pub(crate) fn store(limit: usize, policy: Policy) -> Store {
    Store::new(config(limit, policy)).expect("store")
}

/// A small default store for semantic tests.
pub(crate) fn small() -> Store {
    store(8 << 20, Policy::default())
}

/// The key of a test request (the shard would hand over the hash it routed with).
pub(crate) fn hk(key: &[u8]) -> HashedKey<'_> {
    HashedKey::new(key)
}

pub(crate) fn value_of(s: &mut Store, key: &[u8]) -> Option<Vec<u8>> {
    s.get(hk(key)).map(|v| v.value.to_vec())
}
