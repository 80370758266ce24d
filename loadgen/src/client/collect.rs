//! The collector: starts the client threads together, merges their interval
//! reports tick by tick (progress line, interval log), and sums them into
//! the run's result.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use super::plan::{Plan, TickKind};
use super::report::{Interval, Report};
use super::{RunConfig, RunError};
use crate::metrics::hdrlog::HdrLog;
use crate::metrics::summary::{grouped, human_ns};
use crate::metrics::{Counters, CpuUse, OpHists, OpSummary, RunResult};
use crate::server_stats::{self, Sample, ServerDelta};

/// A finished run: the result, the merged histograms of the measured
/// window, and its interval log.
pub struct RunOutput {
    pub result: RunResult,
    pub hists: OpHists,
    pub log: HdrLog,
}

/// Reports of one tick, merged as they arrive.
#[derive(Default)]
struct Tick {
    reports: usize,
    replies_any: u64,
    errors: u64,
    warmup: OpHists,
    measured: OpHists,
}

fn progress_bar(cfg: &RunConfig, ticks: usize) -> ProgressBar {
    if !cfg.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(ticks as u64);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:20} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

pub fn collect(
    cfg: &RunConfig,
    plan: &Plan,
    rx: Receiver<Report>,
    starts: Vec<Sender<Instant>>,
) -> Result<RunOutput, RunError> {
    let threads = plan.threads;
    let mut cpu_start = vec![0u64; threads];
    let mut ready = 0;
    while ready < threads {
        match rx.recv() {
            Ok(Report::Ready { thread, cpu_ns }) => {
                cpu_start[thread] = cpu_ns;
                ready += 1;
            }
            Ok(Report::Failed { thread, error }) => return Err(RunError::Thread { thread, error }),
            Ok(_) => {}
            Err(_) => {
                return Err(RunError::Thread {
                    thread: 0,
                    error: "exited before starting".into(),
                });
            }
        }
    }
    // Every thread is connected (and prefilled): start the clock for all.
    let epoch = Instant::now();
    let wall = SystemTime::now();
    for s in &starts {
        let _ = s.send(epoch);
    }
    drop(starts);

    let ticks = plan.ticks();
    let bar = progress_bar(cfg, ticks.len());
    let mut slots: Vec<Tick> = (0..=ticks.len()).map(|_| Tick::default()).collect();
    let mut next = 0;
    let mut by_phase = [Counters::default(); 3];
    let mut totals = OpHists::default();
    let mut log = HdrLog::new(wall);
    let mut cpu_end = cpu_start.clone();
    let mut finished = 0;
    let mut backlog = 0;
    let mut failure = None;
    // --server-stats: the server's counters when the window opens, and
    // again once every thread has drained. The clients send nothing after
    // the window, so the second sample holds exactly what was sent in it.
    let stats_addr = cfg
        .server_stats
        .then(|| cfg.stats_addr.unwrap_or(cfg.targets[0]));
    let window_start = epoch + Duration::from_nanos(plan.warmup_ns);
    let mut first: Option<Sample> = None;
    let mut stats_failed = false;
    while finished < threads {
        let due = match (stats_addr, &first) {
            (Some(_), None) if !stats_failed => Some(window_start),
            _ => None,
        };
        let received = match due {
            Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let report = match received {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                let addr = stats_addr.expect("sampling only with an address");
                match server_stats::sample(addr) {
                    Ok(s) => first = Some(s),
                    Err(e) => {
                        eprintln!(
                            "corecache-loadgen: --server-stats: reading stats from {addr}: {e}"
                        );
                        stats_failed = true;
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match report {
            Report::Interval(iv) => {
                let Interval {
                    index,
                    counters,
                    warmup,
                    measured,
                    replies_any,
                    cpu_ns,
                    thread,
                    ..
                } = *iv;
                cpu_end[thread] = cpu_ns;
                for (sum, c) in by_phase.iter_mut().zip(&counters) {
                    sum.add(c);
                }
                let slot = &mut slots[index];
                slot.reports += 1;
                slot.replies_any += replies_any;
                slot.errors += counters.iter().map(|c| c.errors.total()).sum::<u64>();
                slot.warmup.add(&warmup);
                slot.measured.add(&measured);
                totals.add(&measured);
                // Ticks complete in order; show and log each once all
                // threads have reported it.
                while next < slots.len() && slots[next].reports == threads {
                    finish_tick(plan, &ticks, next, &slots[next], &bar, &mut log);
                    slots[next] = Tick {
                        reports: threads,
                        ..Tick::default()
                    };
                    next += 1;
                }
            }
            Report::Finished { backlog: b, .. } => {
                backlog += b;
                finished += 1;
            }
            Report::Failed { thread, error } => {
                failure.get_or_insert(RunError::Thread { thread, error });
                finished += 1;
            }
            Report::Ready { .. } => {}
        }
    }
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    let server = match (stats_addr, first) {
        (Some(addr), Some(a)) => match server_stats::sample(addr) {
            Ok(b) => Some(ServerDelta::between(a, b, plan.measure_ns as f64 / 1e9)),
            Err(e) => {
                eprintln!("corecache-loadgen: --server-stats: reading stats from {addr}: {e}");
                None
            }
        },
        _ => None,
    };

    let measured = by_phase[2];
    let mut whole = Counters::default();
    for c in &by_phase {
        whole.add(c);
    }
    let duration_s = plan.measure_ns as f64 / 1e9;
    let run_s = (plan.warmup_ns + plan.measure_ns) as f64 / 1e9;
    let cpu_s: f64 = cpu_end
        .iter()
        .zip(&cpu_start)
        .map(|(e, s)| e.saturating_sub(*s) as f64 / 1e9)
        .sum();
    let mut ops = BTreeMap::new();
    ops.insert("get".to_string(), OpSummary::from_histogram(&totals.get));
    ops.insert("set".to_string(), OpSummary::from_histogram(&totals.set));
    ops.insert("all".to_string(), OpSummary::from_histogram(&totals.all()));
    let result = RunResult {
        name: cfg.name.clone(),
        target: cfg
            .targets
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        protocol: cfg.protocol.as_str().to_string(),
        mode: if cfg.rate.is_some() { "open" } else { "closed" }.to_string(),
        rate: cfg.rate,
        cores: cfg.cores.clone(),
        conns: cfg.conns,
        depth: cfg.depth,
        workload: cfg.workload.clone(),
        warmup_s: plan.warmup_ns as f64 / 1e9,
        duration_s,
        throughput: measured.replies as f64 / duration_s,
        counters: measured,
        whole_run: whole,
        backlog,
        cpu: CpuUse {
            thread_cpu_s: cpu_s,
            busy: cpu_s / (run_s * threads as f64),
        },
        server,
        ops,
    };
    Ok(RunOutput {
        result,
        hists: totals,
        log,
    })
}

fn finish_tick(
    plan: &Plan,
    ticks: &[(u64, TickKind)],
    i: usize,
    t: &Tick,
    bar: &ProgressBar,
    log: &mut HdrLog,
) {
    let Some(&(end, kind)) = ticks.get(i) else {
        return; // the drain: nothing to show, nothing to log on its own
    };
    let start = if i == 0 { 0 } else { ticks[i - 1].0 };
    let secs = (end - start) as f64 / 1e9;
    let hist = if kind == TickKind::Warmup {
        &t.warmup
    } else {
        &t.measured
    };
    let all = hist.all();
    let p99 = if all.is_empty() {
        0
    } else {
        all.value_at_quantile(0.99)
    };
    let stage = match kind {
        TickKind::Warmup => format!("warm-up {:.0}s", end as f64 / 1e9),
        _ => format!(
            "measure {:.0}/{:.0}s",
            (end - plan.warmup_ns) as f64 / 1e9,
            plan.measure_ns as f64 / 1e9
        ),
    };
    bar.set_message(format!(
        "{stage}  {} req/s  p99 {}  errors {}",
        grouped((t.replies_any as f64 / secs) as u64),
        human_ns(p99),
        t.errors
    ));
    bar.inc(1);
    if kind == TickKind::Measured {
        log.push(
            Duration::from_nanos(start),
            Duration::from_nanos(end - start),
            t.measured.clone(),
        );
    }
}
