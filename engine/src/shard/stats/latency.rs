//! Server-side latency histograms per command family, kept by the shard a
//! request entered on: from its parse to its whole reply placed in the
//! connection's reply queue. A request that runs here is done when its reply
//! is written; one whose reply (or part of it: the runs of a multi-key get,
//! a `stats` gathered from every shard, a write held for its replicas) comes
//! from another shard or node is done when the last of its parts is placed,
//! in order, in the queue (`ReplyQueue::time_part`). The shard that runs a
//! forwarded request does not time it again.
//!
//! Fixed buckets (no allocation, one compare loop per timed request); on
//! only while the HTTP port is (`http.latency_histograms`), where `/metrics`
//! shows them as Prometheus histograms; one request in `latency_sample` is
//! timed.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proto::Request;

/// The command families, in the order of their rows.
pub const FAMILIES: [&str; 7] = ["get", "set", "delete", "arith", "touch", "meta", "other"];

/// Upper bounds of the buckets, in nanoseconds (a last one, +Inf, is implied).
pub const BOUNDS_NS: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000,
];

const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// One shard's histograms, of one request in `every`.
#[derive(Clone, Debug)]
pub struct Latency {
    counts: [[u64; BUCKETS]; FAMILIES.len()],
    sum_ns: [u64; FAMILIES.len()],
    every: u32,
    /// Requests until the next timed one.
    countdown: u32,
}

/// A start time for [`Latency::record_since`]: the CPU's time-stamp counter
/// on x86_64 (a few ns to read, against ~20 ns for `clock_gettime`; the
/// shards are pinned and the counter runs at a constant rate on the CPUs
/// this targets), `Instant` elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct Stamp(u64);

/// The time-stamp counter's nanoseconds per tick, measured once against the
/// monotonic clock.
static NS_PER_TICK: OnceLock<f64> = OnceLock::new();

#[cfg(target_arch = "x86_64")]
fn ticks() -> u64 {
    // SAFETY: rdtsc reads a counter; it has no preconditions on x86_64.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Measures the counter's rate (2 ms of spinning, once per process); call
/// before the first [`Stamp::now`] so that no request pays for it.
pub fn calibrate() -> f64 {
    *NS_PER_TICK.get_or_init(|| {
        if cfg!(not(target_arch = "x86_64")) {
            return 1.0;
        }
        let (t0, c0) = (Instant::now(), ticks());
        while t0.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let (ns, c1) = (t0.elapsed().as_nanos() as f64, ticks());
        if c1 > c0 { ns / (c1 - c0) as f64 } else { 1.0 }
    })
}

impl Stamp {
    #[inline]
    pub fn now() -> Stamp {
        Stamp(ticks())
    }

    /// Time since this stamp.
    pub fn elapsed(self) -> Duration {
        let ticks = ticks().saturating_sub(self.0);
        Duration::from_nanos((ticks as f64 * calibrate()) as u64)
    }
}

/// One timed request on its way: when it was parsed and its family.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    pub start: Stamp,
    pub family: u8,
}

impl Timed {
    #[inline]
    pub fn start(family: usize) -> Timed {
        Timed {
            start: Stamp::now(),
            family: family as u8,
        }
    }
}

/// A binary request's family, as its text equivalent's.
pub fn binary_family(request: &proto::binary::BinRequest<'_>) -> usize {
    use proto::binary::BinOp;
    match request.op {
        BinOp::Get { .. } | BinOp::Gat { .. } => 0,
        BinOp::Store { .. } | BinOp::Concat { .. } => 1,
        BinOp::Delete { .. } => 2,
        BinOp::Arith(_) => 3,
        BinOp::Touch { .. } => 4,
        _ => 6,
    }
}

/// A request's family: its index in [`FAMILIES`]. Multi-key gets are `get`,
/// keyless commands `other`.
pub fn family(request: &Request<'_>) -> usize {
    match request {
        Request::Get(_) => 0,
        Request::Store(_) => 1,
        Request::Delete(_) => 2,
        Request::Arith(_) => 3,
        Request::Touch(_) => 4,
        Request::MetaGet(_)
        | Request::MetaSet(_)
        | Request::MetaDelete(_)
        | Request::MetaArith(_)
        | Request::MetaDebug(_) => 5,
        _ => 6,
    }
}

impl Latency {
    /// Histograms that time one request in `every` (at least 1).
    pub fn new(every: u32) -> Latency {
        let every = every.max(1);
        Latency {
            counts: [[0; BUCKETS]; FAMILIES.len()],
            sum_ns: [0; FAMILIES.len()],
            every,
            countdown: 1,
        }
    }

    /// Empty histograms with the same sampling (`stats reset`).
    pub fn cleared(&self) -> Latency {
        Latency::new(self.every)
    }

    /// Whether this request is one to time.
    #[inline]
    pub fn sample(&mut self) -> bool {
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.every;
            return true;
        }
        false
    }

    /// The request this was sampled for did not run (a full channel): time
    /// the next one, its retry, instead.
    pub fn resample(&mut self) {
        self.countdown = 1;
    }

    /// A timed request is done: its reply is in the queue.
    #[inline]
    pub fn finish(&mut self, t: Timed) {
        self.record(t.family as usize, t.start.elapsed());
    }

    pub fn record(&mut self, family: usize, took: Duration) {
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        let bucket = BOUNDS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BOUNDS_NS.len());
        self.counts[family][bucket] += 1;
        self.sum_ns[family] += ns;
    }

    /// Family `f`'s row for a snapshot: the bucket counts (not cumulative),
    /// then the sum in nanoseconds.
    pub fn row(&self, f: usize) -> impl ExactSizeIterator<Item = u64> {
        let mut row = [0; BUCKETS + 1];
        row[..BUCKETS].copy_from_slice(&self.counts[f]);
        row[BUCKETS] = self.sum_ns[f];
        row.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_lands_in_the_first_bucket_that_holds_it() {
        let mut l = Latency::new(1);
        l.record(0, Duration::from_nanos(250));
        l.record(0, Duration::from_nanos(251));
        l.record(0, Duration::from_secs(1));
        let row: Vec<u64> = l.row(0).collect();
        assert_eq!(row.len(), BUCKETS + 1);
        assert_eq!((row[0], row[1], row[BUCKETS - 1]), (1, 1, 1));
        assert_eq!(row[BUCKETS], 250 + 251 + 1_000_000_000);
        assert!(l.row(1).all(|v| v == 0));
    }

    #[test]
    fn one_request_in_every_is_sampled() {
        let mut l = Latency::new(4);
        let timed: Vec<bool> = (0..9).map(|_| l.sample()).collect();
        assert_eq!(
            timed,
            [true, false, false, false, true, false, false, false, true]
        );
        let mut all = Latency::new(0);
        assert!((0..3).all(|_| all.sample()), "0 and 1 mean every request");
    }

    #[test]
    fn a_stamp_measures_the_monotonic_clock_s_time() {
        calibrate();
        let (stamp, start) = (Stamp::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (measured, real) = (stamp.elapsed(), start.elapsed());
        let error = measured.as_secs_f64() / real.as_secs_f64();
        assert!((0.9..1.1).contains(&error), "{measured:?} for {real:?}");
    }
}
