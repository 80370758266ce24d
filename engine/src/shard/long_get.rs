//! `get`/`gets` lines of any length, read as memcached reads them: in pieces
//! as they arrive, never whole.
//!
//! A get line whose end is not within [`PIECE`] bytes, or that holds more
//! than [`PIECE_KEYS`] keys, starts a *tail*: the connection remembers the
//! verb, and its complete keys (at most [`PIECE_KEYS`] keys or [`PIECE`]
//! bytes at a time) run as one multi-key get without its `END`; the piece
//! that holds the newline ends the reply with `END`. Each piece takes its
//! place in the reply queue like any request, so the `VALUE` blocks leave in
//! key order whichever shard owns each key. A key cut by the end of a
//! receive waits in the read buffer for the rest of it.
//!
//! Memory stays bounded by the piece, whatever the line's length: a
//! 1000-key multi-get of 100-byte keys and memcached's own 187 KB test line
//! (getset.t) are answered whole. The key bound is for the reply: values are
//! copied into it, so `get k k k ...` with thousands of repeats of a 1 MB key
//! would otherwise ask for gigabytes at once; in pieces, the connection's
//! output bound (and the bound on replies awaited from other shards, in
//! `request.rs`) pauses it between pieces until the client reads.

use memchr::{memchr, memrchr};
use proto::cmd::get::GetKind;
use proto::{ClientError, ErrorReply, Parse, Request};

use super::Core;
use super::client::{Client, Handled};
use super::request::Step;

/// Where a connection is inside a long get line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// More keys of a `get` or `gets`.
    Keys(GetKind),
    /// The line was refused (a bad key): the rest of it is dropped, as
    /// memcached drops it, and the next line is read as a new request.
    Discard,
}

/// The most of a get line handled at once, and how far a line's end is
/// looked for before the line is read in pieces.
pub const PIECE: usize = 16 << 10;
/// The most keys a piece holds: a line with more is read in pieces too.
pub const PIECE_KEYS: usize = 64;

/// Whether `line` holds more than [`PIECE_KEYS`] keys (a line shorter than
/// two bytes a key cannot, and is not scanned).
fn many_keys(line: &[u8]) -> bool {
    line.len() > 2 * PIECE_KEYS && memchr::memchr_iter(b' ', line).count() > PIECE_KEYS
}

/// Whether a request parsed as `parsed` may start a long get line, for
/// [`long_start`] to tell: a get line of more than `2 * PIECE_KEYS` bytes
/// (a shorter one cannot hold more than [`PIECE_KEYS`] keys, and ends
/// within a piece), or a line that did not parse whole.
pub fn may_start(parsed: &Parse<'_>) -> bool {
    match parsed {
        Parse::Complete {
            request: Request::Get(_),
            consumed,
        } => *consumed > 2 * PIECE_KEYS + 1,
        Parse::Complete { .. } => false,
        Parse::Incomplete { .. } | Parse::Invalid(_) => true,
    }
}

/// The verb and its length when `rest` starts a get line that does not end
/// within [`PIECE`] bytes.
fn long_start(rest: &[u8]) -> Option<(GetKind, usize)> {
    if rest.len() <= 2 * PIECE_KEYS {
        return None;
    }
    let (kind, verb) = if rest.starts_with(b"get ") {
        (GetKind::Get, 4)
    } else if rest.starts_with(b"gets ") {
        (GetKind::Gets, 5)
    } else {
        return None;
    };
    let window = &rest[..rest.len().min(PIECE)];
    match memchr(b'\n', window) {
        Some(nl) => many_keys(&window[..nl]).then_some((kind, verb)),
        None => (rest.len() >= PIECE).then_some((kind, verb)),
    }
}

/// The next piece of a long get line.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    /// Keys, the bytes they take, and whether they end the line.
    Keys(&'a [u8], usize, bool),
    /// A key is still arriving.
    Wait,
    /// A key longer than a piece.
    TooLong,
}

/// The next piece of a long get line at the start of `rest`.
fn next_piece(rest: &[u8]) -> Piece<'_> {
    let mut window = &rest[..rest.len().min(PIECE)];
    // At most PIECE_KEYS keys: end the window at the space after the last.
    let mut keys = 0;
    let mut in_key = false;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\n' => break,
            b' ' if in_key => {
                keys += 1;
                in_key = false;
                if keys == PIECE_KEYS {
                    window = &rest[..=i];
                    break;
                }
            }
            b' ' => {}
            _ => in_key = true,
        }
    }
    if let Some(nl) = memchr(b'\n', window) {
        let line = &rest[..nl];
        return Piece::Keys(line.strip_suffix(b"\r").unwrap_or(line), nl + 1, true);
    }
    match memrchr(b' ', window) {
        Some(sp) => Piece::Keys(&rest[..sp], sp + 1, false),
        None if window.len() == PIECE => Piece::TooLong,
        None => Piece::Wait,
    }
}

impl Core {
    /// Reads `rest` as (the continuation of) a long get line when it is one;
    /// `None` when it is an ordinary request for the parser.
    pub(super) fn long_get(&mut self, slot: u32, client: Client, rest: &[u8]) -> Option<Step> {
        let conn = self.net.conns.slot_mut(slot)?;
        let kind = match conn.get_tail {
            Some(Tail::Keys(kind)) => kind,
            Some(Tail::Discard) => {
                return Some(Step::Next(match memchr(b'\n', rest) {
                    Some(nl) => {
                        conn.get_tail = None;
                        nl + 1
                    }
                    None => rest.len(),
                }));
            }
            None => {
                let (kind, verb) = long_start(rest)?;
                conn.get_tail = Some(Tail::Keys(kind));
                return Some(Step::Next(verb));
            }
        };
        let (keys, consumed, last) = match next_piece(rest) {
            Piece::Keys(keys, consumed, last) => (keys, consumed, last),
            Piece::Wait => {
                conn.need = 0;
                return Some(Step::Stop(0));
            }
            Piece::TooLong => {
                // A "key" of 16 KiB: refused like any key over 250 bytes.
                conn.get_tail = Some(Tail::Discard);
                ErrorReply::from(ClientError::BadCommandLineFormat).encode(conn.replies.sink());
                return Some(Step::Next(0));
            }
        };
        if last {
            conn.get_tail = None;
        }
        if keys.iter().all(|&b| b == b' ') {
            if last {
                proto::cmd::get::encode_end(conn.replies.sink());
            }
            return Some(Step::Next(consumed));
        }
        // The piece as a get line of its own, for the one text parser.
        let mut line = Vec::with_capacity(keys.len() + 8);
        line.extend_from_slice(match kind {
            GetKind::Gets => b"gets ",
            _ => b"get ",
        });
        line.extend_from_slice(keys);
        line.extend_from_slice(b"\r\n");
        let handled = match proto::parse(&line, &self.limits) {
            Parse::Complete {
                request: Request::Get(get),
                ..
            } => self.route_multi_get(client, &get, usize::MAX, last),
            Parse::Invalid(invalid) => {
                // A bad key: the parser's answer (memcached's), then the rest
                // of the line is dropped.
                let conn = self.net.conns.slot_mut(slot)?;
                conn.get_tail = (!last).then_some(Tail::Discard);
                if invalid.reply {
                    invalid.error.encode(conn.replies.sink());
                }
                return Some(Step::Next(consumed));
            }
            _ => Handled::Done,
        };
        Some(match handled {
            Handled::Done => Step::Next(consumed),
            Handled::Stall => {
                // Nothing of the piece was sent: undo its `last` and retry
                // it whole when the channel drains.
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.get_tail = Some(Tail::Keys(kind));
                }
                self.net.pause(slot, super::net::conn::Pause::Mesh);
                Step::Stop(0)
            }
            Handled::Close => Step::Stop(consumed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(keys: usize, width: usize) -> Vec<u8> {
        let mut l = b"get".to_vec();
        for i in 0..keys {
            l.extend_from_slice(format!(" {i:0width$}").as_bytes());
        }
        l
    }

    #[test]
    fn only_get_lines_without_an_end_in_a_piece_are_long() {
        let long = line(2000, 20);
        assert_eq!(long_start(&long), Some((GetKind::Get, 4)));
        let mut gets = long.clone();
        gets.splice(0..3, b"gets".iter().copied());
        assert_eq!(long_start(&gets), Some((GetKind::Gets, 5)));
        let mut ended = line(PIECE_KEYS, 20);
        ended.extend_from_slice(b"\r\n");
        ended.resize(PIECE + 10, b'x');
        assert_eq!(
            long_start(&ended),
            None,
            "its line ends early, with few keys"
        );
        assert_eq!(long_start(&line(10, 20)), None, "short");
        let mut many = line(PIECE_KEYS + 1, 2);
        many.extend_from_slice(b"\r\n");
        assert_eq!(long_start(&many), Some((GetKind::Get, 4)), "many keys");
        let mut gat = long.clone();
        gat.splice(0..3, b"gat".iter().copied());
        assert_eq!(
            long_start(&gat),
            None,
            "memcached streams get and gets only"
        );
    }

    #[test]
    fn every_long_start_is_let_through_by_the_parse() {
        // The request path asks `long_start` only when `may_start` says so:
        // that must never hide a long line, whatever its keys, spacing,
        // verb, end or what follows it in the buffer.
        let limits = proto::Limits::default();
        let mut checked = 0;
        for verb in ["get", "gets", "gat 0", "set", "mg"] {
            for keys in [0, 1, 10, 30, 60, 63, 64, 65, 66, 100, 1000] {
                for width in [1, 2, 3, 20] {
                    for sep in [" ", "  "] {
                        let mut l = verb.as_bytes().to_vec();
                        for i in 0..keys {
                            l.extend_from_slice(format!("{sep}{i:0width$}").as_bytes());
                        }
                        for end in ["", "\r\n", "\n"] {
                            let mut buf = l.clone();
                            buf.extend_from_slice(end.as_bytes());
                            for tail in [0, 40, PIECE] {
                                let mut rest = buf.clone();
                                while rest.len() < buf.len() + tail {
                                    rest.extend_from_slice(b"get k\r\n");
                                }
                                if long_start(&rest).is_some() {
                                    let parsed = proto::parse(&rest, &limits);
                                    assert!(
                                        may_start(&parsed),
                                        "{:?}",
                                        &rest[..rest.len().min(80)]
                                    );
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 50, "the cases reach long lines: {checked}");
    }

    #[test]
    fn pieces_end_at_a_space_or_the_newline() {
        assert_eq!(next_piece(b"a b c"), Piece::Keys(b"a b", 4, false));
        assert_eq!(next_piece(b"a b\r\nget x"), Piece::Keys(b"a b", 5, true));
        assert_eq!(next_piece(b"abc"), Piece::Wait, "a key still arriving");
        assert_eq!(next_piece(&vec![b'k'; PIECE]), Piece::TooLong);
        let many = line(5000, 10);
        let Piece::Keys(keys, consumed, false) = next_piece(&many[4..]) else {
            panic!()
        };
        assert!(consumed <= PIECE && keys.len() + 1 == consumed);
        assert_eq!(keys.split(|&b| b == b' ').count(), PIECE_KEYS);
        let wide = line(100, 400);
        let Piece::Keys(keys, _, false) = next_piece(&wide[4..]) else {
            panic!()
        };
        assert!(
            keys.split(|&b| b == b' ').count() < PIECE_KEYS,
            "bytes bound first"
        );
    }
}
