//! memcached's `stats` from shards that share nothing: every shard keeps plain
//! counters; a `stats` request gathers a snapshot from each shard by message,
//! merges them field by field (sum, max or first) and prints memcached's
//! lines in memcached's order.
//!
//! A snapshot is a list of rows, each a key (0 for the general counters, a
//! class id for `stats slabs`/`items`) and a fixed list of numbers whose
//! meaning and merge rule come from the tables below, so every shard's rows
//! line up without names on the wire.

use std::collections::BTreeMap;

use store::{SlabClassStats, Store, StoreStats};

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
}

impl ShardStats {
    /// `stats reset`: counters restart; gauges stay.
    pub fn reset(&mut self) {
        *self = ShardStats {
            curr_connections: self.curr_connections,
            ..ShardStats::default()
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merge {
    Sum,
    Max,
    First,
}

use Merge::{First, Max, Sum};

/// The general counters, in memcached's `stats` order (after the process lines).
const GENERAL: &[(&str, Merge)] = &[
    ("curr_connections", Sum),
    ("total_connections", Sum),
    ("rejected_connections", Sum),
    ("cmd_get", Sum),
    ("cmd_set", Sum),
    ("cmd_flush", Sum),
    ("cmd_touch", Sum),
    ("cmd_meta", Sum),
    ("get_hits", Sum),
    ("get_misses", Sum),
    ("get_expired", Sum),
    ("get_flushed", Sum),
    ("delete_misses", Sum),
    ("delete_hits", Sum),
    ("incr_misses", Sum),
    ("incr_hits", Sum),
    ("decr_misses", Sum),
    ("decr_hits", Sum),
    ("cas_misses", Sum),
    ("cas_hits", Sum),
    ("cas_badval", Sum),
    ("touch_hits", Sum),
    ("touch_misses", Sum),
    ("store_too_large", Sum),
    ("store_no_memory", Sum),
    ("bytes_read", Sum),
    ("bytes_written", Sum),
    ("limit_maxbytes", Sum),
    ("hash_bytes", Sum),
    ("hash_is_expanding", Max),
    ("slabs_moved", Sum),
    ("bytes", Sum),
    ("curr_items", Sum),
    ("total_items", Sum),
    ("expired_unfetched", Sum),
    ("evicted_unfetched", Sum),
    ("evicted_active", Sum),
    ("evictions", Sum),
    ("reclaimed", Sum),
    ("crawler_reclaimed", Sum),
    ("crawler_items_checked", Sum),
    ("protocol_errors", Sum),
    ("cross_shard_requests", Sum),
    ("udp_requests", Sum),
    ("slab_bytes", Sum),
];

/// Where the process-wide lines go: after `total_connections`... memcached
/// prints `max_connections` and friends first; see `format_general`.
fn general_row(s: &ShardStats, st: &StoreStats) -> Vec<u64> {
    let v = vec![
        s.curr_connections,
        s.total_connections,
        s.rejected_connections,
        s.cmd_get,
        s.cmd_set,
        s.cmd_flush,
        s.cmd_touch,
        s.cmd_meta,
        st.get_hits,
        st.get_misses,
        st.get_expired,
        st.get_flushed,
        st.delete_misses,
        st.delete_hits,
        st.incr_misses,
        st.incr_hits,
        st.decr_misses,
        st.decr_hits,
        st.cas_misses,
        st.cas_hits,
        st.cas_badval,
        st.touch_hits,
        st.touch_misses,
        st.store_too_large,
        st.store_no_memory,
        s.bytes_read,
        s.bytes_written,
        st.limit_maxbytes,
        st.hash_bytes,
        st.hash_is_expanding as u64,
        st.slabs_moved,
        st.bytes,
        st.curr_items,
        st.total_items,
        st.expired_unfetched,
        st.evicted_unfetched,
        st.evicted_active,
        st.evictions,
        st.reclaimed,
        st.crawler_reclaimed,
        st.crawler_items_checked,
        s.protocol_errors,
        s.forwarded,
        s.udp_requests,
        st.slab_bytes,
    ];
    debug_assert_eq!(v.len(), GENERAL.len());
    v
}

/// `stats slabs` per class.
const SLABS: &[(&str, Merge)] = &[
    ("chunk_size", First),
    ("chunks_per_page", First),
    ("total_pages", Sum),
    ("total_chunks", Sum),
    ("used_chunks", Sum),
    ("free_chunks", Sum),
    ("free_chunks_end", Sum),
    ("get_hits", Sum),
    ("touch_hits", Sum),
    ("mem_requested", Sum),
];

/// `stats items` per class.
const ITEMS: &[(&str, Merge)] = &[
    ("number", Sum),
    ("age", Max),
    ("evicted", Sum),
    ("evicted_nonzero", Sum),
    ("evicted_time", Max),
    ("outofmemory", Sum),
    ("reclaimed", Sum),
    ("expired_unfetched", Sum),
    ("evicted_unfetched", Sum),
    ("evicted_active", Sum),
    ("crawler_reclaimed", Sum),
];

fn slab_row(c: &SlabClassStats) -> Vec<u64> {
    vec![
        c.chunk_size.into(),
        c.chunks_per_page.into(),
        c.total_pages.into(),
        c.total_chunks,
        c.used_chunks,
        c.free_chunks,
        0,
        c.counters.get_hits,
        c.counters.touch_hits,
        c.mem_requested,
    ]
}

fn item_row(c: &SlabClassStats) -> Vec<u64> {
    vec![
        c.number,
        c.age.into(),
        c.counters.evicted,
        c.counters.evicted_nonzero,
        c.counters.evicted_time.into(),
        c.counters.outofmemory,
        c.counters.reclaimed,
        c.counters.expired_unfetched,
        c.counters.evicted_unfetched,
        c.counters.evicted_active,
        c.counters.crawler_reclaimed,
    ]
}

/// Which snapshot a `stats` request needs from every shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    General,
    Slabs,
    Items,
    /// `stats conns`: text lines, concatenated.
    Conns,
}

impl Section {
    pub(super) fn code(self) -> u8 {
        match self {
            Section::General => 0,
            Section::Slabs => 1,
            Section::Items => 2,
            Section::Conns => 3,
        }
    }

    pub(super) fn from_code(c: u8) -> Option<Section> {
        Some(match c {
            0 => Section::General,
            1 => Section::Slabs,
            2 => Section::Items,
            3 => Section::Conns,
            _ => return None,
        })
    }
}

/// This shard's snapshot of `section`, serialised: `[key u32][n u32][u64 × n]`
/// per row, or raw text for `Conns` (written by the caller).
pub(super) fn snapshot(section: Section, stats: &ShardStats, store: &Store, out: &mut Vec<u8>) {
    let mut row = |key: u32, values: Vec<u64>| {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    match section {
        Section::General => row(0, general_row(stats, &store.stats())),
        Section::Slabs => store
            .slab_stats()
            .iter()
            .for_each(|c| row(c.id, slab_row(c))),
        Section::Items => store
            .slab_stats()
            .iter()
            .filter(|c| c.number > 0)
            .for_each(|c| row(c.id, item_row(c))),
        Section::Conns => {}
    }
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
        let table = match section {
            Section::General => GENERAL,
            Section::Slabs => SLABS,
            _ => ITEMS,
        };
        let mut rest = snapshot;
        while rest.len() >= 8 {
            let key = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
            let n = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
            let Some(body) = rest.get(8..8 + n * 8) else {
                break;
            };
            let values = body
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
            match self.rows.get_mut(&key) {
                None => {
                    self.rows.insert(key, values.collect());
                }
                Some(acc) => {
                    for ((a, v), (_, rule)) in acc.iter_mut().zip(values).zip(table) {
                        *a = match rule {
                            Sum => *a + v,
                            Max => (*a).max(v),
                            First => *a,
                        };
                    }
                }
            }
            rest = &rest[8 + n * 8..];
        }
    }

    fn row(&self, key: u32) -> Option<&Vec<u64>> {
        self.rows.get(&key)
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
    stat(out, "pid", info.pid);
    stat(out, "uptime", info.uptime);
    stat(out, "time", info.time);
    stat(out, "version", info.version);
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", user);
    stat(out, "rusage_system", system);
    stat(out, "max_connections", info.max_connections);
    let values = merged
        .row(0)
        .cloned()
        .unwrap_or_else(|| vec![0; GENERAL.len()]);
    let value = |name: &str| {
        GENERAL
            .iter()
            .position(|(n, _)| *n == name)
            .map_or(0, |i| values[i])
    };
    let early = [
        "curr_connections",
        "total_connections",
        "rejected_connections",
    ];
    for name in early {
        stat(out, name, value(name));
    }
    stat(out, "connection_structures", value("curr_connections"));
    for (i, (name, _)) in GENERAL.iter().enumerate() {
        if early.contains(name) {
            continue;
        }
        match *name {
            "bytes_read" => {
                stat(out, "auth_cmds", 0);
                stat(out, "auth_errors", 0);
                stat(out, name, values[i]);
            }
            "limit_maxbytes" => {
                stat(out, name, values[i]);
                stat(out, "accepting_conns", 1);
                stat(out, "listen_disabled_num", 0);
                stat(out, "time_in_listen_disabled_us", 0);
                stat(out, "threads", info.threads);
                stat(out, "conn_yields", 0);
                stat(out, "hash_power_level", info.hash_power_level);
            }
            _ => stat(out, name, values[i]),
        }
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats slabs`.
pub(super) fn format_slabs(out: &mut Vec<u8>, merged: &Merged) {
    let mut active = 0;
    let mut malloced = 0u64;
    for (id, values) in &merged.rows {
        if values.get(2).copied().unwrap_or(0) == 0 {
            continue;
        }
        active += 1;
        malloced += values[2] * values[0] * values[1];
        for ((name, _), v) in SLABS.iter().zip(values) {
            stat(out, &format!("{id}:{name}"), v);
        }
    }
    stat(out, "active_slabs", active);
    stat(out, "total_malloced", malloced);
    out.extend_from_slice(b"END\r\n");
}

/// `stats items`.
pub(super) fn format_items(out: &mut Vec<u8>, merged: &Merged) {
    for (id, values) in &merged.rows {
        for ((name, _), v) in ITEMS.iter().zip(values) {
            stat(out, &format!("items:{id}:{name}"), v);
        }
    }
    out.extend_from_slice(b"END\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_of(rows: &[(u32, Vec<u64>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, values) in rows {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&(values.len() as u32).to_le_bytes());
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn slab_rows_merge_by_rule() {
        let mut m = Merged::default();
        let a = snapshot_of(&[(3, vec![96, 10922, 2, 21844, 100, 21744, 0, 5, 1, 9000])]);
        let b = snapshot_of(&[
            (3, vec![96, 10922, 1, 10922, 50, 10872, 0, 7, 0, 4500]),
            (5, vec![152, 6898, 1, 6898, 1, 6897, 0, 0, 0, 140]),
        ]);
        m.add(Section::Slabs, &a);
        m.add(Section::Slabs, &b);
        assert_eq!(
            m.row(3).unwrap(),
            &vec![96, 10922, 3, 32766, 150, 32616, 0, 12, 1, 13500]
        );
        assert_eq!(m.row(5).unwrap()[0], 152);
        let mut out = Vec::new();
        format_slabs(&mut out, &m);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("STAT 3:chunk_size 96\r\n"));
        assert!(text.contains("STAT 3:total_pages 3\r\n"));
        assert!(text.contains("STAT active_slabs 2\r\n"));
        assert!(text.ends_with("END\r\n"));
    }

    #[test]
    fn general_counters_sum_and_gauges_take_the_max() {
        let mut m = Merged::default();
        let mut one = vec![0u64; GENERAL.len()];
        one[0] = 2; // curr_connections
        let hx = GENERAL
            .iter()
            .position(|(n, _)| *n == "hash_is_expanding")
            .unwrap();
        one[hx] = 1;
        let mut two = vec![0u64; GENERAL.len()];
        two[0] = 3;
        m.add(Section::General, &snapshot_of(&[(0, one)]));
        m.add(Section::General, &snapshot_of(&[(0, two)]));
        let info = ProcessInfo {
            pid: 1,
            uptime: 2,
            time: 3,
            version: "1.6.18-x",
            max_connections: 1024,
            threads: 2,
            hash_power_level: 16,
        };
        let mut out = Vec::new();
        format_general(&mut out, &info, &m);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "STAT pid 1\r\nSTAT uptime 2\r\nSTAT time 3\r\nSTAT version 1.6.18-x\r\n"
        ));
        assert!(text.contains("STAT curr_connections 5\r\n"), "{text}");
        assert!(text.contains("STAT hash_is_expanding 1\r\n"));
        assert!(text.contains("STAT threads 2\r\n"));
        assert!(text.ends_with("END\r\n"));
        // Every line is a STAT line or END.
        assert!(text.lines().all(|l| l.starts_with("STAT ") || l == "END"));
    }

    #[test]
    fn truncated_snapshots_are_ignored_not_misread() {
        let mut m = Merged::default();
        let s = snapshot_of(&[(1, vec![1, 2, 3])]);
        m.add(Section::Items, &s[..s.len() - 1]);
        assert!(m.row(1).is_none());
    }
}
