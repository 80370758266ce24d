//! CPU lists: the one grammar for `0-3,8,10-11` that the kernel's sysfs files
//! (`/sys/devices/system/node/node*/cpulist`), the server's `--cores` and the
//! loadgen's `--cores` all use, and the set of CPUs this process may run on.
//!
//! The parser keeps order and duplicates; what a duplicate means is the
//! caller's policy (the server merges them, the loadgen refuses them), see
//! [`dedup`] and [`has_duplicates`].

use thiserror::Error;

/// CPU ids at or above this are refused: no machine this runs on has more, and
/// a typo such as `0-40000` would otherwise allocate a huge list.
pub const MAX_CPU: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{text:?} is not a CPU list (write e.g. \"3\", \"0-3\" or \"0,2,4-6\"; ids below {MAX_CPU})"
)]
pub struct ListError {
    pub text: String,
}

/// Parses a CPU list. Parts are separated by commas and may be padded with
/// spaces; each is an id or an inclusive range `lo-hi` with `lo <= hi`. The
/// empty string is the empty list (the kernel writes it for a node without
/// CPUs); an empty part (`1,,2`) is an error.
pub fn parse_list(s: &str) -> Result<Vec<usize>, ListError> {
    let s = s.trim();
    let mut out = Vec::new();
    if s.is_empty() {
        return Ok(out);
    }
    let err = || ListError {
        text: s.to_string(),
    };
    let id = |t: &str| -> Result<usize, ListError> {
        let t = t.trim();
        // `usize::from_str` takes a leading '+'; a CPU id does not.
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        t.parse::<usize>()
            .ok()
            .filter(|&n| n < MAX_CPU)
            .ok_or_else(err)
    };
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (id(a)?, id(b)?),
            None => {
                let n = id(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(err());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// `cpus` without repeats, first occurrence kept.
pub fn dedup(cpus: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(cpus.len());
    for &c in cpus {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Whether some id occurs twice.
pub fn has_duplicates(cpus: &[usize]) -> bool {
    dedup(cpus).len() != cpus.len()
}

/// Formats a list back in the compact form (`0-3,6`), ranges for runs.
pub fn format_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// The CPUs in this process's affinity mask (what `taskset` allowed), in order.
pub fn allowed() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Pins the calling thread to `cpu`; false when the kernel refused (not in
/// the affinity mask, or no such CPU).
pub fn pin_current(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_ranges_and_lists_in_order() {
        let table: &[(&str, &[usize])] = &[
            ("", &[]),
            ("3", &[3]),
            ("0-3", &[0, 1, 2, 3]),
            ("0-3,8,10-11", &[0, 1, 2, 3, 8, 10, 11]),
            (" 1, 4-5 ,1", &[1, 4, 5, 1]),
            ("5,2", &[5, 2]),
            ("4095", &[4095]),
        ];
        for (text, want) in table {
            assert_eq!(parse_list(text).as_deref(), Ok(*want), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for bad in [
            "x", "1,,2", "-1", "3-1", "1-", "+1", "4096", "0-4096", "1 2", ",",
        ] {
            let e = parse_list(bad).unwrap_err();
            assert_eq!(e.text, bad.trim(), "{bad:?}");
            assert!(e.to_string().contains("is not a CPU list"));
        }
    }

    #[test]
    fn duplicates_are_the_callers_policy() {
        let l = parse_list("1,4-5,1").unwrap();
        assert!(has_duplicates(&l));
        assert_eq!(dedup(&l), vec![1, 4, 5]);
        assert!(!has_duplicates(&[0, 1, 2]));
    }

    #[test]
    fn formats_runs_as_ranges_and_round_trips() {
        assert_eq!(format_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(format_list(&[]), "");
        for text in ["0-3,6", "7", "0,2,4"] {
            assert_eq!(format_list(&parse_list(text).unwrap()), text);
        }
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed().is_empty());
    }
}
