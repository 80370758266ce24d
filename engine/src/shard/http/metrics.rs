//! `/metrics` and `/stats` bodies, made from `stats` replies.
//!
//! `/metrics` is the Prometheus text exposition (format 0.0.4) of `stats
//! shards`, written by prometheus-client's encoder
//! (`encoding::prometheus_text`): every general counter of the one stats
//! schema (`shard/stats/schema.rs`) with its help, as a `counter` or `gauge`
//! by the schema's kind, one sample per shard with a `shard` label. Counters
//! are named `corecache_<stat>_total` (the encoder appends `_total`), gauges
//! `corecache_<stat>`. With latency histograms on,
//! `corecache_request_duration_seconds` is a histogram per shard and command
//! family (`family` label).
//!
//! The values are a snapshot taken per scrape, not live metrics, so they
//! reach the encoder through a [`Collector`] that owns them ([`Scrape`])
//! rather than through registered counters.

use std::collections::HashMap;
use std::io::Write;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use proto::client::{Reply, StatLines};

use super::answer::json_string;
use crate::shard::stats::latency::BOUNDS_NS;
use crate::shard::stats::schema::{GENERAL, Kind};

/// The `Content-Type` of [`prometheus`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

const PREFIX: &str = "corecache";
/// The histogram's name under [`PREFIX`].
const HISTOGRAM: &str = "request_duration_seconds";
const HISTOGRAM_HELP: &str =
    "Time from a parsed request to its reply queued, on the shard that ran it, by command family.";

/// The Prometheus text of a `stats shards` reply (`STAT <shard>:<name> <value>`).
///
/// `None` only if the encoder fails, which writing into a `String` should
/// never make it do; a scrape must not be able to take the shard down.
pub fn prometheus(lines: StatLines<'_>) -> Option<Vec<u8>> {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(Scrape::from_lines(lines)));
    let mut out = String::with_capacity(64 << 10);
    prometheus_text::encode(&mut out, &registry).ok()?;
    Some(out.into_bytes())
}

/// One `stats shards` reply, owned: a registry's collectors are `'static`.
#[derive(Debug, Default)]
struct Scrape {
    /// The general stats present in the reply, in schema order.
    general: Vec<Family>,
    latency: Vec<Histogram>,
}

/// One schema entry's samples.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// `(shard, value)`.
    samples: Vec<(String, u64)>,
}

/// One shard's latency histogram of one command family.
#[derive(Debug)]
struct Histogram {
    shard: String,
    family: String,
    /// Per bucket (not cumulative), the last one +Inf.
    counts: Vec<u64>,
    sum_ns: u64,
}

impl Scrape {
    /// Rows that are not `<shard>:<stat> <u64>` (or a well-formed latency
    /// row) are left out.
    fn from_lines(lines: StatLines<'_>) -> Scrape {
        let mut by_name: HashMap<&[u8], Vec<(String, u64)>> = HashMap::new();
        let mut latency = Vec::new();
        for (name, value) in lines {
            let Some(colon) = name.iter().position(|&b| b == b':') else {
                continue;
            };
            let (shard, stat) = (&name[..colon], &name[colon + 1..]);
            let shard = String::from_utf8_lossy(shard).into_owned();
            match stat.strip_prefix(b"latency:") {
                Some(family) => latency.extend(Histogram::parse(shard, family, value)),
                None => {
                    if let Some(v) = number(value) {
                        by_name.entry(stat).or_default().push((shard, v));
                    }
                }
            }
        }
        let general = GENERAL
            .iter()
            .filter_map(|e| {
                Some(Family {
                    name: e.name,
                    help: e.help,
                    kind: e.kind,
                    samples: by_name.remove(e.name.as_bytes())?,
                })
            })
            .collect();
        Scrape { general, latency }
    }
}

impl Histogram {
    /// From a latency row's value, `c0,c1,…,c<BOUNDS_NS.len()>,sum_ns`.
    fn parse(shard: String, family: &[u8], value: &[u8]) -> Option<Histogram> {
        let mut values: Vec<u64> = value
            .split(|&b| b == b',')
            .map(number)
            .collect::<Option<_>>()?;
        if values.len() != BOUNDS_NS.len() + 2 {
            return None;
        }
        let sum_ns = values.pop()?;
        Some(Histogram {
            shard,
            family: String::from_utf8_lossy(family).into_owned(),
            counts: values,
            sum_ns,
        })
    }
}

fn number(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.general {
            let kind = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
            };
            let mut metric = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (shard, v) in &f.samples {
                let labels = [("shard", shard.as_str())];
                let sample = metric.encode_family(&labels)?;
                match f.kind {
                    Kind::Counter => ConstCounter::new(*v).encode(sample)?,
                    Kind::Gauge => ConstGauge::new(*v).encode(sample)?,
                }
            }
        }
        if self.latency.is_empty() {
            return Ok(());
        }
        let mut metric =
            encoder.encode_descriptor(HISTOGRAM, HISTOGRAM_HELP, None, MetricType::Histogram)?;
        for h in &self.latency {
            // The encoder makes the counts cumulative; the last bound is +Inf.
            let buckets: Vec<(f64, u64)> = BOUNDS_NS
                .iter()
                .map(|&ns| ns as f64 / 1e9)
                .chain([f64::INFINITY])
                .zip(h.counts.iter().copied())
                .collect();
            let labels = [("shard", h.shard.as_str()), ("family", h.family.as_str())];
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    h.sum_ns as f64 / 1e9,
                    h.counts.iter().sum(),
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

/// The `/stats` JSON from the replies to `stats`, `stats settings`, `stats
/// slabs`, `stats items` and `stats shards`: `{"stats": {...}, "settings":
/// {...}, "slabs": {...}, "items": {...}, "shards": {...}, "latency_bounds_ns":
/// [...]}`, numbers as JSON numbers and the rest as strings (a latency row is
/// the string of its comma-separated bucket counts and sum, the buckets'
/// upper bounds are `latency_bounds_ns`).
pub fn stats_json(replies: &[Reply<'_>]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(16 << 10);
    out.push(b'{');
    for (i, (section, reply)) in ["stats", "settings", "slabs", "items", "shards"]
        .iter()
        .zip(replies)
        .enumerate()
    {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let _ = write!(out, "\"{section}\": {{");
        match reply {
            Reply::Stats(lines) => {
                for (j, (name, value)) in lines.clone().enumerate() {
                    if j > 0 {
                        out.extend_from_slice(b", ");
                    }
                    json_string(&mut out, name);
                    out.extend_from_slice(b": ");
                    if is_json_number(value) {
                        out.extend_from_slice(value);
                    } else {
                        json_string(&mut out, value);
                    }
                }
            }
            // An empty section (`stats items` with no items) is a bare END.
            Reply::Values(_) => {}
            _ => return None,
        }
        out.push(b'}');
    }
    let bounds: Vec<String> = BOUNDS_NS.iter().map(u64::to_string).collect();
    let _ = write!(out, ", \"latency_bounds_ns\": [{}]", bounds.join(", "));
    out.push(b'}');
    Some(out)
}

/// Digits with at most one inner `.`, no leading zero unless alone: a
/// number JSON takes as it is.
fn is_json_number(v: &[u8]) -> bool {
    let mut parts = v.splitn(2, |&b| b == b'.');
    let int = parts.next().unwrap_or_default();
    let int_ok = !int.is_empty()
        && int.len() <= 19
        && int.iter().all(u8::is_ascii_digit)
        && (int.len() == 1 || int[0] != b'0');
    let frac_ok = parts
        .next()
        .is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit));
    int_ok && frac_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::client::{ReplyParse, parse_reply};

    fn reply(bytes: &[u8]) -> Reply<'_> {
        match parse_reply(bytes) {
            ReplyParse::Complete { reply, .. } => reply,
            other => panic!("{other:?}"),
        }
    }

    fn help(name: &str) -> &'static str {
        GENERAL.iter().find(|e| e.name == name).unwrap().help
    }

    #[test]
    fn every_stat_of_every_shard_is_typed_by_the_schema() {
        let text = b"STAT 0:curr_connections 2\r\nSTAT 1:curr_connections 3\r\nSTAT 0:get_hits 7\r\nSTAT 1:get_hits 0\r\nSTAT 0:no_such_stat 1\r\nSTAT 1:get_misses x\r\nEND\r\n";
        let Reply::Stats(lines) = reply(text) else {
            panic!()
        };
        let out = String::from_utf8(prometheus(lines).unwrap()).unwrap();
        // Schema order, not reply order; a stat outside the schema and a
        // value that is not a number are left out.
        assert_eq!(
            out,
            format!(
                "# HELP corecache_curr_connections {}\n\
                 # TYPE corecache_curr_connections gauge\n\
                 corecache_curr_connections{{shard=\"0\"}} 2\n\
                 corecache_curr_connections{{shard=\"1\"}} 3\n\
                 # HELP corecache_get_hits_total {}\n\
                 # TYPE corecache_get_hits_total counter\n\
                 corecache_get_hits_total{{shard=\"0\"}} 7\n\
                 corecache_get_hits_total{{shard=\"1\"}} 0\n",
                help("curr_connections"),
                help("get_hits"),
            )
        );
    }

    #[test]
    fn latency_rows_become_cumulative_histograms() {
        let mut text = b"STAT 1:latency:get ".to_vec();
        let mut counts = vec!["0"; BOUNDS_NS.len() + 1];
        counts[0] = "2";
        counts[3] = "1";
        text.extend_from_slice(counts.join(",").as_bytes());
        // A row with too few buckets is left out.
        text.extend_from_slice(b",3000\r\nSTAT 0:latency:set 1,2\r\nEND\r\n");
        let Reply::Stats(lines) = reply(&text) else {
            panic!()
        };
        let out = String::from_utf8(prometheus(lines).unwrap()).unwrap();
        let b = "corecache_request_duration_seconds_bucket{shard=\"1\",family=\"get\"";
        let les = [
            "2.5e-07", "5e-07", "1e-06", "2.5e-06", "5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001",
            "0.00025", "0.001", "0.01", "+Inf",
        ];
        let mut want = format!(
            "# HELP corecache_request_duration_seconds {HISTOGRAM_HELP}\n\
             # TYPE corecache_request_duration_seconds histogram\n"
        );
        for (i, le) in les.iter().enumerate() {
            let cumulative = if i < 3 { 2 } else { 3 };
            want += &format!("{b},le=\"{le}\"}} {cumulative}\n");
        }
        want += "corecache_request_duration_seconds_sum{shard=\"1\",family=\"get\"} 0.000003\n\
                 corecache_request_duration_seconds_count{shard=\"1\",family=\"get\"} 3\n";
        assert_eq!(out, want);
    }

    #[test]
    fn stats_become_one_json_object() {
        let stats =
            reply(b"STAT pid 12\r\nSTAT version 1.2.3\r\nSTAT rusage_user 0.010\r\nEND\r\n");
        let settings = reply(b"STAT maxbytes 67108864\r\nSTAT evictions on\r\nEND\r\n");
        let slabs = reply(b"STAT active_slabs 0\r\nEND\r\n");
        let items = reply(b"END\r\n");
        let shards = reply(b"STAT 0:get_hits 3\r\nEND\r\n");
        let json = stats_json(&[stats, settings, slabs, items, shards]).unwrap();
        let bounds: Vec<String> = BOUNDS_NS.iter().map(u64::to_string).collect();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            format!(
                "{{\"stats\": {{\"pid\": 12, \"version\": \"1.2.3\", \"rusage_user\": 0.010}}, \
                 \"settings\": {{\"maxbytes\": 67108864, \"evictions\": \"on\"}}, \
                 \"slabs\": {{\"active_slabs\": 0}}, \"items\": {{}}, \"shards\": {{\"0:get_hits\": 3}}, \
                 \"latency_bounds_ns\": [{}]}}",
                bounds.join(", ")
            )
        );
        assert!(!is_json_number(b"01") && !is_json_number(b"1.") && !is_json_number(b"-1"));
    }
}
