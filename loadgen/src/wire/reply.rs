//! Client-side reply parsing, one reply *item* at a time: a `VALUE` block
//! with its data, a meta `VA` block, or one status line. The connection
//! folds items into request completions (a get is VALUE* END). Zero-copy:
//! items borrow from the receive buffer.
//!
//! Stand-in for the `proto` crate's reply parser, which is being written
//! concurrently; the connection code depends only on [`Item`] and
//! [`parse_item`], so switching is local to this file.

/// The longest reply line accepted before the stream is declared invalid.
pub const MAX_LINE: usize = 2048;

#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// `VALUE <key> <flags> <bytes> [<cas>]` and its data block.
    Value {
        key: &'a [u8],
        data: &'a [u8],
    },
    End,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Error,
    ClientError(&'a [u8]),
    ServerError(&'a [u8]),
    /// Meta `VA <size> <flags>*` and its data block.
    MetaValue {
        flags: &'a [u8],
        data: &'a [u8],
    },
    /// Meta `HD`, `EN`, `NS`, `EX`, `NF`, `MN`: the two-letter code.
    Meta([u8; 2]),
    /// Any other single line (`STAT ..`, `VERSION ..`, a number).
    Line(&'a [u8]),
}

#[derive(Debug, PartialEq, Eq)]
pub enum ItemParse<'a> {
    Complete(Item<'a>, usize),
    Incomplete,
    Invalid(&'static str),
}

/// The offset of the first CRLF. A bare LF is not a line end.
#[inline]
fn find_crlf(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf)
        .find(|&at| at > 0 && buf[at - 1] == b'\r')
        .map(|at| at - 1)
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// A data block of `len` bytes plus CRLF after a header line ending at `data_start`.
type Block<'a> = Result<Option<(&'a [u8], usize)>, &'static str>;

fn data_block(buf: &[u8], data_start: usize, len: usize) -> Block<'_> {
    let end = data_start
        .checked_add(len)
        .filter(|e| *e <= usize::MAX - 2)
        .ok_or("data length overflows")?;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err("data block not followed by CRLF");
    }
    Ok(Some((&buf[data_start..end], end + 2)))
}

/// Parses one reply item from the start of `buf`.
pub fn parse_item(buf: &[u8]) -> ItemParse<'_> {
    let Some(eol) = find_crlf(&buf[..buf.len().min(MAX_LINE + 2)]) else {
        return if buf.len() > MAX_LINE {
            ItemParse::Invalid("reply line too long")
        } else {
            ItemParse::Incomplete
        };
    };
    let line = &buf[..eol];
    let next = eol + 2;
    let simple = |item| ItemParse::Complete(item, next);
    match line {
        b"END" => return simple(Item::End),
        b"STORED" => return simple(Item::Stored),
        b"NOT_STORED" => return simple(Item::NotStored),
        b"EXISTS" => return simple(Item::Exists),
        b"NOT_FOUND" => return simple(Item::NotFound),
        b"ERROR" => return simple(Item::Error),
        _ => {}
    }
    if let Some(msg) = line.strip_prefix(b"CLIENT_ERROR") {
        return simple(Item::ClientError(msg.trim_ascii_start()));
    }
    if let Some(msg) = line.strip_prefix(b"SERVER_ERROR") {
        return simple(Item::ServerError(msg.trim_ascii_start()));
    }
    if let Some(rest) = line.strip_prefix(b"VALUE ") {
        let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let (Some(key), Some(_flags), Some(len)) = (parts.next(), parts.next(), parts.next())
        else {
            return ItemParse::Invalid("VALUE line with too few fields");
        };
        let Some(len) = parse_u64(len) else {
            return ItemParse::Invalid("VALUE length is not a number");
        };
        return match data_block(buf, next, len as usize) {
            Ok(Some((data, used))) => ItemParse::Complete(Item::Value { key, data }, used),
            Ok(None) => ItemParse::Incomplete,
            Err(e) => ItemParse::Invalid(e),
        };
    }
    if let Some(rest) = line.strip_prefix(b"VA ") {
        let (len, flags) = match rest.iter().position(|&b| b == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let Some(len) = parse_u64(len) else {
            return ItemParse::Invalid("VA length is not a number");
        };
        return match data_block(buf, next, len as usize) {
            Ok(Some((data, used))) => ItemParse::Complete(Item::MetaValue { flags, data }, used),
            Ok(None) => ItemParse::Incomplete,
            Err(e) => ItemParse::Invalid(e),
        };
    }
    if line.len() >= 2 && (line.len() == 2 || line[2] == b' ') {
        let code = [line[0], line[1]];
        if matches!(&code, b"HD" | b"EN" | b"NS" | b"EX" | b"NF" | b"MN") {
            return simple(Item::Meta(code));
        }
    }
    simple(Item::Line(line))
}

/// The key of a meta reply's `k` flag, if it carries one.
pub fn meta_key(flags: &[u8]) -> Option<&[u8]> {
    flags
        .split(|&b| b == b' ')
        .find(|f| f.first() == Some(&b'k'))
        .map(|f| &f[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Item<'_>, usize) {
        match parse_item(buf) {
            ItemParse::Complete(i, n) => (i, n),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn table_of_replies() {
        let cases: &[(&[u8], Item, usize)] = &[
            (b"END\r\n", Item::End, 5),
            (b"STORED\r\nEND\r\n", Item::Stored, 8),
            (b"NOT_STORED\r\n", Item::NotStored, 12),
            (b"ERROR\r\n", Item::Error, 7),
            (
                b"CLIENT_ERROR bad data chunk\r\n",
                Item::ClientError(b"bad data chunk"),
                29,
            ),
            (
                b"SERVER_ERROR out of memory\r\n",
                Item::ServerError(b"out of memory"),
                28,
            ),
            (
                b"VALUE k1 0 3\r\nabc\r\nEND\r\n",
                Item::Value {
                    key: b"k1",
                    data: b"abc",
                },
                19,
            ),
            (
                b"VALUE k1 5 2 99\r\nab\r\n",
                Item::Value {
                    key: b"k1",
                    data: b"ab",
                },
                21,
            ),
            (
                b"VA 2 kfoo\r\nhi\r\n",
                Item::MetaValue {
                    flags: b"kfoo",
                    data: b"hi",
                },
                15,
            ),
            (
                b"VA 0\r\n\r\n",
                Item::MetaValue {
                    flags: b"",
                    data: b"",
                },
                8,
            ),
            (b"HD\r\n", Item::Meta(*b"HD"), 4),
            (b"EN\r\n", Item::Meta(*b"EN"), 4),
            (b"HD O123\r\n", Item::Meta(*b"HD"), 9),
            (b"MN\r\n", Item::Meta(*b"MN"), 4),
            (b"STAT pid 1\r\n", Item::Line(b"STAT pid 1"), 12),
        ];
        for (bytes, item, used) in cases {
            assert_eq!(
                complete(bytes),
                (item.clone_ref(), *used),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    impl Item<'_> {
        fn clone_ref(&self) -> Item<'_> {
            match self {
                Item::Value { key, data } => Item::Value { key, data },
                Item::MetaValue { flags, data } => Item::MetaValue { flags, data },
                Item::ClientError(m) => Item::ClientError(m),
                Item::ServerError(m) => Item::ServerError(m),
                Item::Line(l) => Item::Line(l),
                Item::Meta(c) => Item::Meta(*c),
                Item::End => Item::End,
                Item::Stored => Item::Stored,
                Item::NotStored => Item::NotStored,
                Item::Exists => Item::Exists,
                Item::NotFound => Item::NotFound,
                Item::Error => Item::Error,
            }
        }
    }

    #[test]
    fn every_prefix_of_a_value_is_incomplete() {
        let full = b"VALUE key 0 10\r\n0123456789\r\n";
        for n in 0..full.len() {
            assert_eq!(parse_item(&full[..n]), ItemParse::Incomplete, "prefix {n}");
        }
        assert_eq!(complete(full).1, full.len());
    }

    #[test]
    fn malformed_replies_are_invalid() {
        assert!(matches!(
            parse_item(b"VALUE k 0 x\r\n"),
            ItemParse::Invalid(_)
        ));
        assert!(matches!(
            parse_item(b"VALUE k 0\r\n"),
            ItemParse::Invalid(_)
        ));
        assert!(matches!(
            parse_item(b"VALUE k 0 2\r\nabcd\r\n"),
            ItemParse::Invalid(_)
        ));
        assert!(matches!(
            parse_item(&[b'x'; MAX_LINE + 10]),
            ItemParse::Invalid(_)
        ));
        // A bare LF is not a line end; the line keeps growing.
        assert_eq!(parse_item(b"END\n"), ItemParse::Incomplete);
    }

    #[test]
    fn meta_key_flag() {
        assert_eq!(meta_key(b"s5 kabc f0"), Some(&b"abc"[..]));
        assert_eq!(meta_key(b"s5"), None);
    }
}
