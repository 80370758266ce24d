//! `/metrics` and `/stats` bodies, made from `stats` replies.
//!
//! `/metrics` is the Prometheus text exposition (format 0.0.4) of `stats
//! shards`: every general counter of the one stats schema
//! (`shard/stats/schema.rs`) with its help, as a `counter` or `gauge` by the
//! schema's kind, one sample per shard with a `shard` label. Counters are
//! named `corecache_<stat>_total`, gauges `corecache_<stat>`. With latency
//! histograms on, `corecache_request_duration_seconds` is a histogram per
//! shard and command family (`family` label).

use std::collections::HashMap;
use std::io::Write;

use proto::client::{Reply, StatLines};

use super::answer::json_string;
use crate::shard::stats::latency::BOUNDS_NS;
use crate::shard::stats::schema::{GENERAL, Kind};

const HISTOGRAM: &str = "corecache_request_duration_seconds";

/// `(shard, value)` samples of one stat.
type Samples<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The Prometheus text of a `stats shards` reply (`STAT <shard>:<name> <value>`).
pub fn prometheus(lines: StatLines<'_>) -> Vec<u8> {
    let mut by_name: HashMap<&[u8], Samples<'_>> = HashMap::new();
    let mut latency: Vec<(&[u8], &[u8], &[u8])> = Vec::new();
    for (name, value) in lines {
        let Some(colon) = name.iter().position(|&b| b == b':') else {
            continue;
        };
        let (shard, stat) = (&name[..colon], &name[colon + 1..]);
        match stat.strip_prefix(b"latency:") {
            Some(family) => latency.push((shard, family, value)),
            None => by_name.entry(stat).or_default().push((shard, value)),
        }
    }
    let mut out = Vec::with_capacity(64 << 10);
    for e in GENERAL {
        let Some(samples) = by_name.get(e.name.as_bytes()) else {
            continue;
        };
        let (kind, suffix) = match e.kind {
            Kind::Counter => ("counter", "_total"),
            Kind::Gauge => ("gauge", ""),
        };
        let name = format!("corecache_{}{suffix}", e.name);
        let _ = writeln!(out, "# HELP {name} {}", escape_help(e.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (shard, value) in samples {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"{shard=\"");
            out.extend_from_slice(shard);
            out.extend_from_slice(b"\"} ");
            out.extend_from_slice(value);
            out.push(b'\n');
        }
    }
    histograms(&mut out, &latency);
    out
}

/// `corecache_request_duration_seconds` from `(shard, family, "c0,c1,…,sum_ns")`.
fn histograms(out: &mut Vec<u8>, rows: &[(&[u8], &[u8], &[u8])]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP {HISTOGRAM} Time from a parsed request to its reply queued, on the shard that ran it, by command family."
    );
    let _ = writeln!(out, "# TYPE {HISTOGRAM} histogram");
    for (shard, family, values) in rows {
        let values: Option<Vec<u64>> = values
            .split(|&b| b == b',')
            .map(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .collect();
        let Some(values) = values.filter(|v| v.len() == BOUNDS_NS.len() + 2) else {
            continue;
        };
        let (counts, sum_ns) = (&values[..=BOUNDS_NS.len()], values[BOUNDS_NS.len() + 1]);
        let (shard, family) = (
            String::from_utf8_lossy(shard),
            String::from_utf8_lossy(family),
        );
        let labels = format!("shard=\"{shard}\",family=\"{family}\"");
        let mut cumulative = 0;
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            let le = match BOUNDS_NS.get(i) {
                Some(&ns) => format!("{}", ns as f64 / 1e9),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                out,
                "{HISTOGRAM}_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "{HISTOGRAM}_sum{{{labels}}} {}", sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{HISTOGRAM}_count{{{labels}}} {cumulative}");
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
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

    #[test]
    fn every_stat_of_every_shard_is_typed_by_the_schema() {
        let text = b"STAT 0:curr_connections 2\r\nSTAT 1:curr_connections 3\r\nSTAT 0:get_hits 7\r\nSTAT 1:get_hits 0\r\nEND\r\n";
        let Reply::Stats(lines) = reply(text) else {
            panic!()
        };
        let out = String::from_utf8(prometheus(lines)).unwrap();
        assert!(
            out.contains("# TYPE corecache_curr_connections gauge\n"),
            "{out}"
        );
        assert!(
            out.contains("corecache_curr_connections{shard=\"1\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("# TYPE corecache_get_hits_total counter\n"),
            "{out}"
        );
        assert!(
            out.contains("corecache_get_hits_total{shard=\"0\"} 7\n"),
            "{out}"
        );
        assert!(!out.contains("cmd_get"), "only the stats given: {out}");
        assert!(
            !out.contains(HISTOGRAM),
            "no histograms without latency rows"
        );
    }

    #[test]
    fn latency_rows_become_cumulative_histograms() {
        let mut text = b"STAT 1:latency:get ".to_vec();
        let mut counts = vec!["0"; BOUNDS_NS.len() + 1];
        counts[0] = "2";
        counts[3] = "1";
        text.extend_from_slice(counts.join(",").as_bytes());
        text.extend_from_slice(b",3000\r\nEND\r\n");
        let Reply::Stats(lines) = reply(&text) else {
            panic!()
        };
        let out = String::from_utf8(prometheus(lines)).unwrap();
        assert!(
            out.contains("# TYPE corecache_request_duration_seconds histogram\n"),
            "{out}"
        );
        let b = "corecache_request_duration_seconds_bucket{shard=\"1\",family=\"get\"";
        assert!(
            out.contains(&format!("{b},le=\"0.00000025\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{b},le=\"0.0000025\"}} 3\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{b},le=\"+Inf\"}} 3\n")), "{out}");
        assert!(
            out.contains("_sum{shard=\"1\",family=\"get\"} 0.000003\n"),
            "{out}"
        );
        assert!(
            out.contains("_count{shard=\"1\",family=\"get\"} 3\n"),
            "{out}"
        );
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
