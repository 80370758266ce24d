//! Server-side latency histograms per command family, on the shard that runs
//! the request: from the parsed request to its reply written into the queue
//! (the client's, or the batch back to the shard that forwarded it). The
//! hop between shards is not in it.
//!
//! Fixed buckets (no allocation, one compare loop per request); on only
//! while the HTTP port is (`http.latency_histograms`), where `/metrics`
//! shows them as Prometheus histograms.

use std::time::Duration;

use proto::Request;

/// The command families, in the order of their rows.
pub const FAMILIES: [&str; 7] = ["get", "set", "delete", "arith", "touch", "meta", "other"];

/// Upper bounds of the buckets, in nanoseconds (a last one, +Inf, is implied).
pub const BOUNDS_NS: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000,
];

const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// One shard's histograms.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    counts: [[u64; BUCKETS]; FAMILIES.len()],
    sum_ns: [u64; FAMILIES.len()],
}

/// A request's family: its index in [`FAMILIES`].
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
        let mut l = Latency::default();
        l.record(0, Duration::from_nanos(250));
        l.record(0, Duration::from_nanos(251));
        l.record(0, Duration::from_secs(1));
        let row: Vec<u64> = l.row(0).collect();
        assert_eq!(row.len(), BUCKETS + 1);
        assert_eq!((row[0], row[1], row[BUCKETS - 1]), (1, 1, 1));
        assert_eq!(row[BUCKETS], 250 + 251 + 1_000_000_000);
        assert!(l.row(1).all(|v| v == 0));
    }
}
