//! memcached's `stats` from shards that share nothing: every shard keeps plain
//! counters; a `stats` request gathers a snapshot from each shard by message,
//! merges them field by field (sum, max or first) and prints memcached's
//! lines in memcached's order.
//!
//! A snapshot is a list of rows, each a key (0 for the general counters, a
//! class id for `stats slabs`/`items`) and a fixed list of numbers whose
//! meaning and merge rule come from the tables in [`schema`], so every shard's
//! rows line up without names on the wire.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as Slot;

use store::{SlabClassStats, Store, StoreStats};

pub mod latency;
pub mod schema;
#[cfg(test)]
mod tests;

use schema::{Entry, GENERAL, GeneralGet, ITEMS, LINKS, SLABS, Shown, entries};

/// The engine's own counters on one shard (the store counts the rest).
#[derive(Clone, Debug, Default)]
pub struct ShardStats {
    pub curr_connections: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub cmd_meta: u64,
    pub protocol_errors: u64,
    /// Requests this shard sent to the shard owning their key.
    pub forwarded: u64,
    pub udp_requests: u64,
    /// Authentication attempts (-Y sets, SASL auth/step) and the failed ones.
    pub auth_cmds: u64,
    pub auth_errors: u64,
    /// UDP datagrams dropped on arrival (malformed, truncated, too many pending).
    pub udp_dropped: u64,
    /// UDP replies dropped for exceeding `network.udp_max_reply`.
    pub udp_replies_too_large: u64,
    /// UDP replies dropped by the per-source rate bound.
    pub udp_replies_rate_limited: u64,
    /// TLS handshakes that failed (-Z).
    pub ssl_handshake_errors: u64,
    /// Connections closed by `-o idle_timeout`.
    pub idle_kicks: u64,
    /// Times a connection stopped for the turn with requests still buffered (-R).
    pub conn_yields: u64,
    /// Requests this shard sent to the node owning their key.
    pub node_forwarded: u64,
    /// Of those, the ones answered `SERVER_ERROR backend failure` (or left
    /// out of a multi-get) because the peer was down, slow or broken.
    pub node_failed: u64,
    /// Replica records (item states, deletes) this shard sent as the acting
    /// owner of their key.
    pub replica_shipped: u64,
    /// Replica records not sent because the link was full or failing.
    pub replica_dropped: u64,
    /// Writes answered `SERVER_ERROR backend failure` under replication ack
    /// "all" because a live replica's record failed or could not be queued.
    pub replica_unconfirmed: u64,
    /// Replica records sent by the re-sync of a member that came back.
    pub replica_resynced: u64,
    pub replica_resync_gaps: u64,
    pub replica_read_failovers: u64,
    /// Reads in flight on a link that failed, sent to another replica (or
    /// run here) instead of failing.
    pub replica_read_retries: u64,
    /// Warm-up reads sent to a key's previous owner, and the copies they
    /// brought that were stored.
    pub warmup_reads: u64,
    pub warmup_filled: u64,
    /// Receive buffers the shard's pool hands the kernel (a gauge, set every
    /// turn).
    pub recv_buffers: u64,
    /// Latency histograms per command family, when they are on.
    pub latency: Option<Box<latency::Latency>>,
}

impl ShardStats {
    /// `stats reset`: counters restart; gauges stay.
    pub fn reset(&mut self) {
        *self = ShardStats {
            curr_connections: self.curr_connections,
            recv_buffers: self.recv_buffers,
            latency: self.latency.as_ref().map(|l| Box::new(l.cleared())),
            ..ShardStats::default()
        };
    }
}

/// Which snapshot a `stats` request needs from every shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    General,
    Slabs,
    Items,
    /// `stats conns`: text lines, concatenated.
    Conns,
    /// `stats cluster`: one row per peer link, keyed by ring member.
    Cluster,
    /// `stats shards` (corecache's): the general counters of each shard,
    /// one row per shard keyed by its id, never merged (for `/metrics`).
    Shards,
}

impl Section {
    pub(super) fn code(self) -> u8 {
        match self {
            Section::General => 0,
            Section::Slabs => 1,
            Section::Items => 2,
            Section::Conns => 3,
            Section::Cluster => 4,
            Section::Shards => 5,
        }
    }

    pub(super) fn from_code(c: u8) -> Option<Section> {
        Some(match c {
            0 => Section::General,
            1 => Section::Slabs,
            2 => Section::Items,
            3 => Section::Conns,
            4 => Section::Cluster,
            5 => Section::Shards,
            _ => return None,
        })
    }
}

/// This shard's snapshot of `section`, serialised: `[key u32][n u32][u64 × n]`
/// per row, or raw text for `Conns` (written by the caller).
pub(super) fn snapshot(section: Section, stats: &ShardStats, store: &Store, out: &mut Vec<u8>) {
    match section {
        Section::General => general_snapshot(stats, &store.stats(), out),
        Section::Slabs | Section::Items => class_snapshot(section, &store.slab_stats(), out),
        // Written by the caller, who has the connections and the links.
        Section::Conns | Section::Cluster | Section::Shards => {}
    }
}

/// `stats shards` rows from this key on are latency histograms: shard
/// `s`'s family `f` is the row `LATENCY_ROWS + s * 8 + f`.
const LATENCY_ROWS: u32 = 1 << 20;

/// Shard `id`'s general counters as the row keyed by its id, and its latency
/// histograms when they are on (`stats shards`).
pub(super) fn shard_snapshot(id: usize, stats: &ShardStats, store: &Store, out: &mut Vec<u8>) {
    let store = store.stats();
    put_row(
        out,
        id as u32,
        GENERAL.iter().map(|e| e.read(stats, &store)),
    );
    if let Some(l) = &stats.latency {
        for f in 0..latency::FAMILIES.len() {
            put_row(out, LATENCY_ROWS + id as u32 * 8 + f as u32, l.row(f));
        }
    }
}

fn general_snapshot(stats: &ShardStats, store: &StoreStats, out: &mut Vec<u8>) {
    put_row(out, 0, GENERAL.iter().map(|e| e.read(stats, store)));
}

fn class_snapshot(section: Section, classes: &[SlabClassStats], out: &mut Vec<u8>) {
    for c in classes {
        match section {
            Section::Slabs => put_row(out, c.id, SLABS.iter().map(|e| e.read(c))),
            // memcached lists only the classes that hold items.
            Section::Items if c.number > 0 => put_row(out, c.id, ITEMS.iter().map(|e| e.read(c))),
            _ => {}
        }
    }
}

pub(super) fn put_row(out: &mut Vec<u8>, key: u32, values: impl ExactSizeIterator<Item = u64>) {
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The rows of one shard's snapshot, `(key, values in table order)`; a
/// truncated row ends the walk rather than being misread.
pub fn rows(snapshot: &[u8]) -> impl Iterator<Item = (u32, Vec<u64>)> + '_ {
    let mut rest = snapshot;
    std::iter::from_fn(move || {
        let key = u32::from_le_bytes(rest.get(0..4)?.try_into().expect("4 bytes"));
        let n = u32::from_le_bytes(rest.get(4..8)?.try_into().expect("4 bytes")) as usize;
        let body = rest.get(8..8 + n * 8)?;
        let values = body
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        rest = &rest[8 + n * 8..];
        Some((key, values))
    })
}

/// Merged rows of several shards' snapshots.
#[derive(Debug, Default)]
pub(super) struct Merged {
    rows: BTreeMap<u32, Vec<u64>>,
    pub text: Vec<u8>,
}

impl Merged {
    pub(super) fn add(&mut self, section: Section, snapshot: &[u8]) {
        if section == Section::Conns {
            self.text.extend_from_slice(snapshot);
            return;
        }
        let rule = |i: usize| match section {
            Section::General => GENERAL.get(i).map(|e| e.merge),
            Section::Slabs => SLABS.get(i).map(|e| e.merge),
            Section::Items => ITEMS.get(i).map(|e| e.merge),
            Section::Cluster => LINKS.get(i).map(|e| e.merge),
            // Rows are keyed by shard: none is merged with another.
            Section::Conns | Section::Shards => None,
        };
        for (key, values) in rows(snapshot) {
            match self.rows.entry(key) {
                Slot::Vacant(slot) => {
                    slot.insert(values);
                }
                Slot::Occupied(mut slot) => {
                    for (i, (a, v)) in slot.get_mut().iter_mut().zip(values).enumerate() {
                        if let Some(merge) = rule(i) {
                            *a = merge.apply(*a, v);
                        }
                    }
                }
            }
        }
    }

    /// The merged general counters with their entries, in table order (zeros
    /// before any shard has answered).
    pub fn general(&self) -> impl Iterator<Item = (&'static Entry<GeneralGet>, u64)> + '_ {
        entries(GENERAL, self.row(0).unwrap_or(&[]))
    }

    /// One merged general counter.
    pub fn general_value(&self, name: &str) -> Option<u64> {
        self.general().find(|(e, _)| e.name == name).map(|(_, v)| v)
    }

    /// The merged keyed rows of `table` (`SLABS` or `ITEMS` by class id,
    /// `LINKS` by ring member, whichever section was gathered).
    pub fn classes<G>(
        &self,
        table: &'static [Entry<G>],
    ) -> impl Iterator<Item = (u32, impl Iterator<Item = (&'static Entry<G>, u64)> + '_)> + '_ {
        self.rows
            .iter()
            .map(move |(id, values)| (*id, entries(table, values)))
    }

    fn row(&self, key: u32) -> Option<&[u64]> {
        self.rows.get(&key).map(Vec::as_slice)
    }
}

/// Process-wide facts for the general `stats` reply.
pub(super) struct ProcessInfo<'a> {
    pub pid: u32,
    pub uptime: u64,
    pub time: u64,
    pub version: &'a str,
    pub max_connections: usize,
    pub threads: usize,
    pub hash_power_level: u32,
    /// `-o idle_timeout` is on (memcached prints `idle_kicks` only then).
    pub idle_timeout: bool,
    /// -Z: `ssl_handshake_errors` and the certificate lines are printed,
    /// `ssl_new_sessions` too with the session cache.
    pub tls: Option<TlsInfo>,
    /// Log watchers' counters (crate::logger::Logger::counts), memcached's
    /// `log_worker_dropped`, `log_worker_written`, `log_watcher_skipped`,
    /// `log_watcher_sent` and `log_watchers`.
    pub log: [u64; 5],
}

/// TLS facts for the general `stats` reply.
pub(super) struct TlsInfo {
    pub since_refresh: u64,
    pub new_sessions: Option<u64>,
}

fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// rusage of the whole process, in seconds with microseconds.
fn rusage() -> (String, String) {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let fmt = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (fmt(ru.ru_utime), fmt(ru.ru_stime))
}

/// The general `stats` reply, memcached's field order.
pub(super) fn format_general(out: &mut Vec<u8>, info: &ProcessInfo<'_>, merged: &Merged) {
    let (user, system) = rusage();
    general_text(out, info, (&user, &system), merged);
}

fn general_text(out: &mut Vec<u8>, info: &ProcessInfo<'_>, rusage: (&str, &str), merged: &Merged) {
    derived_lines(out, None, info, rusage, merged);
    for (e, v) in merged.general() {
        if e.shown == Shown::WithIdleTimeout && !info.idle_timeout
            || e.shown == Shown::WithTls && info.tls.is_none()
        {
            continue;
        }
        stat(out, e.name, v);
        derived_lines(out, Some(e.name), info, rusage, merged);
    }
    out.extend_from_slice(b"END\r\n");
}

/// memcached's general lines that no shard counts (process facts, computed
/// fields, features we do not have), printed after the schema entry `after`
/// (`None`: before the first) so the reply keeps memcached's order.
fn derived_lines(
    out: &mut Vec<u8>,
    after: Option<&str>,
    info: &ProcessInfo<'_>,
    (user, system): (&str, &str),
    merged: &Merged,
) {
    match after {
        None => {
            stat(out, "pid", info.pid);
            stat(out, "uptime", info.uptime);
            stat(out, "time", info.time);
            stat(out, "version", info.version);
            stat(out, "pointer_size", usize::BITS);
            stat(out, "rusage_user", user);
            stat(out, "rusage_system", system);
            stat(out, "max_connections", info.max_connections);
        }
        Some("rejected_connections") => {
            // A connection's state lives as long as the connection.
            let open = merged.general_value("curr_connections").unwrap_or(0);
            stat(out, "connection_structures", open);
        }
        Some("limit_maxbytes") => {
            stat(out, "accepting_conns", 1);
            stat(out, "listen_disabled_num", 0);
            stat(out, "time_in_listen_disabled_us", 0);
            stat(out, "threads", info.threads);
        }
        Some("conn_yields") => stat(out, "hash_power_level", info.hash_power_level),
        Some("slabs_moved") => {
            for (name, v) in crate::logger::COUNT_NAMES.iter().zip(info.log) {
                stat(out, name, v);
            }
        }
        Some("ssl_handshake_errors") => {
            if let Some(t) = &info.tls {
                if let Some(n) = t.new_sessions {
                    stat(out, "ssl_new_sessions", n);
                }
                stat(out, "time_since_server_cert_refresh", t.since_refresh);
            }
        }
        Some(_) => {}
    }
}

/// `stats slabs`.
pub(super) fn format_slabs(out: &mut Vec<u8>, merged: &Merged) {
    let mut active = 0;
    let mut malloced = 0u64;
    for (id, row) in merged.classes(SLABS) {
        let row: Vec<_> = row.collect();
        let value = |name: &str| row.iter().find(|(e, _)| e.name == name).map_or(0, |r| r.1);
        let pages = value("total_pages");
        // memcached lists the classes that hold pages.
        if pages == 0 {
            continue;
        }
        active += 1;
        malloced += pages * value("chunk_size") * value("chunks_per_page");
        for (e, v) in &row {
            stat(out, &format!("{id}:{}", e.name), v);
        }
    }
    stat(out, "active_slabs", active);
    stat(out, "total_malloced", malloced);
    out.extend_from_slice(b"END\r\n");
}

/// `stats shards`: `STAT <shard>:<name> <value>` for every general counter
/// of every shard; with latency histograms, `STAT <shard>:latency:<family>
/// <bucket counts, comma separated>,<sum ns>` after them (buckets as in
/// `latency::BOUNDS_NS`).
pub(super) fn format_shards(out: &mut Vec<u8>, merged: &Merged) {
    for (id, values) in &merged.rows {
        if *id < LATENCY_ROWS {
            for (e, v) in entries(GENERAL, values) {
                stat(out, &format!("{id}:{}", e.name), v);
            }
            continue;
        }
        let (shard, family) = ((id - LATENCY_ROWS) / 8, (id - LATENCY_ROWS) % 8);
        let Some(name) = latency::FAMILIES.get(family as usize) else {
            continue;
        };
        let list: Vec<String> = values.iter().map(u64::to_string).collect();
        stat(out, &format!("{shard}:latency:{name}"), list.join(","));
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats items`.
pub(super) fn format_items(out: &mut Vec<u8>, merged: &Merged) {
    for (id, row) in merged.classes(ITEMS) {
        for (e, v) in row {
            stat(out, &format!("items:{id}:{}", e.name), v);
        }
    }
    out.extend_from_slice(b"END\r\n");
}
