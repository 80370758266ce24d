//! What the null server answers: every get hits with the same value, every
//! store succeeds, nothing is stored.

use super::stats::{Stats, ThreadStats};
use crate::wire::request::{Cmd, flag_value, has_flag};

pub enum After {
    Continue,
    Close,
}

/// Appends the reply to `cmd` to `out`, counting it in `mine`.
pub fn answer(cmd: Cmd, value: &[u8], out: &mut Vec<u8>, mine: &ThreadStats, all: &Stats) -> After {
    let mut num = itoa::Buffer::new();
    match cmd {
        Cmd::Get { keys, cas } => {
            let mut n = 0;
            for key in keys.split(|&b| b == b' ').filter(|k| !k.is_empty()) {
                n += 1;
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                out.extend_from_slice(b" 0 ");
                out.extend_from_slice(num.format(value.len()).as_bytes());
                if cas {
                    out.extend_from_slice(b" 1");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"END\r\n");
            ThreadStats::add(&mine.cmd_get, n);
        }
        Cmd::Store { noreply } => {
            ThreadStats::add(&mine.cmd_set, 1);
            if !noreply {
                out.extend_from_slice(b"STORED\r\n");
            }
        }
        Cmd::MetaGet { key, flags } => {
            ThreadStats::add(&mine.cmd_get, 1);
            if has_flag(flags, b'v') {
                out.extend_from_slice(b"VA ");
                out.extend_from_slice(num.format(value.len()).as_bytes());
            } else {
                out.extend_from_slice(b"HD");
            }
            echo_meta_flags(out, key, flags);
            out.extend_from_slice(b"\r\n");
            if has_flag(flags, b'v') {
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
        }
        Cmd::MetaSet { key, flags } => {
            ThreadStats::add(&mine.cmd_set, 1);
            if !has_flag(flags, b'q') {
                out.extend_from_slice(b"HD");
                echo_meta_flags(out, key, flags);
                out.extend_from_slice(b"\r\n");
            }
        }
        Cmd::MetaOther { flags } => {
            if !has_flag(flags, b'q') {
                out.extend_from_slice(b"HD\r\n");
            }
        }
        Cmd::MetaNoop => out.extend_from_slice(b"MN\r\n"),
        Cmd::Delete { noreply } => {
            if !noreply {
                out.extend_from_slice(b"DELETED\r\n");
            }
        }
        Cmd::Stats => all.write(out),
        Cmd::Version => out.extend_from_slice(b"VERSION 1.6.0-corecache-null\r\n"),
        Cmd::FlushAll => out.extend_from_slice(b"OK\r\n"),
        Cmd::Quit => return After::Close,
        Cmd::Unknown => out.extend_from_slice(b"ERROR\r\n"),
    }
    After::Continue
}

/// The meta return flags a load generator relies on: `k` (key) and `O` (opaque).
fn echo_meta_flags(out: &mut Vec<u8>, key: &[u8], flags: &[u8]) {
    if has_flag(flags, b'k') {
        out.extend_from_slice(b" k");
        out.extend_from_slice(key);
    }
    if let Some(o) = flag_value(flags, b'O') {
        out.extend_from_slice(b" O");
        out.extend_from_slice(o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::request::{Scan, scan};

    fn reply(req: &[u8]) -> Vec<u8> {
        let all = Stats::new(1);
        let mut out = Vec::new();
        let Scan::Complete(cmd, _) = scan(req) else {
            panic!("{req:?}")
        };
        answer(cmd, b"abc", &mut out, &all.threads[0], &all);
        out
    }

    #[test]
    fn table_of_answers() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"get a b\r\n",
                b"VALUE a 0 3\r\nabc\r\nVALUE b 0 3\r\nabc\r\nEND\r\n",
            ),
            (b"gets a\r\n", b"VALUE a 0 3 1\r\nabc\r\nEND\r\n"),
            (b"set k 0 0 1\r\nx\r\n", b"STORED\r\n"),
            (b"set k 0 0 1 noreply\r\nx\r\n", b""),
            (b"mg k v k\r\n", b"VA 3 kk\r\nabc\r\n"),
            (b"mg k O9 v\r\n", b"VA 3 O9\r\nabc\r\n"),
            (b"mg k\r\n", b"HD\r\n"),
            (b"ms k 1\r\nx\r\n", b"HD\r\n"),
            (b"ms k 1 q\r\nx\r\n", b""),
            (b"mn\r\n", b"MN\r\n"),
            (b"nonsense\r\n", b"ERROR\r\n"),
        ];
        for (req, want) in cases {
            assert_eq!(reply(req), *want, "{:?}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn stats_count_keys_and_sets() {
        let all = Stats::new(2);
        let mut out = Vec::new();
        for req in [
            &b"get a b c\r\n"[..],
            b"set k 0 0 1\r\nx\r\n",
            b"mg k v\r\n",
        ] {
            let Scan::Complete(cmd, _) = scan(req) else {
                panic!()
            };
            answer(cmd, b"v", &mut out, &all.threads[1], &all);
        }
        out.clear();
        all.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("STAT cmd_get 4\r\n"), "{text}");
        assert!(text.contains("STAT cmd_set 1\r\n"), "{text}");
        assert!(text.ends_with("END\r\n"));
    }
}
