//! Finding the command line and splitting it into tokens, as memcached does.
//!
//! Framing first: the line ends at the first `\n` (a `\r` before it is dropped;
//! a bare `\n` is accepted, as memcached accepts it). The length guard is applied
//! to the line before any tokenizing, so a client can never make us buffer more
//! than [`Limits::max_line_len`] (or [`Limits::max_get_line_len`] for `get`/`gets`)
//! while waiting for a terminator.
//!
//! memcached applies its 2048-byte guard only while no `\n` has arrived, and
//! parses any line whose `\n` arrived within one 16 KiB read, so whether it
//! accepts a 3000-byte `set` line depends on how TCP cut the stream. We decide
//! on the complete line instead, which gives the same answer whatever the cut:
//! lines over the guard (16 KiB, memcached's read buffer) close the connection;
//! lines within it never do, and get the parser's answer.
//!
//! Tokens are runs of bytes other than space (tabs belong to tokens), and the line
//! ends early at a NUL byte, because memcached tokenizes a C string.

use std::mem::MaybeUninit;

use crate::Limits;
use memchr::memchr;

/// memcached's `MAX_TOKENS` is 24 including the terminal token, so a line yields
/// at most 23 tokens; the rest of a long line is not looked at (except by gets).
pub(crate) const MAX_TOKENS: usize = 23;

pub(crate) enum Frame<'a> {
    /// A line: its content (no terminator, cut at a NUL) and where the next begins.
    Line { line: &'a [u8], next: usize },
    /// No terminator yet, and still within the guard.
    Incomplete,
    /// Over the guard. `get` tells whether it was a `get`/`gets` line.
    TooLong { get: bool },
}

/// memcached's exemption: up to 100 leading spaces, then `get ` or `gets `.
fn is_get_line(buf: &[u8]) -> bool {
    let spaces = buf.iter().take(101).take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return false;
    }
    let rest = &buf[spaces..];
    rest.starts_with(b"get ") || rest.starts_with(b"gets ")
}

#[inline]
pub(crate) fn frame<'a>(buf: &'a [u8], limits: &Limits) -> Frame<'a> {
    let window = limits
        .max_line_len
        .max(limits.max_get_line_len)
        .saturating_add(2);
    let scan = &buf[..buf.len().min(window)];
    match memchr(b'\n', scan) {
        Some(nl) => {
            let end = if nl > 0 && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if end > limits.max_line_len {
                let get = is_get_line(buf);
                if !get || end > limits.max_get_line_len {
                    return Frame::TooLong { get };
                }
            }
            let mut line = &buf[..end];
            if let Some(z) = find(0, line) {
                line = &line[..z];
            }
            Frame::Line { line, next: nl + 1 }
        }
        None => {
            let n = buf.len();
            // `limit` content bytes and a `\r` may still end a valid line.
            let over = |limit: usize| n > limit + 1 || (n == limit + 1 && buf[n - 1] != b'\r');
            if over(limits.max_line_len) {
                let get = is_get_line(buf);
                if !get || over(limits.max_get_line_len) {
                    return Frame::TooLong { get };
                }
            }
            Frame::Incomplete
        }
    }
}

/// Position of the first `needle` in `s`. Command lines are short, and for short
/// slices memchr's dispatch costs more than the search (it was ~45% of parse time
/// in the pipeline benchmark), so short slices are scanned eight bytes at a time
/// with a SWAR zero-byte test.
#[inline]
pub(crate) fn find(needle: u8, s: &[u8]) -> Option<usize> {
    if s.len() >= 64 {
        return memchr(needle, s);
    }
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ pattern;
        // A zero byte in `w` is a match; the lowest flagged byte is exact.
        let z = w.wrapping_sub(LO) & !w & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

/// The first tokens of a line, as byte offsets. Only the first `n` spans are
/// written: zero-filling all 23 (184 bytes of stack) on every parse was
/// a visible share of a get's parse in the engine profile.
pub(crate) struct Tokens<'a> {
    line: &'a [u8],
    spans: [MaybeUninit<(u32, u32)>; MAX_TOKENS],
    n: usize,
}

impl<'a> Tokens<'a> {
    #[inline]
    pub(crate) fn new(line: &'a [u8]) -> Self {
        let mut t = Tokens {
            line,
            spans: [const { MaybeUninit::uninit() }; MAX_TOKENS],
            n: 0,
        };
        let mut i = 0;
        let len = line.len();
        while t.n < MAX_TOKENS {
            while i < len && line[i] == b' ' {
                i += 1;
            }
            if i == len {
                break;
            }
            let start = i;
            i = match find(b' ', &line[i..]) {
                Some(p) => i + p,
                None => len,
            };
            t.spans[t.n] = MaybeUninit::new((start as u32, i as u32));
            t.n += 1;
        }
        t
    }

    /// Real tokens (memcached's `ntokens` is this plus one).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Token `i`, or an empty slice past the last one.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &'a [u8] {
        match self.span(i) {
            Some((s, e)) => &self.line[s as usize..e as usize],
            None => &[],
        }
    }

    #[inline]
    fn span(&self, i: usize) -> Option<(u32, u32)> {
        // SAFETY: `new` wrote spans 0..n, and n <= MAX_TOKENS.
        (i < self.n).then(|| unsafe { self.spans[i].assume_init() })
    }

    /// The line from token `i` to its end (for key lists and raw flag lists).
    #[inline]
    pub(crate) fn rest(&self, i: usize) -> &'a [u8] {
        match self.span(i) {
            Some((s, _)) => &self.line[s as usize..],
            None => &[],
        }
    }

    /// memcached's `set_noreply_maybe`: the last token read is `noreply`.
    #[inline]
    pub(crate) fn noreply(&self) -> bool {
        self.n > 0 && self.get(self.n - 1) == b"noreply"
    }
}

/// Iterate the space-separated tokens of `s`.
pub(crate) fn split_tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    s.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(line: &[u8]) -> Vec<&[u8]> {
        let t = Tokens::new(line);
        (0..t.len()).map(|i| t.get(i)).collect()
    }

    #[test]
    fn find_matches_memchr() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 7 % 13) as u8).collect();
        for start in 0..hay.len() {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100] {
                let s = &hay[start..(start + len).min(hay.len())];
                for n in 0..14u8 {
                    assert_eq!(find(n, s), memchr(n, s));
                }
            }
        }
    }

    #[test]
    fn tokenizer_table() {
        let rows: &[(&[u8], &[&[u8]])] = &[
            (b"", &[]),
            (b"   ", &[]),
            (b"get a", &[b"get", b"a"]),
            (b"  get   a  b ", &[b"get", b"a", b"b"]),
            (b"set a\tb 0", &[b"set", b"a\tb", b"0"]),
        ];
        for (line, want) in rows {
            assert_eq!(toks(line), *want);
        }
        let long: Vec<u8> = (0..30).flat_map(|_| *b"x ").collect();
        let t = Tokens::new(&long);
        assert_eq!(t.len(), MAX_TOKENS);
        assert_eq!(t.rest(MAX_TOKENS - 1).len(), 8 * 2);
    }

    #[test]
    fn frame_table() {
        let l = Limits::default();
        let line = |b: &[u8]| match frame(b, &l) {
            Frame::Line { line, next } => Some((line.to_vec(), next)),
            _ => None,
        };
        assert_eq!(line(b"get a\r\nx"), Some((b"get a".to_vec(), 7)));
        assert_eq!(line(b"get a\nx"), Some((b"get a".to_vec(), 6)));
        assert_eq!(line(b"get a\0b\r\n"), Some((b"get a".to_vec(), 9)));
        assert_eq!(line(b"\r\n"), Some((b"".to_vec(), 2)));
        assert!(matches!(frame(b"get a", &l), Frame::Incomplete));
        // The guard: max_line_len bytes without a newline wait, one more
        // closes; a get line is exempt.
        let mut set = b"set a 0 0 1".to_vec();
        set.resize(l.max_line_len, b' ');
        assert!(matches!(frame(&set, &l), Frame::Incomplete));
        set.push(b'\r');
        assert!(matches!(frame(&set, &l), Frame::Incomplete));
        set.push(b'\n');
        assert!(line(&set).is_some());
        set.truncate(l.max_line_len);
        set.push(b' ');
        assert!(matches!(frame(&set, &l), Frame::TooLong { get: false }));
        let mut get = b"get a".to_vec();
        get.resize(l.max_line_len + 1000, b' ');
        assert!(matches!(frame(&get, &l), Frame::Incomplete));
        get.resize(l.max_get_line_len + 2, b' ');
        assert!(matches!(frame(&get, &l), Frame::TooLong { get: true }));
        let mut spaced = vec![b' '; 101];
        spaced.extend_from_slice(b"get a");
        spaced.resize(l.max_line_len + 1000, b' ');
        assert!(matches!(frame(&spaced, &l), Frame::TooLong { get: false }));
    }
}
