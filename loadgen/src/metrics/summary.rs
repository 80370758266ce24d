//! The result of a run: throughput, counters, and per-operation latency
//! summaries with the full latency-by-percentile curve, as printed in the
//! summary table and written by `--json` (and read back by `plot` and
//! `compare`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::counters::Counters;
use crate::workload::Workload;

/// The percentiles of the table, as (label, quantile).
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// One operation's latency distribution, in nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    pub count: u64,
    pub mean_ns: f64,
    /// Same order as [`PERCENTILES`].
    pub percentiles_ns: Vec<(String, u64)>,
    pub max_ns: u64,
    /// The latency-by-percentile curve on a "nines" axis: (nines, ns) where
    /// nines = -log10(1 - quantile), in steps of 0.05 up to the resolution
    /// the sample count allows.
    pub curve: Vec<(f64, u64)>,
}

impl OpSummary {
    pub fn from_histogram(h: &Histogram<u64>) -> OpSummary {
        let count = h.len();
        let mut curve = Vec::new();
        if count > 0 {
            let max_nines = (count as f64).log10();
            let mut i = 0;
            loop {
                let nines = i as f64 * 0.05;
                if nines > max_nines {
                    break;
                }
                let q = 1.0 - 10f64.powf(-nines);
                curve.push((nines, h.value_at_quantile(q)));
                i += 1;
            }
        }
        OpSummary {
            count,
            mean_ns: if count > 0 { h.mean() } else { 0.0 },
            percentiles_ns: PERCENTILES
                .iter()
                .map(|&(l, q)| {
                    (
                        l.to_string(),
                        if count > 0 { h.value_at_quantile(q) } else { 0 },
                    )
                })
                .collect(),
            max_ns: h.max(),
            curve,
        }
    }

    pub fn percentile(&self, label: &str) -> Option<u64> {
        self.percentiles_ns
            .iter()
            .find(|p| p.0 == label)
            .map(|p| p.1)
    }
}

/// CPU the load generator itself used during the measured window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// Seconds of CPU the client threads used (user + system).
    pub thread_cpu_s: f64,
    /// That as a share of the client threads' wall time (1.0 = every
    /// client thread busy all the time).
    pub busy: f64,
}

/// Everything a run produced, as written by `--json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Label of the target (`--name`, or the address).
    pub name: String,
    pub target: String,
    pub protocol: String,
    /// "closed" or "open".
    pub mode: String,
    /// Offered rate in requests/s (open loop only).
    pub rate: Option<f64>,
    pub cores: Vec<usize>,
    pub conns: usize,
    pub depth: usize,
    pub workload: Workload,
    pub warmup_s: f64,
    /// The measured window.
    pub duration_s: f64,
    /// Replies per second over the measured window.
    pub throughput: f64,
    /// Counters of the measured window (requests sent in it, and their replies).
    pub counters: Counters,
    /// Counters of the whole run: prefill, warm-up and measured window.
    pub whole_run: Counters,
    /// Open loop: requests that fell due but were never sent because every
    /// connection was at its depth (the server could not keep up).
    pub backlog: u64,
    pub cpu: CpuUse,
    /// `--server-stats`: the server's own counters over the measured window.
    #[serde(default)]
    pub server: Option<crate::server_stats::ServerDelta>,
    /// "get", "set" and "all".
    pub ops: BTreeMap<String, OpSummary>,
}

fn us(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

/// A latency for people: µs below 10 ms, ms below 10 s, else s.
pub fn human_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e7 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e10 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Groups thousands: 1234567 -> 1,234,567.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl RunResult {
    /// The human summary printed at the end of a run.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let c = &self.counters;
        let mode = match self.rate {
            Some(r) => format!("open loop at {} req/s", grouped(r as u64)),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            s,
            "{} ({}, {}): {mode}, {} conns x depth {} on cores {:?}",
            self.name, self.target, self.protocol, self.conns, self.depth, self.cores
        );
        let _ = writeln!(
            s,
            "  {:.2} s measured after {:.1} s warm-up: {} req/s, {} requests, {} replies, hit ratio {:.1}%",
            self.duration_s,
            self.warmup_s,
            grouped(self.throughput as u64),
            grouped(c.requests),
            grouped(c.replies),
            100.0 * c.hit_ratio()
        );
        let errs = c.errors.nonzero();
        if errs.is_empty() {
            let _ = writeln!(s, "  errors: none");
        } else {
            let list: Vec<String> = errs.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "  errors: {}", list.join(", "));
        }
        if self.backlog > 0 {
            let _ = writeln!(
                s,
                "  backlog: {} requests fell due but were never sent (server slower than --rate)",
                grouped(self.backlog)
            );
        }
        if let Some(srv) = &self.server {
            // Both sides count keys of gets plus sets, as memcached does.
            let ours = (c.get_keys + c.sets) as f64 / self.duration_s;
            let _ = writeln!(
                s,
                "  server stats over the window: {} (cmd_get + cmd_set)/s; loadgen {}/s, ratio {:.4}",
                grouped(srv.rate as u64),
                grouped(ours as u64),
                ours / srv.rate.max(1e-9)
            );
        }
        let _ = writeln!(
            s,
            "  loadgen cpu: {:.2} s, {:.0}% of its {} thread(s)",
            self.cpu.thread_cpu_s,
            100.0 * self.cpu.busy,
            self.cores.len()
        );
        let _ = write!(s, "  {:<4} {:>12} {:>8}", "op", "count", "mean");
        for (l, _) in PERCENTILES {
            let _ = write!(s, " {l:>8}");
        }
        let _ = writeln!(s, " {:>8}   (latency in µs)", "max");
        for (name, op) in &self.ops {
            if op.count == 0 {
                continue;
            }
            let _ = write!(
                s,
                "  {name:<4} {:>12} {:>8}",
                grouped(op.count),
                us(op.mean_ns as u64)
            );
            for (_, v) in &op.percentiles_ns {
                let _ = write!(s, " {:>8}", us(*v));
            }
            let _ = writeln!(s, " {:>8}", us(op.max_ns));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::hist::new_histogram;

    #[test]
    fn curve_reaches_the_nines_the_samples_support() {
        let mut h = new_histogram();
        for i in 1..=10_000u64 {
            h.record(i * 1000).unwrap();
        }
        let s = OpSummary::from_histogram(&h);
        assert_eq!(s.count, 10_000);
        let last = s.curve.last().unwrap();
        assert!((last.0 - 4.0).abs() < 1e-9, "{last:?}");
        // p99 of 1..=10000 µs is ~9.9 ms.
        let p99 = s.percentile("p99").unwrap();
        assert!((9_890_000..=9_910_000).contains(&p99), "{p99}");
        // The curve never decreases.
        assert!(s.curve.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn latencies_pick_a_readable_unit() {
        assert_eq!(human_ns(45_200), "45.2 µs");
        assert_eq!(human_ns(100_401_200), "100.4 ms");
        assert_eq!(human_ns(12_000_000_000), "12.00 s");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
