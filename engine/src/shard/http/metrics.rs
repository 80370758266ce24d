//! `/metrics` and `/stats` bodies, made from `stats` replies.
//!
//! `/metrics` is the Prometheus text exposition (format 0.0.4) of `stats
//! shards`: every general counter of the one stats schema
//! (`shard/stats/schema.rs`) with its help, as a `counter` or `gauge` by the
//! schema's kind, one sample per shard with a `shard` label. Counters are
//! named `corecache_<stat>_total`, gauges `corecache_<stat>`.

use std::collections::HashMap;
use std::io::Write;

use proto::client::{Reply, StatLines};

use super::answer::json_string;
use crate::shard::stats::schema::{GENERAL, Kind};

/// `(shard, value)` samples of one stat.
type Samples<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The Prometheus text of a `stats shards` reply (`STAT <shard>:<name> <value>`).
pub fn prometheus(lines: StatLines<'_>) -> Vec<u8> {
    let mut by_name: HashMap<&[u8], Samples<'_>> = HashMap::new();
    for (name, value) in lines {
        let Some(colon) = name.iter().position(|&b| b == b':') else {
            continue;
        };
        let (shard, stat) = (&name[..colon], &name[colon + 1..]);
        by_name.entry(stat).or_default().push((shard, value));
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
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The `/stats` JSON from the replies to `stats`, `stats settings`, `stats
/// slabs` and `stats items`: `{"stats": {...}, "settings": {...}, "slabs":
/// {...}, "items": {...}}`, numbers as JSON numbers and the rest as strings.
pub fn stats_json(replies: &[Reply<'_>]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(16 << 10);
    out.push(b'{');
    for (i, (section, reply)) in ["stats", "settings", "slabs", "items"]
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
    }

    #[test]
    fn stats_become_one_json_object() {
        let stats =
            reply(b"STAT pid 12\r\nSTAT version 1.2.3\r\nSTAT rusage_user 0.010\r\nEND\r\n");
        let settings = reply(b"STAT maxbytes 67108864\r\nSTAT evictions on\r\nEND\r\n");
        let slabs = reply(b"STAT active_slabs 0\r\nEND\r\n");
        let items = reply(b"END\r\n");
        let json = stats_json(&[stats, settings, slabs, items]).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\"stats\": {\"pid\": 12, \"version\": \"1.2.3\", \"rusage_user\": 0.010}, \
             \"settings\": {\"maxbytes\": 67108864, \"evictions\": \"on\"}, \
             \"slabs\": {\"active_slabs\": 0}, \"items\": {}}"
        );
        assert!(!is_json_number(b"01") && !is_json_number(b"1.") && !is_json_number(b"-1"));
    }
}
