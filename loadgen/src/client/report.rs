//! Messages from the client threads to the collector.

use crate::metrics::{Counters, OpHists};

/// One thread's deltas over one reporting interval.
pub struct Interval {
    pub thread: usize,
    /// Index into [`Plan::ticks`](super::plan::Plan::ticks); the drain
    /// report has index `ticks.len()`.
    pub index: usize,
    /// By phase of the request: prefill, warm-up, measured.
    pub counters: [Counters; 3],
    pub warmup: OpHists,
    pub measured: OpHists,
    /// Replies of any phase, for the progress line.
    pub replies_any: u64,
    /// The thread's CPU time so far, ns.
    pub cpu_ns: u64,
}

pub enum Report {
    /// Connected (and prefilled): waiting for the start.
    Ready {
        thread: usize,
        cpu_ns: u64,
    },
    Interval(Box<Interval>),
    Finished {
        backlog: u64,
    },
    Failed {
        thread: usize,
        error: String,
    },
}
