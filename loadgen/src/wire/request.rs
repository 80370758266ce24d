//! A server-side request scanner for the null server: enough of the text
//! and meta protocols to frame every request and answer the ones a load
//! generator sends. It finds the frame first (line end, line-length guard,
//! data block) and only then looks at tokens. Stand-in for `proto::parse`.

pub const MAX_LINE: usize = 2048;
/// Largest value accepted (memcached's default -I); the null server stores
/// nothing, but it must not buffer without bound either.
pub const MAX_VALUE: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum Cmd<'a> {
    /// `get`/`gets`: the key list as it appeared (space separated).
    Get {
        keys: &'a [u8],
        cas: bool,
    },
    /// set/add/replace/append/prepend/cas with its data block consumed.
    Store {
        noreply: bool,
    },
    /// `mg <key> <flags>*`
    MetaGet {
        key: &'a [u8],
        flags: &'a [u8],
    },
    /// `ms <key> <len> <flags>*` with its data block consumed.
    MetaSet {
        key: &'a [u8],
        flags: &'a [u8],
    },
    /// `md`, `ma`: answered HD.
    MetaOther {
        flags: &'a [u8],
    },
    MetaNoop,
    Delete {
        noreply: bool,
    },
    Stats,
    Version,
    FlushAll,
    Quit,
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Scan<'a> {
    Complete(Cmd<'a>, usize),
    Incomplete,
    /// The reply memcached would send and how many bytes to skip.
    Invalid {
        reply: &'static [u8],
        skip: usize,
    },
    /// Reply, then close: the stream cannot be resynchronised cheaply.
    Fatal {
        reply: &'static [u8],
    },
}

fn parse_len(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

fn rest_after(line: &[u8], token_end: usize) -> &[u8] {
    line.get(token_end..).unwrap_or(&[]).trim_ascii()
}

/// Scans one request from the start of `buf`.
pub fn scan(buf: &[u8]) -> Scan<'_> {
    let window = &buf[..buf.len().min(MAX_LINE + 2)];
    let Some(nl) = memchr::memchr(b'\n', window) else {
        return if buf.len() > MAX_LINE {
            Scan::Invalid {
                reply: b"CLIENT_ERROR line too long\r\n",
                skip: buf.len(),
            }
        } else {
            Scan::Incomplete
        };
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let next = nl + 1;
    let mut toks = tokens(line);
    let Some(cmd) = toks.next() else {
        return Scan::Invalid {
            reply: b"ERROR\r\n",
            skip: next,
        };
    };
    let cmd_end = cmd.as_ptr() as usize - line.as_ptr() as usize + cmd.len();
    let done = |c| Scan::Complete(c, next);
    match cmd {
        b"get" | b"gets" => done(Cmd::Get {
            keys: rest_after(line, cmd_end),
            cas: cmd == b"gets",
        }),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            // key flags exptime bytes [cas] [noreply]: at most 6 arguments.
            let mut args: [&[u8]; 6] = [&[]; 6];
            let mut count = 0;
            for t in toks.by_ref().take(6) {
                args[count] = t;
                count += 1;
            }
            let args = &args[..count];
            let need = if cmd == b"cas" { 5 } else { 4 };
            let Some(len) = args
                .get(3)
                .and_then(|l| parse_len(l))
                .filter(|_| args.len() >= need)
            else {
                return Scan::Invalid {
                    reply: b"CLIENT_ERROR bad command line format\r\n",
                    skip: next,
                };
            };
            let noreply = args.last() == Some(&&b"noreply"[..]) && args.len() > need;
            data_then(buf, next, len, Cmd::Store { noreply })
        }
        b"mg" => {
            let Some(key) = toks.next() else {
                return Scan::Invalid {
                    reply: b"CLIENT_ERROR bad command line format\r\n",
                    skip: next,
                };
            };
            let key_end = key.as_ptr() as usize - line.as_ptr() as usize + key.len();
            done(Cmd::MetaGet {
                key,
                flags: rest_after(line, key_end),
            })
        }
        b"ms" => {
            let (Some(key), Some(len)) = (toks.next(), toks.next().and_then(parse_len)) else {
                return Scan::Invalid {
                    reply: b"CLIENT_ERROR bad command line format\r\n",
                    skip: next,
                };
            };
            let key_end = key.as_ptr() as usize - line.as_ptr() as usize + key.len();
            let after_key = rest_after(line, key_end);
            let flags = after_key
                .iter()
                .position(|&b| b == b' ')
                .map(|i| after_key[i + 1..].trim_ascii())
                .unwrap_or(&[]);
            data_then(buf, next, len, Cmd::MetaSet { key, flags })
        }
        b"md" | b"ma" => done(Cmd::MetaOther {
            flags: rest_after(line, cmd_end),
        }),
        b"mn" => done(Cmd::MetaNoop),
        b"delete" => done(Cmd::Delete {
            noreply: line.ends_with(b" noreply"),
        }),
        b"stats" => done(Cmd::Stats),
        b"version" => done(Cmd::Version),
        b"flush_all" => done(Cmd::FlushAll),
        b"quit" => done(Cmd::Quit),
        _ => done(Cmd::Unknown),
    }
}

fn data_then<'a>(buf: &'a [u8], data_start: usize, len: usize, cmd: Cmd<'a>) -> Scan<'a> {
    if len > MAX_VALUE {
        return Scan::Fatal {
            reply: b"SERVER_ERROR object too large for cache\r\n",
        };
    }
    let end = data_start + len;
    if buf.len() < end + 2 {
        return Scan::Incomplete;
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Scan::Invalid {
            reply: b"CLIENT_ERROR bad data chunk\r\n",
            skip: end + 2,
        };
    }
    Scan::Complete(cmd, end + 2)
}

/// Whether a meta flag list contains the single-letter flag `f`.
pub fn has_flag(flags: &[u8], f: u8) -> bool {
    tokens(flags).any(|t| t[0] == f)
}

/// The value of flag `f` (e.g. the opaque of `O123`).
pub fn flag_value(flags: &[u8], f: u8) -> Option<&[u8]> {
    tokens(flags).find(|t| t[0] == f).map(|t| &t[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_requests() {
        let cases: &[(&[u8], Scan)] = &[
            (
                b"get a b\r\n",
                Scan::Complete(
                    Cmd::Get {
                        keys: b"a b",
                        cas: false,
                    },
                    9,
                ),
            ),
            (
                b"gets a\r\nget",
                Scan::Complete(
                    Cmd::Get {
                        keys: b"a",
                        cas: true,
                    },
                    8,
                ),
            ),
            (
                b"set k 0 0 3\r\nabc\r\n",
                Scan::Complete(Cmd::Store { noreply: false }, 18),
            ),
            (
                b"set k 0 0 1 noreply\r\nx\r\n",
                Scan::Complete(Cmd::Store { noreply: true }, 24),
            ),
            (b"set k 0 0 3\r\nab", Scan::Incomplete),
            (
                b"mg k v k\r\n",
                Scan::Complete(
                    Cmd::MetaGet {
                        key: b"k",
                        flags: b"v k",
                    },
                    10,
                ),
            ),
            (
                b"ms k 2 T0\r\nhi\r\n",
                Scan::Complete(
                    Cmd::MetaSet {
                        key: b"k",
                        flags: b"T0",
                    },
                    15,
                ),
            ),
            (
                b"ms k 2\r\nhi\r\n",
                Scan::Complete(
                    Cmd::MetaSet {
                        key: b"k",
                        flags: b"",
                    },
                    12,
                ),
            ),
            (b"mn\r\n", Scan::Complete(Cmd::MetaNoop, 4)),
            (b"stats\r\n", Scan::Complete(Cmd::Stats, 7)),
            (b"bogus\r\n", Scan::Complete(Cmd::Unknown, 7)),
            (b"get a", Scan::Incomplete),
            (
                b"set k 0 0\r\n",
                Scan::Invalid {
                    reply: b"CLIENT_ERROR bad command line format\r\n",
                    skip: 11,
                },
            ),
            (
                b"set k 0 0 1\r\nxyz\r\n",
                Scan::Invalid {
                    reply: b"CLIENT_ERROR bad data chunk\r\n",
                    skip: 16,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(&scan(bytes), want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_huge_declared_value_is_refused_not_buffered() {
        assert!(matches!(
            scan(b"set k 0 0 2000000000\r\n"),
            Scan::Fatal { .. }
        ));
        assert!(matches!(scan(b"ms k 2000000\r\n"), Scan::Fatal { .. }));
    }

    #[test]
    fn a_line_without_end_is_bounded() {
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(matches!(scan(&long), Scan::Invalid { .. }));
        assert_eq!(scan(&long[..MAX_LINE]), Scan::Incomplete);
    }

    #[test]
    fn meta_flags() {
        assert!(has_flag(b"v k q", b'q'));
        assert!(!has_flag(b"v k", b'q'));
        assert_eq!(flag_value(b"v O42", b'O'), Some(&b"42"[..]));
    }
}
