//! Settings derived from the configuration for the layers below it: the
//! protocol limits, each shard's store settings and its ring sizes. One home,
//! so a shard never assembles them itself.

use runtime::RingConfig;
use store::StoreConfig;

use super::{ClusterPlan, Config};

/// The version `version` answers and `-V` prints: the memcached protocol level
/// implemented first (clients pick protocol rules from it), then our own.
pub const VERSION: &str = concat!("1.6.18-corecache-", env!("CARGO_PKG_VERSION"));

/// The store's clock at start-up, in seconds. As memcached's `current_time`,
/// it starts past 0: time 1 means "already expired", and an immediate
/// `flush_all` marks everything up to the second before now, so a clock at 0
/// would make both lie in the future during the first second of uptime.
pub const CLOCK_START: u32 = 2;

impl Config {
    /// What UDP may send back (docs/security.md).
    pub fn udp_guard(&self) -> crate::shard::UdpGuard {
        crate::shard::UdpGuard {
            max_reply: self.network.udp_max_reply.0 as usize,
            rate: self.network.udp_reply_rate.0,
        }
    }

    /// The parser's bounds.
    pub fn proto_limits(&self) -> proto::Limits {
        let l = &self.limits;
        proto::Limits {
            max_key_len: l.max_key_length,
            max_item_size: l.max_item_size.0 as usize,
            max_line_len: l.max_line_length,
            max_get_line_len: l.max_get_line_length.0 as usize,
            ..proto::Limits::default()
        }
    }

    /// Store settings for shard `shard` of `shards`, pinned to `core`, in a
    /// process that started at unix time `started_unix` (the store's clock
    /// counts from [`CLOCK_START`] then), a member of `cluster` if given (its
    /// CAS values then carry this node's index too, `ClusterPlan::cas_layout`).
    pub fn store_config(
        &self,
        shard: usize,
        shards: usize,
        core: usize,
        started_unix: u64,
        cluster: Option<&ClusterPlan>,
    ) -> StoreConfig {
        let m = &self.memory;
        StoreConfig {
            memory_limit: (m.limit_mb << 20) as usize / shards.max(1),
            slab_page_size: self.slab_page(),
            growth_factor: m.growth_factor,
            max_item_size: self.limits.max_item_size.0 as usize,
            hugepages: m.hugepages,
            numa: m.numa,
            cpu: Some(core),
            eviction: m.eviction,
            evictions: !self.server.disable_evictions,
            shard_id: shard as u16,
            cas_layout: cluster.map(|p| p.cas_layout(shard)),
            use_cas: !self.server.disable_cas,
            // A cluster's replicas order their writes by CAS: every item carries it.
            cas_on_demand: m.cas_on_demand && cluster.is_none(),
            process_started: started_unix.saturating_sub(u64::from(CLOCK_START)).max(1),
            ..StoreConfig::default()
        }
    }

    /// The slab page the stores use: `memory.slab_page_size`, raised to hold the
    /// largest item (`-I` above 1m gives pages of the next power of two: an item
    /// lives in one chunk of one page).
    pub fn slab_page(&self) -> usize {
        let page = self.memory.slab_page_size.0 as usize;
        page.max((self.limits.max_item_size.0 as usize).next_power_of_two())
    }

    /// A shard ring's queue sizes.
    pub fn ring_config(&self) -> RingConfig {
        let n = &self.network;
        RingConfig {
            sq_entries: n.ring_entries,
            cq_entries: n.ring_entries * 8,
        }
    }
}
