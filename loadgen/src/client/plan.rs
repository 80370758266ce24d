//! What every client thread agrees on before the load starts: the timeline
//! (warm-up, measured window, reporting ticks) and each thread's share.

use std::net::SocketAddr;
use std::time::Duration;

use crate::wire::Protocol;
use crate::workload::Workload;

/// The run, as the client threads see it (all times in ns from the epoch).
#[derive(Clone, Debug)]
pub struct Plan {
    /// The servers; a thread's connection `i` is to `targets[i % targets.len()]`.
    pub targets: Vec<SocketAddr>,
    /// Client-side placement over several targets (`--cluster ketama`).
    pub ring: Option<cluster::Ring>,
    pub protocol: Protocol,
    pub workload: Workload,
    pub threads: usize,
    pub cores: Vec<usize>,
    pub pin: bool,
    /// Connections per thread (index = thread).
    pub conns: Vec<usize>,
    pub depth: usize,
    /// Requests per second per thread, open loop.
    pub rate_per_thread: Option<f64>,
    pub prefill: bool,
    pub warmup_ns: u64,
    pub measure_ns: u64,
    pub interval_ns: u64,
    /// How long to wait for replies to requests sent in the window.
    pub drain_ns: u64,
    pub udp_timeout_ns: u64,
    /// Poll the ring instead of sleeping in it (see `--spin`).
    pub spin: bool,
}

/// Kind of a reporting tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickKind {
    Warmup,
    Measured,
    /// After the window: replies to requests sent in it.
    Drain,
}

impl Plan {
    pub fn measure_end(&self) -> u64 {
        self.warmup_ns + self.measure_ns
    }

    /// Ends of the reporting intervals: every `interval` through the
    /// warm-up, a tick exactly at its end, then every `interval` through the
    /// window and one exactly at its end. Every thread reports at the same
    /// ticks, so the collector can merge by index. The drain report comes
    /// after these, with index `ticks().len()`.
    pub fn ticks(&self) -> Vec<(u64, TickKind)> {
        let mut out = Vec::new();
        let step = self.interval_ns.max(1);
        let mut t = step;
        while t < self.warmup_ns {
            out.push((t, TickKind::Warmup));
            t += step;
        }
        if self.warmup_ns > 0 {
            out.push((self.warmup_ns, TickKind::Warmup));
        }
        let end = self.measure_end();
        let mut t = self.warmup_ns + step;
        while t < end {
            out.push((t, TickKind::Measured));
            t += step;
        }
        out.push((end, TickKind::Measured));
        out
    }
}

pub fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Splits `total` as evenly as possible over `parts` (earlier parts get the extra).
pub fn split(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{KeyDist, ValueSizes};

    fn plan(warmup: u64, measure: u64, interval: u64) -> Plan {
        Plan {
            targets: vec!["127.0.0.1:1".parse().unwrap()],
            ring: None,
            protocol: Protocol::Text,
            workload: Workload {
                keys: 1,
                key_size: 2,
                value_sizes: ValueSizes::Fixed(1),
                get_weight: 1,
                set_weight: 0,
                mget: 1,
                key_dist: KeyDist::Uniform,
                seed: 0,
                verify: false,
                key_owner: None,
            },
            threads: 1,
            cores: vec![0],
            pin: false,
            conns: vec![1],
            depth: 1,
            rate_per_thread: None,
            prefill: false,
            warmup_ns: warmup,
            measure_ns: measure,
            interval_ns: interval,
            drain_ns: 0,
            udp_timeout_ns: 0,
            spin: false,
        }
    }

    #[test]
    fn ticks_cover_warmup_and_window_and_end_exactly() {
        use TickKind::*;
        assert_eq!(
            plan(25, 30, 10).ticks(),
            vec![
                (10, Warmup),
                (20, Warmup),
                (25, Warmup),
                (35, Measured),
                (45, Measured),
                (55, Measured)
            ]
        );
        assert_eq!(
            plan(0, 20, 10).ticks(),
            vec![(10, Measured), (20, Measured)]
        );
    }

    #[test]
    fn split_is_even() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(2, 2), vec![1, 1]);
        assert_eq!(split(32, 1), vec![32]);
    }
}
