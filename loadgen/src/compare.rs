//! `compare`: the same workload against several targets, in alternation
//! (A B, B A, A B, ...) so that drift on a shared machine falls on every
//! target alike, then medians over the rounds and ratios to the first target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::client::{self, RunConfig, RunError};
use crate::metrics::summary::{PERCENTILES, grouped, human_ns};
use crate::metrics::{OpHists, OpSummary, RunResult};

#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
}

/// Medians over the rounds for one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Medians {
    pub name: String,
    pub target: String,
    pub throughput: f64,
    /// op -> (label -> ns): "mean", the percentiles, "max".
    pub latency_ns: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareResult {
    pub rounds: Vec<RunResult>,
    pub medians: Vec<Medians>,
    /// Per target, the histograms of every round merged (for `plot`).
    pub merged: Vec<RunResult>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The order of targets in round `r`: forward on even rounds, reversed on odd.
pub fn round_order(targets: usize, r: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets).collect();
    if r % 2 == 1 {
        order.reverse();
    }
    order
}

pub fn compare(
    base: &RunConfig,
    targets: &[Target],
    rounds: usize,
) -> Result<CompareResult, RunError> {
    let mut by_target: Vec<Vec<RunResult>> = vec![Vec::new(); targets.len()];
    let mut hists: Vec<OpHists> = vec![OpHists::default(); targets.len()];
    let mut all_rounds = Vec::new();
    for r in 0..rounds.max(1) {
        for t in round_order(targets.len(), r) {
            let mut cfg = base.clone();
            cfg.name = targets[t].name.clone();
            cfg.targets = vec![targets[t].addr];
            let out = client::run(&cfg)?;
            let p99 = out.result.ops["all"].percentile("p99").unwrap_or(0);
            eprintln!(
                "round {}/{} {}: {} req/s, p99 {}, errors {}",
                r + 1,
                rounds,
                cfg.name,
                grouped(out.result.throughput as u64),
                human_ns(p99),
                out.result.counters.errors.total()
            );
            hists[t].add(&out.hists);
            by_target[t].push(out.result.clone());
            all_rounds.push(out.result);
        }
    }
    let medians = by_target.iter().map(|runs| medians_of(runs)).collect();
    let merged = by_target
        .iter()
        .zip(&hists)
        .map(|(runs, h)| {
            let mut r = runs[0].clone();
            r.throughput = median(runs.iter().map(|x| x.throughput).collect());
            r.ops
                .insert("get".into(), OpSummary::from_histogram(&h.get));
            r.ops
                .insert("set".into(), OpSummary::from_histogram(&h.set));
            r.ops
                .insert("all".into(), OpSummary::from_histogram(&h.all()));
            r
        })
        .collect();
    Ok(CompareResult {
        rounds: all_rounds,
        medians,
        merged,
    })
}

fn medians_of(runs: &[RunResult]) -> Medians {
    let mut latency_ns = BTreeMap::new();
    for op in ["get", "set", "all"] {
        let present: Vec<&OpSummary> = runs
            .iter()
            .filter_map(|r| r.ops.get(op))
            .filter(|o| o.count > 0)
            .collect();
        if present.is_empty() {
            continue;
        }
        let mut m = BTreeMap::new();
        m.insert(
            "mean".to_string(),
            median(present.iter().map(|o| o.mean_ns).collect()),
        );
        for (label, _) in PERCENTILES {
            let v = present
                .iter()
                .map(|o| o.percentile(label).unwrap_or(0) as f64)
                .collect();
            m.insert(label.to_string(), median(v));
        }
        m.insert(
            "max".to_string(),
            median(present.iter().map(|o| o.max_ns as f64).collect()),
        );
        latency_ns.insert(op.to_string(), m);
    }
    Medians {
        name: runs[0].name.clone(),
        target: runs[0].target.clone(),
        throughput: median(runs.iter().map(|r| r.throughput).collect()),
        latency_ns,
    }
}

impl CompareResult {
    /// Side-by-side medians; every column after the first also shows its
    /// ratio to the first (throughput: higher is better; latency: lower).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let rounds = self.rounds.len() / self.medians.len().max(1);
        let _ = writeln!(
            s,
            "medians over {rounds} round(s); ratios are to {}",
            self.medians[0].name
        );
        let _ = write!(s, "{:<16}", "");
        for m in &self.medians {
            let _ = write!(s, " {:>24}", m.name);
        }
        let _ = writeln!(s);
        let base = &self.medians[0];
        let cell = |v: f64, b: f64, unit: &str, first: bool| {
            if first || b == 0.0 {
                format!("{v:.1}{unit}")
            } else {
                format!("{v:.1}{unit} ({:.2}x)", v / b)
            }
        };
        let _ = write!(s, "{:<16}", "throughput/s");
        for (i, m) in self.medians.iter().enumerate() {
            let v = if i == 0 || base.throughput == 0.0 {
                grouped(m.throughput as u64)
            } else {
                format!(
                    "{} ({:.2}x)",
                    grouped(m.throughput as u64),
                    m.throughput / base.throughput
                )
            };
            let _ = write!(s, " {v:>24}");
        }
        let _ = writeln!(s);
        for (op, labels) in &base.latency_ns {
            let mut order: Vec<&str> = vec!["mean"];
            order.extend(PERCENTILES.iter().map(|p| p.0));
            order.push("max");
            for label in order {
                let _ = write!(s, "{:<16}", format!("{op} {label} µs"));
                let b = labels.get(label).copied().unwrap_or(0.0) / 1e3;
                for (i, m) in self.medians.iter().enumerate() {
                    let v = m
                        .latency_ns
                        .get(op)
                        .and_then(|l| l.get(label))
                        .copied()
                        .unwrap_or(0.0)
                        / 1e3;
                    let _ = write!(s, " {:>24}", cell(v, b, "", i == 0));
                }
                let _ = writeln!(s);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_alternation() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(round_order(2, 0), vec![0, 1]);
        assert_eq!(round_order(2, 1), vec![1, 0]);
        assert_eq!(round_order(3, 2), vec![0, 1, 2]);
    }
}
