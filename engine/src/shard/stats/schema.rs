//! The one table of every stat a shard counts: name, type, merge rule across
//! shards, help text and getter, in memcached's `stats` order. The snapshot
//! rows a shard sends, their merge and the memcached text reply are all
//! generated from these tables, and the Prometheus encoder reads the same
//! entries (`GENERAL.iter()` for name, kind and help; `Entry::read` for one
//! shard's value; `Merged::general` / `entries` for merged values).
//!
//! A table's position is part of the snapshot format: shards send values
//! without names, in table order, so every shard's rows line up.

use store::{SlabClassStats, StoreStats};

use super::ShardStats;
use crate::shard::peer::LinkRow;

/// What a value means over time, as Prometheus types it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only grows, until `stats reset`.
    Counter,
    /// A level that goes up and down.
    Gauge,
}

/// How one value of several shards becomes the server's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    Sum,
    Max,
    /// Every shard has the same value (e.g. a class's chunk size).
    First,
}

impl Merge {
    pub fn apply(self, acc: u64, v: u64) -> u64 {
        match self {
            Merge::Sum => acc + v,
            Merge::Max => acc.max(v),
            Merge::First => acc,
        }
    }
}

/// When the `stats` reply prints an entry (the other outputs always carry it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Always,
    /// Only while `-o idle_timeout` is set, as memcached 1.6.18 does.
    WithIdleTimeout,
    /// Only with -Z, as memcached's TLS stats.
    WithTls,
}

/// One stat. `G` is the getter's type: over a shard's general counters
/// ([`GeneralGet`]) or over one slab class ([`ClassGet`]).
#[derive(Clone, Copy, Debug)]
pub struct Entry<G> {
    pub name: &'static str,
    pub kind: Kind,
    pub merge: Merge,
    pub help: &'static str,
    pub get: G,
    pub shown: Shown,
}

pub type GeneralGet = fn(&ShardStats, &StoreStats) -> u64;
pub type ClassGet = fn(&SlabClassStats) -> u64;
pub type LinkGet = fn(&LinkRow) -> u64;

impl Entry<GeneralGet> {
    /// This entry's value on one shard.
    pub fn read(&self, shard: &ShardStats, store: &StoreStats) -> u64 {
        (self.get)(shard, store)
    }
}

impl Entry<LinkGet> {
    /// This entry's value for one peer link of one shard.
    pub fn read(&self, link: &LinkRow) -> u64 {
        (self.get)(link)
    }
}

impl Entry<ClassGet> {
    /// This entry's value for one class on one shard.
    pub fn read(&self, class: &SlabClassStats) -> u64 {
        (self.get)(class)
    }
}

/// An entry of any table, printed always.
const fn entry<G>(
    name: &'static str,
    kind: Kind,
    merge: Merge,
    get: G,
    help: &'static str,
) -> Entry<G> {
    Entry {
        name,
        kind,
        merge,
        help,
        get,
        shown: Shown::Always,
    }
}

const fn stat(
    name: &'static str,
    kind: Kind,
    merge: Merge,
    get: GeneralGet,
    help: &'static str,
) -> Entry<GeneralGet> {
    entry(name, kind, merge, get, help)
}

/// A general entry that the `stats` reply prints only in some configurations.
const fn stat_if(shown: Shown, entry: Entry<GeneralGet>) -> Entry<GeneralGet> {
    Entry { shown, ..entry }
}

const fn class(
    name: &'static str,
    kind: Kind,
    merge: Merge,
    get: ClassGet,
    help: &'static str,
) -> Entry<ClassGet> {
    entry(name, kind, merge, get, help)
}

/// Pairs a row of values with the entries of its table; a short row reads as
/// zeros, so a missing row prints as memcached prints an idle server.
pub fn entries<'a, G>(
    table: &'static [Entry<G>],
    values: &'a [u64],
) -> impl Iterator<Item = (&'static Entry<G>, u64)> + 'a {
    table
        .iter()
        .enumerate()
        .map(|(i, e)| (e, values.get(i).copied().unwrap_or(0)))
}

use Kind::{Counter, Gauge};
use Merge::{First, Max, Sum};

/// The general counters, in memcached's `stats` order. The process lines and
/// memcached's constant or derived lines around them live in `format_general`.
#[rustfmt::skip]
pub static GENERAL: &[Entry<GeneralGet>] = &[
    stat("curr_connections", Gauge, Sum, |s, _| s.curr_connections, "Open client connections."),
    stat("total_connections", Counter, Sum, |s, _| s.total_connections, "Client connections accepted."),
    stat("rejected_connections", Counter, Sum, |s, _| s.rejected_connections, "Connections closed at once because max_connections was reached."),
    stat("cmd_get", Counter, Sum, |s, _| s.cmd_get, "Keys requested by retrieval commands."),
    stat("cmd_set", Counter, Sum, |s, _| s.cmd_set, "Storage commands received."),
    stat("cmd_flush", Counter, Sum, |s, _| s.cmd_flush, "flush_all commands received."),
    stat("cmd_touch", Counter, Sum, |s, _| s.cmd_touch, "Touch requests received."),
    stat("cmd_meta", Counter, Sum, |s, _| s.cmd_meta, "Meta protocol commands received."),
    stat("get_hits", Counter, Sum, |_, st| st.get_hits, "Keys requested and found."),
    stat("get_misses", Counter, Sum, |_, st| st.get_misses, "Keys requested and not found."),
    stat("get_expired", Counter, Sum, |_, st| st.get_expired, "Keys requested and found expired."),
    stat("get_flushed", Counter, Sum, |_, st| st.get_flushed, "Keys requested and found invalidated by flush_all."),
    stat("delete_misses", Counter, Sum, |_, st| st.delete_misses, "Deletes of keys not found."),
    stat("delete_hits", Counter, Sum, |_, st| st.delete_hits, "Deletes of keys found."),
    stat("incr_misses", Counter, Sum, |_, st| st.incr_misses, "incr of keys not found."),
    stat("incr_hits", Counter, Sum, |_, st| st.incr_hits, "incr of keys found."),
    stat("decr_misses", Counter, Sum, |_, st| st.decr_misses, "decr of keys not found."),
    stat("decr_hits", Counter, Sum, |_, st| st.decr_hits, "decr of keys found."),
    stat("cas_misses", Counter, Sum, |_, st| st.cas_misses, "cas of keys not found."),
    stat("cas_hits", Counter, Sum, |_, st| st.cas_hits, "cas that stored."),
    stat("cas_badval", Counter, Sum, |_, st| st.cas_badval, "cas refused because the cas value did not match."),
    stat("touch_hits", Counter, Sum, |_, st| st.touch_hits, "Touches of keys found."),
    stat("touch_misses", Counter, Sum, |_, st| st.touch_misses, "Touches of keys not found."),
    stat("store_too_large", Counter, Sum, |_, st| st.store_too_large, "Stores refused because the item was larger than the largest class."),
    stat("store_no_memory", Counter, Sum, |_, st| st.store_no_memory, "Stores refused because no memory could be freed."),
    stat("auth_cmds", Counter, Sum, |s, _| s.auth_cmds, "Authentication attempts (-Y or SASL)."),
    stat("auth_errors", Counter, Sum, |s, _| s.auth_errors, "Authentication attempts that failed."),
    stat_if(Shown::WithIdleTimeout, stat("idle_kicks", Counter, Sum, |s, _| s.idle_kicks, "Connections closed for being idle longer than idle_timeout.")),
    stat_if(Shown::WithTls, stat("ssl_handshake_errors", Counter, Sum, |s, _| s.ssl_handshake_errors, "TLS handshakes that failed.")),
    stat("bytes_read", Counter, Sum, |s, _| s.bytes_read, "Bytes read from clients."),
    stat("bytes_written", Counter, Sum, |s, _| s.bytes_written, "Bytes sent to clients."),
    stat("limit_maxbytes", Gauge, Sum, |_, st| st.limit_maxbytes, "Bytes of item memory the server may use."),
    stat("conn_yields", Counter, Sum, |s, _| s.conn_yields, "Times a connection gave up its turn with requests still buffered (reqs_per_event)."),
    stat("hash_bytes", Gauge, Sum, |_, st| st.hash_bytes, "Bytes of index slots."),
    stat("hash_is_expanding", Gauge, Max, |_, st| st.hash_is_expanding.into(), "1 while some shard's index is growing."),
    stat("slabs_moved", Counter, Sum, |_, st| st.slabs_moved, "Slab pages moved between size classes."),
    stat("bytes", Gauge, Sum, |_, st| st.bytes, "Bytes of live items."),
    stat("curr_items", Gauge, Sum, |_, st| st.curr_items, "Items stored."),
    stat("total_items", Counter, Sum, |_, st| st.total_items, "Items stored since start."),
    stat("expired_unfetched", Counter, Sum, |_, st| st.expired_unfetched, "Items reclaimed after expiry that were never fetched."),
    stat("evicted_unfetched", Counter, Sum, |_, st| st.evicted_unfetched, "Items evicted that were never fetched."),
    stat("evicted_active", Counter, Sum, |_, st| st.evicted_active, "Items evicted that had been accessed since they last reached the eviction end."),
    stat("evictions", Counter, Sum, |_, st| st.evictions, "Valid items removed to free memory."),
    stat("reclaimed", Counter, Sum, |_, st| st.reclaimed, "Stores that reused the memory of an expired item."),
    stat("crawler_reclaimed", Counter, Sum, |_, st| st.crawler_reclaimed, "Expired items freed by the background crawler."),
    stat("crawler_items_checked", Counter, Sum, |_, st| st.crawler_items_checked, "Items the background crawler examined."),
    stat("protocol_errors", Counter, Sum, |s, _| s.protocol_errors, "Requests answered with ERROR or CLIENT_ERROR."),
    stat("cross_shard_requests", Counter, Sum, |s, _| s.forwarded, "Requests sent to the shard owning their key."),
    stat("udp_requests", Counter, Sum, |s, _| s.udp_requests, "Requests received over UDP."),
    stat("udp_dropped", Counter, Sum, |s, _| s.udp_dropped, "UDP datagrams dropped on arrival: malformed, truncated, or too many pending."),
    stat("udp_replies_too_large", Counter, Sum, |s, _| s.udp_replies_too_large, "UDP replies dropped for exceeding network.udp_max_reply."),
    stat("udp_replies_rate_limited", Counter, Sum, |s, _| s.udp_replies_rate_limited, "UDP replies dropped by the per-source reply rate bound."),
    stat("cluster_forwarded", Counter, Sum, |s, _| s.node_forwarded, "Requests sent to the cluster node owning their key."),
    stat("cluster_failed", Counter, Sum, |s, _| s.node_failed, "Forwarded requests failed because their node was down, slow or broken."),
    stat("replica_shipped", Counter, Sum, |s, _| s.replica_shipped, "Replica records (item states, deletes) sent to the other replicas of their key."),
    stat("replica_dropped", Counter, Sum, |s, _| s.replica_dropped, "Replica records not sent because the link to the replica was full or failing."),
    stat("replica_unconfirmed", Counter, Sum, |s, _| s.replica_unconfirmed, "Writes answered SERVER_ERROR under replication ack all: a live replica's record failed or could not be sent."),
    stat("replica_resynced", Counter, Sum, |s, _| s.replica_resynced, "Replica records sent to members that came back, by the walk of the store that re-syncs them (items, and the deletes of the delete log)."),
    stat("replica_resync_gaps", Counter, Sum, |s, _| s.replica_resync_gaps, "Re-syncs of a returning member whose delete log no longer reached back to its departure: deletes made while it was away may not reach it."),
    stat("replica_read_failovers", Counter, Sum, |s, _| s.replica_read_failovers, "Reads of replicated keys sent to another replica because the link to the acting owner had failed (before membership declares it down)."),
    stat("replica_read_retries", Counter, Sum, |s, _| s.replica_read_retries, "Reads in flight on a peer link that failed, sent to another replica (or answered from this node's copy) instead of failing."),
    stat("warmup_reads", Counter, Sum, |s, _| s.warmup_reads, "Warm-up reads: keys this node owns but lacked, read through from their previous owner during cluster.warmup_secs after start."),
    stat("warmup_filled", Counter, Sum, |s, _| s.warmup_filled, "Warm-up reads that brought a copy, stored here."),
    stat("slab_bytes", Gauge, Sum, |_, st| st.slab_bytes, "Bytes of slab pages handed to size classes."),
    stat("hash_slots", Gauge, Sum, |_, st| st.hash_slots, "Slots of the key index (hash_power_level is its log2, at least 16)."),
    stat("restart_items_restored", Gauge, Sum, |_, st| st.restored_items, "Items brought back by the warm restart at start-up (-e)."),
    stat("restart_items_dropped", Gauge, Sum, |_, st| st.restore_dropped, "Items the warm restart found expired or flushed while stopped."),
    stat("arena_huge_bytes", Gauge, Sum, |_, st| st.arena_huge_bytes, "Bytes of item memory given to transparent huge pages (regions wholly carved)."),
    stat("recv_buffers", Gauge, Sum, |s, _| s.recv_buffers, "Receive buffers handed to the kernel: a shard's pool starts with 32 and doubles when its reading connections run short, up to network.recv_buffers."),
];

/// `stats slabs` per class, in memcached's order.
#[rustfmt::skip]
pub static SLABS: &[Entry<ClassGet>] = &[
    class("chunk_size", Gauge, First, |c| c.chunk_size.into(), "Bytes of one chunk of this class."),
    class("chunks_per_page", Gauge, First, |c| c.chunks_per_page.into(), "Chunks in one slab page of this class."),
    class("total_pages", Gauge, Sum, |c| c.total_pages.into(), "Slab pages held by this class."),
    class("total_chunks", Gauge, Sum, |c| c.total_chunks, "Chunks in this class's pages."),
    class("used_chunks", Gauge, Sum, |c| c.used_chunks, "Chunks holding an item."),
    class("free_chunks", Gauge, Sum, |c| c.free_chunks, "Chunks free for an item, carved or not."),
    // Pages are carved lazily and counted in free_chunks; memcached's field stays for its clients.
    class("free_chunks_end", Gauge, Sum, |_| 0, "Always 0: uncarved chunks are counted in free_chunks."),
    class("get_hits", Counter, Sum, |c| c.counters.get_hits, "Gets that found an item of this class."),
    class("touch_hits", Counter, Sum, |c| c.counters.touch_hits, "Touches that found an item of this class."),
    class("mem_requested", Gauge, Sum, |c| c.mem_requested, "Bytes of the items in this class, before chunk rounding."),
];

/// `stats items` per class, in memcached's order.
#[rustfmt::skip]
pub static ITEMS: &[Entry<ClassGet>] = &[
    class("number", Gauge, Sum, |c| c.number, "Items stored in this class."),
    class("age", Gauge, Max, |c| c.age.into(), "Seconds since the last access of the item next in line for eviction."),
    class("mem_requested", Gauge, Sum, |c| c.mem_requested, "Bytes of the items in this class, before chunk rounding."),
    class("evicted", Counter, Sum, |c| c.counters.evicted, "Items evicted from this class."),
    class("evicted_nonzero", Counter, Sum, |c| c.counters.evicted_nonzero, "Items evicted that had an explicit expiry time."),
    class("evicted_time", Gauge, Max, |c| c.counters.evicted_time.into(), "Seconds since the last access of the most recently evicted item."),
    class("outofmemory", Counter, Sum, |c| c.counters.outofmemory, "Stores into this class refused for want of memory."),
    class("reclaimed", Counter, Sum, |c| c.counters.reclaimed, "Stores that reused the memory of an expired item."),
    class("expired_unfetched", Counter, Sum, |c| c.counters.expired_unfetched, "Items reclaimed after expiry that were never fetched."),
    class("evicted_unfetched", Counter, Sum, |c| c.counters.evicted_unfetched, "Items evicted that were never fetched."),
    class("evicted_active", Counter, Sum, |c| c.counters.evicted_active, "Items evicted that had been accessed since they last reached the eviction end."),
    class("crawler_reclaimed", Counter, Sum, |c| c.counters.crawler_reclaimed, "Expired items freed by the background crawler."),
];

const fn link(
    name: &'static str,
    kind: Kind,
    merge: Merge,
    get: LinkGet,
    help: &'static str,
) -> Entry<LinkGet> {
    entry(name, kind, merge, get, help)
}

/// `stats cluster` per peer node: every shard's link to it, summed.
#[rustfmt::skip]
pub static LINKS: &[Entry<LinkGet>] = &[
    link("forwarded", Counter, Sum, |l| l.stats.forwarded, "Requests forwarded to this node."),
    link("failed", Counter, Sum, |l| l.stats.failed, "Forwarded requests failed (SERVER_ERROR backend failure, or left out of a multi-get)."),
    link("timeouts", Counter, Sum, |l| l.stats.timeouts, "Connects and requests to this node that ran out of time."),
    link("reconnects", Counter, Sum, |l| l.stats.reconnects, "Links to this node opened again after the first."),
    link("tls_failures", Counter, Sum, |l| l.stats.tls_failures, "TLS links to this node that failed before its first reply (certificate refused either way, no TLS there, handshake out of time), and TLS records that did not decrypt."),
    link("tls_handshakes", Counter, Sum, |l| l.stats.tls_handshakes, "TLS links to this node over which its first reply arrived."),
    link("in_flight", Gauge, Sum, |l| l.in_flight, "Requests sent to this node and not yet answered."),
    link("links_up", Gauge, Sum, |l| l.up.into(), "Shards whose link to this node is connected."),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn check<G>(table: &[Entry<G>]) {
        let mut seen = HashSet::new();
        for e in table {
            assert!(seen.insert(e.name), "{} twice", e.name);
            assert!(!e.help.trim().is_empty(), "{} has no help", e.name);
            assert!(
                e.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not a memcached/Prometheus name",
                e.name
            );
        }
    }

    #[test]
    fn every_entry_has_a_unique_name_and_help() {
        check(GENERAL);
        check(SLABS);
        check(ITEMS);
        check(LINKS);
    }

    #[test]
    fn merge_rules() {
        assert_eq!(Merge::Sum.apply(2, 3), 5);
        assert_eq!(Merge::Max.apply(2, 3), 3);
        assert_eq!(Merge::Max.apply(3, 2), 3);
        assert_eq!(Merge::First.apply(2, 3), 2);
    }

    #[test]
    fn a_short_row_reads_as_zeros() {
        let got: Vec<_> = entries(ITEMS, &[7]).map(|(e, v)| (e.name, v)).collect();
        assert_eq!(got[0], ("number", 7));
        assert_eq!(got[1], ("age", 0));
        assert_eq!(got.len(), ITEMS.len());
    }
}
