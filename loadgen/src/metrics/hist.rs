//! Latency histograms per operation (HdrHistogram, 3 significant digits,
//! nanoseconds from 1 ns to 100 s). Each thread records into its own and
//! hands a copy to the collector once per interval; merging is exact.

use hdrhistogram::Histogram;

use crate::workload::OpKind;

pub const SIGFIG: u8 = 3;
/// Latencies above this are recorded as this (and are errors in any case).
pub const MAX_NS: u64 = 100_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, SIGFIG).expect("static bounds are valid")
}

/// One histogram per operation kind.
#[derive(Clone, Debug)]
pub struct OpHists {
    pub get: Histogram<u64>,
    pub set: Histogram<u64>,
}

impl Default for OpHists {
    fn default() -> Self {
        OpHists {
            get: new_histogram(),
            set: new_histogram(),
        }
    }
}

impl OpHists {
    #[inline]
    pub fn record(&mut self, kind: OpKind, ns: u64) {
        let h = match kind {
            OpKind::Get => &mut self.get,
            OpKind::Set => &mut self.set,
        };
        h.saturating_record(ns.max(1));
    }

    /// Adds `other`'s counts into these; histograms share bounds, so this
    /// cannot fail.
    pub fn add(&mut self, other: &OpHists) {
        self.get.add(&other.get).expect("same bounds");
        self.set.add(&other.set).expect("same bounds");
    }

    /// Every operation together.
    pub fn all(&self) -> Histogram<u64> {
        let mut h = self.get.clone();
        h.add(&self.set).expect("same bounds");
        h
    }

    pub fn reset(&mut self) {
        self.get.reset();
        self.set.reset();
    }

    pub fn get_op(&self, name: &str) -> Option<Histogram<u64>> {
        match name {
            "get" => Some(self.get.clone()),
            "set" => Some(self.set.clone()),
            "all" => Some(self.all()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_threads_equals_recording_in_one() {
        let mut threads: Vec<OpHists> = (0..4).map(|_| OpHists::default()).collect();
        let mut single = OpHists::default();
        for i in 0..40_000u64 {
            // Distinct latency shapes per thread, including a slow tail on one.
            let t = (i % 4) as usize;
            let ns = 1_000 + (i * 37) % 50_000 + if t == 3 && i % 97 == 0 { 5_000_000 } else { 0 };
            let kind = if i % 10 == 0 {
                OpKind::Set
            } else {
                OpKind::Get
            };
            threads[t].record(kind, ns);
            single.record(kind, ns);
        }
        let mut merged = OpHists::default();
        for t in &threads {
            merged.add(t);
        }
        assert_eq!(merged.get.len(), 36_000);
        assert_eq!(merged.set.len(), 4_000);
        for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(
                merged.get.value_at_quantile(q),
                single.get.value_at_quantile(q)
            );
            assert_eq!(
                merged.all().value_at_quantile(q),
                single.all().value_at_quantile(q)
            );
        }
        assert_eq!(merged.get.max(), single.get.max());
        // The tail of thread 3 survives the merge.
        assert!(merged.all().value_at_quantile(0.999) >= 4_990_000);
    }

    #[test]
    fn precision_is_three_digits_and_huge_values_saturate() {
        let mut h = OpHists::default();
        h.record(OpKind::Get, 123_456);
        h.record(OpKind::Get, u64::MAX);
        let v = h.get.value_at_quantile(0.0);
        assert!((123_000..=123_600).contains(&v), "{v}");
        assert!(h.get.max() >= MAX_NS / 2);
    }
}
