//! `--hdr-log`: the HdrHistogram interval log format (V2, compressed), one
//! line per interval and operation, tagged `get` / `set`, plus an untagged
//! line with every operation, which HdrHistogram's own tools
//! (HistogramLogProcessor, HdrHistogramVisualizer) read by default.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::hist::OpHists;

/// Collected intervals, written out at the end (the writer borrows its
/// output, so keeping it open across the run would tie lifetimes together
/// for no gain; a run's intervals are a few KB each).
pub struct HdrLog {
    start: SystemTime,
    intervals: Vec<(Duration, Duration, OpHists)>,
}

impl HdrLog {
    pub fn new(start: SystemTime) -> HdrLog {
        HdrLog {
            start,
            intervals: Vec::new(),
        }
    }

    /// An interval from `offset` (since the start) lasting `length`.
    pub fn push(&mut self, offset: Duration, length: Duration, hists: OpHists) {
        self.intervals.push((offset, length, hists));
    }

    pub fn write_to(&self, path: &Path) -> io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        self.write(&mut out)?;
        out.flush()
    }

    pub fn write<W: Write>(&self, out: &mut W) -> io::Result<()> {
        let mut ser = V2DeflateSerializer::new();
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment("corecache-loadgen latency log; values in nanoseconds")
            .with_start_time(self.start)
            .with_base_time(self.start)
            // Max column in milliseconds, as HdrHistogram's tools expect.
            .with_max_value_divisor(1e6);
        let mut log = builder.begin_log_with(out, &mut ser)?;
        for (offset, length, h) in &self.intervals {
            let ser_err = |e| io::Error::other(format!("hdr log: {e:?}"));
            log.write_histogram(&h.all(), *offset, *length, None)
                .map_err(ser_err)?;
            log.write_histogram(&h.get, *offset, *length, Tag::new("get"))
                .map_err(ser_err)?;
            log.write_histogram(&h.set, *offset, *length, Tag::new("set"))
                .map_err(ser_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::OpKind;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn the_log_reads_back_with_its_intervals_and_tags() {
        let mut log = HdrLog::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        for i in 0..3u64 {
            let mut h = OpHists::default();
            for j in 0..100 {
                h.record(OpKind::Get, 1000 * (i + 1) + j);
            }
            h.record(OpKind::Set, 5_000_000);
            log.push(Duration::from_secs(i), Duration::from_secs(1), h);
        }
        let mut bytes = Vec::new();
        log.write(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1700000000"), "{text}");
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(h) = entry.unwrap() {
                let tag = h.tag().map(|t| t.as_str().to_string());
                let decoded: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut base64_decode(h.encoded_histogram()).as_slice())
                    .unwrap();
                seen.push((h.start_timestamp().as_secs(), tag, decoded.len()));
            }
        }
        assert_eq!(seen.len(), 9);
        assert_eq!(seen[0], (0, None, 101));
        assert_eq!(seen[1], (0, Some("get".into()), 100));
        assert_eq!(seen[5], (1, Some("set".into()), 1));
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = T.iter().position(|&t| t == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}
