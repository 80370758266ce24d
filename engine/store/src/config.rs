//! The store's settings: one plain struct with defaults in one place, serde-friendly so
//! the engine's TOML config can embed it, validated by `Store::new`.

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::item::MAX_VALUE_LEN;

/// How the arena is backed by huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HugePages {
    /// Normal 4 KiB pages (and transparent huge pages explicitly refused).
    Off,
    /// MAP_HUGETLB, else transparent huge pages, else normal pages.
    #[default]
    Try,
    /// MAP_HUGETLB or fail at start.
    On,
}

impl HugePages {
    /// The lowercase name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            HugePages::Off => "off",
            HugePages::Try => "try",
            HugePages::On => "on",
        }
    }
}

/// NUMA placement of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Numa {
    /// Leave placement to the kernel (first touch).
    #[default]
    Off,
    /// Bind the arena to the node of the shard's core (`cpu`).
    Local,
}

impl Numa {
    /// The lowercase name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            Numa::Off => "off",
            Numa::Local => "local",
        }
    }
}

/// Eviction policy, per size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Segmented hot/warm/cold LRU as memcached's, with u32 links (+8 bytes per item).
    Lru,
    /// CLOCK: one reference bit, a hand sweeping the class's chunks.
    Clock,
    /// S3-FIFO: small FIFO ring, main CLOCK with 2-bit frequency, ghost fingerprints.
    #[default]
    S3fifo,
    /// Approximate LFU: 8-bit logarithmic counter, decayed by a sweeping hand.
    Lfu,
    /// FIFO with u32 links (+8 bytes per item).
    Fifo,
    /// Uniformly random victim.
    Random,
}

impl Policy {
    /// Every policy, for benchmarks and tests.
    pub const ALL: [Policy; 6] = [
        Policy::Lru,
        Policy::Clock,
        Policy::S3fifo,
        Policy::Lfu,
        Policy::Fifo,
        Policy::Random,
    ];

    /// The lowercase name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Lru => "lru",
            Policy::Clock => "clock",
            Policy::S3fifo => "s3fifo",
            Policy::Lfu => "lfu",
            Policy::Fifo => "fifo",
            Policy::Random => "random",
        }
    }

    /// Whether items carry prev/next links.
    pub(crate) fn linked(self) -> bool {
        matches!(self, Policy::Lru | Policy::Fifo)
    }
}

/// Settings of one shard's store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Bytes of item memory this shard may use (the arena's size, rounded down to pages).
    pub memory_limit: usize,
    /// Bytes of one slab page handed to a size class.
    pub slab_page_size: usize,
    /// Ratio between neighbouring size classes (memcached's -f). Sizes step by at least 8.
    pub growth_factor: f64,
    /// Largest item (header, key and value) accepted; larger stores are TooLarge.
    pub max_item_size: usize,
    pub hugepages: HugePages,
    pub numa: Numa,
    /// The shard's core, for `numa = "local"`.
    pub cpu: Option<usize>,
    pub eviction: Policy,
    /// Evict live items when memory is full (memcached's default). `false` is
    /// memcached's -M: only expired or flushed items are reclaimed, and a store
    /// that finds no room fails with OutOfMemory.
    pub evictions: bool,
    /// Shard id (must be < 1024); the low bits of every CAS value unless
    /// `cas_layout` says otherwise.
    pub shard_id: u16,
    /// How this store's CAS values are made; `None` is the shard id in the low
    /// [`SHARD_BITS`] ([`CasLayout::shard`]). A cluster gives every node's
    /// shards a tag of their own (the engine decides it; the store only needs
    /// the tag to be unique among the stores whose CAS values meet).
    pub cas_layout: Option<CasLayout>,
    /// Whether items carry CAS values. `false` is memcached's -C: every item's
    /// CAS is 0 (a `cas` never matches, `E` is ignored), and `flush_all` can
    /// only cut by whole seconds (an item stored in the second of the flush
    /// goes with it).
    pub use_cas: bool,
    /// Items carry their 8-byte CAS word only once a client can know their CAS (a
    /// reply that prints it, an `E`), not from the moment they are stored: a cache
    /// read with get/set pays no bytes for CAS. `false`: every item carries it, as
    /// where CAS values are compared between stores (a cluster's replicas order
    /// their writes by them). Under -M every item carries it either way.
    pub cas_on_demand: bool,
    /// Unix time of the process start (seconds) that relative times count from; 0 means
    /// "now minus 2 s" at `Store::new`, so that relative time 1 is already in the past.
    pub process_started: u64,
    /// Root of the sysfs/procfs tree read for NUMA and hugepage facts (tests use a fake).
    pub sys_root: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            memory_limit: 32 << 20,
            slab_page_size: 1 << 20,
            growth_factor: 1.08,
            max_item_size: 1 << 20,
            hugepages: HugePages::Try,
            numa: Numa::Off,
            cpu: None,
            eviction: Policy::default(),
            evictions: true,
            shard_id: 0,
            cas_layout: None,
            use_cas: true,
            cas_on_demand: true,
            process_started: 0,
            sys_root: "/".to_string(),
        }
    }
}

/// Shard ids take the low bits of a CAS value.
pub const SHARD_BITS: u32 = 10;

/// How CAS values are made: a counter above a tag of `tag_bits` low bits that
/// names the store that made them, so two stores with different tags never
/// make one value, and any store can read the counter out of another's value
/// (`Store::observe_cas`) as long as both use the same `tag_bits`.
///
/// ```text
///   63                          tag_bits        0
///   +------------------------------+-------------+
///   | counter (64 - tag_bits bits) | tag         |
///   +------------------------------+-------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasLayout {
    /// Below `1 << tag_bits`.
    pub tag: u64,
    /// 1..=32: at least 32 bits are left for the counter.
    pub tag_bits: u32,
}

impl CasLayout {
    /// One node's layout (and the default): the shard id in the low [`SHARD_BITS`].
    pub fn shard(shard_id: u16) -> CasLayout {
        CasLayout {
            tag: u64::from(shard_id),
            tag_bits: SHARD_BITS,
        }
    }

    /// The largest counter a CAS value holds.
    pub fn max_counter(self) -> u64 {
        u64::MAX >> self.tag_bits
    }

    /// The CAS value of `counter`. A counter past [`CasLayout::max_counter`]
    /// saturates there (never wraps to small values); only an `E` near 2^64
    /// given by a client and then observed gets there, counting never does.
    #[inline]
    pub fn cas(self, counter: u64) -> u64 {
        (counter.min(self.max_counter()) << self.tag_bits) | self.tag
    }

    /// The counter of a CAS value made under this layout (any tag).
    #[inline]
    pub fn counter(self, cas: u64) -> u64 {
        cas >> self.tag_bits
    }
}

impl StoreConfig {
    /// The CAS layout in effect: `cas_layout`, else the shard id's.
    pub fn cas_layout(&self) -> CasLayout {
        self.cas_layout.unwrap_or(CasLayout::shard(self.shard_id))
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let bad = |field: &'static str, reason: String| Err(StoreError::Config { field, reason });
        if !(64 << 10..=1 << 30).contains(&self.slab_page_size)
            || !self.slab_page_size.is_power_of_two()
        {
            return bad(
                "slab_page_size",
                format!(
                    "{} is not a power of two between 64 KiB and 1 GiB; use 1048576 (1 MiB)",
                    self.slab_page_size
                ),
            );
        }
        if self.memory_limit < 2 * self.slab_page_size {
            return bad(
                "memory_limit",
                format!(
                    "{} bytes is less than two slab pages ({} bytes each); raise memory_limit or \
                     lower slab_page_size",
                    self.memory_limit, self.slab_page_size
                ),
            );
        }
        if (self.memory_limit / 8) as u64 + 2 > u32::MAX as u64 {
            return bad(
                "memory_limit",
                format!(
                    "{} bytes exceeds 32 GiB per shard; use more shards",
                    self.memory_limit
                ),
            );
        }
        if !(1.01..=4.0).contains(&self.growth_factor) || self.growth_factor.is_nan() {
            return bad(
                "growth_factor",
                format!(
                    "{} is outside 1.01..=4.0; the default is 1.08",
                    self.growth_factor
                ),
            );
        }
        let max_item = self.slab_page_size.min(MAX_VALUE_LEN);
        if self.max_item_size < 64 || self.max_item_size > max_item {
            return bad(
                "max_item_size",
                format!(
                    "{} is outside 64..={} (an item must fit one slab page); raise \
                     slab_page_size or lower max_item_size",
                    self.max_item_size, max_item
                ),
            );
        }
        if self.shard_id >= 1 << SHARD_BITS {
            return bad("shard_id", format!("{} is not below 1024", self.shard_id));
        }
        if let Some(l) = self.cas_layout
            && (!(1..=32).contains(&l.tag_bits) || l.tag >> l.tag_bits != 0)
        {
            return bad(
                "cas_layout",
                format!(
                    "tag {} in {} bits: the bits must be 1..=32 and hold the tag",
                    l.tag, l.tag_bits
                ),
            );
        }
        if self.numa == Numa::Local && self.cpu.is_none() {
            return bad(
                "numa",
                "\"local\" needs the shard's cpu to find its node".to_string(),
            );
        }
        Ok(())
    }
}
