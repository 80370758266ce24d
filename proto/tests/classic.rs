//! The classic text protocol, as (bytes in, expected) rows. Expected replies
//! and resync behaviour were checked against memcached 1.6.18 (`memcached -p
//! <port> -U 0 -t 1`, bytes sent with a socket, replies recorded).

mod common;
use common::{Want::*, check, check_with, pipeline};
use proto::{Limits, Parse, Request, parse};

const BAD: Option<&[u8]> = Some(b"CLIENT_ERROR bad command line format\r\n");
const ERROR: Option<&[u8]> = Some(b"ERROR\r\n");

#[test]
fn retrieval() {
    let rows: &[(&[u8], common::Want)] = &[
        (b"get foo\r\n", Ok(b"get foo\r\n", 9)),
        (b"get foo\n", Ok(b"get foo\r\n", 8)),
        (b"gets a b c\r\n", Ok(b"gets a b c\r\n", 12)),
        (b"  get   a  b \r\n", Ok(b"get a b\r\n", 15)),
        (b"gat 10 a b\r\n", Ok(b"gat 10 a b\r\n", 12)),
        (b"gats -1 a\r\n", Ok(b"gats -1 a\r\n", 11)),
        // `gat 10` with no key answers END in memcached 1.6.18.
        (b"gat 10\r\n", Ok(b"gat 10\r\n", 8)),
        (b"bget a\r\n", Ok(b"get a\r\n", 8)),
        // Tabs and control bytes belong to keys (memcached stores `a\tb`).
        (b"get a\tb\r\n", Ok(b"get a\tb\r\n", 9)),
        // memcached reads the line as a C string: a NUL ends it.
        (b"get a\0b c\r\n", Ok(b"get a\r\n", 11)),
        (b"get\r\n", Err(ERROR, 5, 0, false)),
        (b"get \r\n", Err(ERROR, 6, 0, false)),
        (b"gat\r\n", Err(ERROR, 5, 0, false)),
        (
            b"gat abc a\r\n",
            Err(
                Some(b"CLIENT_ERROR invalid exptime argument\r\n"),
                11,
                0,
                false,
            ),
        ),
        (b"GET foo\r\n", Err(ERROR, 9, 0, false)),
        (b"getx foo\r\n", Err(ERROR, 10, 0, false)),
        (b"get foo", More(None)),
        (b"get foo\r", More(None)),
    ];
    for (input, want) in rows {
        check(input, *want);
    }
}

#[test]
fn key_length() {
    let k250 = "k".repeat(250);
    let k251 = "k".repeat(251);
    let ok = format!("get {k250}\r\n");
    check(ok.as_bytes(), Ok(ok.as_bytes(), ok.len()));
    // One long key anywhere fails the whole get, with no VALUE for the others.
    let bad = format!("get a {k251} b\r\n");
    check(bad.as_bytes(), Err(BAD, bad.len(), 0, false));
    let set = format!("set {k251} 0 0 1\r\nx\r\n");
    check(set.as_bytes(), Err(BAD, set.len() - 3, 0, false));
    // noreply silences it, and the data line is not swallowed (it reads as ERROR).
    let set = format!("set {k251} 0 0 1 noreply\r\nx\r\n");
    assert_eq!(
        pipeline(set.as_bytes(), &Limits::default()),
        ["!CLIENT_ERROR bad command line format\r\n", "ERROR\r\n"]
    );
    for cmd in ["delete", "touch", "incr"] {
        let line = match cmd {
            "delete" => format!("delete {k251}\r\n"),
            _ => format!("{cmd} {k251} 1\r\n"),
        };
        check(line.as_bytes(), Err(BAD, line.len(), 0, false));
    }
}

#[test]
fn control_keys_optional() {
    let strict = Limits {
        reject_control_keys: true,
        ..Limits::default()
    };
    check_with(b"get a\tb\r\n", Err(BAD, 9, 0, false), &strict);
    check_with(b"get ab\r\n", Ok(b"get ab\r\n", 8), &strict);
    check_with(b"set a\x01 0 0 1\r\nx\r\n", Err(BAD, 14, 0, false), &strict);
}

#[test]
fn storage() {
    let rows: &[(&[u8], common::Want)] = &[
        (
            b"set foo 0 0 2\r\nhi\r\n",
            Ok(b"set foo 0 0 2\r\nhi\r\n", 19),
        ),
        (
            b"set foo 5 100 0\r\n\r\n",
            Ok(b"set foo 5 100 0\r\n\r\n", 19),
        ),
        (
            b"add a 1 2 1 noreply\r\nx\r\n",
            Ok(b"add a 1 2 1 noreply\r\nx\r\n", 24),
        ),
        (
            b"replace a 0 0 1\r\nx\r\n",
            Ok(b"replace a 0 0 1\r\nx\r\n", 20),
        ),
        (
            b"append a 0 0 1\r\nx\r\n",
            Ok(b"append a 0 0 1\r\nx\r\n", 19),
        ),
        (
            b"prepend a 0 0 1\r\nx\r\n",
            Ok(b"prepend a 0 0 1\r\nx\r\n", 20),
        ),
        (
            b"cas a 0 0 1 99\r\nx\r\n",
            Ok(b"cas a 0 0 1 99\r\nx\r\n", 19),
        ),
        (
            b"cas k 0 0 1 18446744073709551615\r\nx\r\n",
            Ok(b"cas k 0 0 1 18446744073709551615\r\nx\r\n", 37),
        ),
        (
            b"cas a 0 0 1 5 noreply\r\nx\r\n",
            Ok(b"cas a 0 0 1 5 noreply\r\nx\r\n", 26),
        ),
        // Data may hold \r and \n; only the length counts.
        (
            b"set a 0 0 4\r\n\r\n\r\n\r\n",
            Ok(b"set a 0 0 4\r\n\r\n\r\n\r\n", 19),
        ),
        // Numbers as memcached's strtol/strtoul read them (all STORED in 1.6.18):
        // flags keep the low 32 bits, exptime too, a sign and leading zeros pass.
        (
            b"set a 4294967297 0 1\r\nx\r\n",
            Ok(b"set a 1 0 1\r\nx\r\n", 25),
        ),
        (b"set a -0 0 1\r\nx\r\n", Ok(b"set a 0 0 1\r\nx\r\n", 17)),
        (
            b"set a 0 4294967296 1\r\nx\r\n",
            Ok(b"set a 0 0 1\r\nx\r\n", 25),
        ),
        (b"set a 0 0 +1\r\nx\r\n", Ok(b"set a 0 0 1\r\nx\r\n", 17)),
        (b"set a 0 0 01\r\nx\r\n", Ok(b"set a 0 0 1\r\nx\r\n", 17)),
        (
            b"set a 0 0 4294967297\r\nx\r\n",
            Ok(b"set a 0 0 1\r\nx\r\n", 25),
        ),
        (b"set a 0 0 1\t\r\nx\r\n", Ok(b"set a 0 0 1\r\nx\r\n", 17)),
        (
            b"set a 0 0 1\tnoreply\r\nx\r\n",
            Ok(b"set a 0 0 1\r\nx\r\n", 24),
        ),
        // An extra token that is not noreply is ignored (STORED in 1.6.18).
        (
            b"set a 0 0 1 extra\r\nx\r\n",
            Ok(b"set a 0 0 1\r\nx\r\n", 22),
        ),
        (b"set a  0  0  1\r\nx\r\n", Ok(b"set a 0 0 1\r\nx\r\n", 19)),
        // The data block is awaited, and the hint says exactly how much is missing.
        (b"set a 0 0 5\r\n", More(Some(7))),
        (b"set a 0 0 5\r\nhel", More(Some(4))),
        (b"set a 0 0 5\r\nhello\r", More(Some(1))),
        (b"set a 0 0 1\r\nx\n", More(Some(1))),
        // Wrong token counts: ERROR, not silenced, data line then read as a command.
        (b"set a 0 0\r\n", Err(ERROR, 11, 0, false)),
        (
            b"set a 0 0 1 noreply extra\r\nx\r\n",
            Err(ERROR, 27, 0, false),
        ),
        (b"cas a 0 0 1\r\nx\r\n", Err(ERROR, 13, 0, false)),
        // Bad numbers: CLIENT_ERROR, the data line is not swallowed.
        (b"set a abc 0 1\r\nx\r\n", Err(BAD, 15, 0, false)),
        (b"set a -1 0 1\r\nx\r\n", Err(BAD, 14, 0, false)),
        (b"set a 0 abc 1\r\nx\r\n", Err(BAD, 15, 0, false)),
        (b"set a 0 0 abc\r\n", Err(BAD, 15, 0, false)),
        (b"set a 0 0 -1\r\n", Err(BAD, 14, 0, false)),
        (b"set a 0 0 0x1\r\nx\r\n", Err(BAD, 15, 0, false)),
        (
            b"set a 18446744073709551616 0 1\r\nx\r\n",
            Err(BAD, 32, 0, false),
        ),
        (b"set a 0 0 2147483646\r\n", Err(BAD, 22, 0, false)),
        (b"cas a 0 0 1 abc\r\nx\r\n", Err(BAD, 17, 0, false)),
        (b"cas a 0 0 1 -1\r\nx\r\n", Err(BAD, 16, 0, false)),
        (b"set a 0 0 abc noreply\r\n", Err(None, 23, 0, false)),
        // A bad chunk: the line and the declared block are consumed; the error
        // is silenced by noreply (1.6.18 sends nothing for it).
        (
            b"set a 0 0 1\r\nxx\r\n",
            Err(Some(b"CLIENT_ERROR bad data chunk\r\n"), 16, 0, false),
        ),
        (b"set a 0 0 1 noreply\r\nxx\r\n", Err(None, 24, 0, false)),
        // Too large: answered at once, the block swallowed as it comes.
        (
            b"set a 0 0 1048577\r\n",
            Err(
                Some(b"SERVER_ERROR object too large for cache\r\n"),
                19,
                1048579,
                false,
            ),
        ),
        (
            b"set a 0 0 2000000000 noreply\r\n",
            Err(None, 30, 2000000002, false),
        ),
        (
            b"append a 0 0 2000000\r\n",
            Err(
                Some(b"SERVER_ERROR object too large for cache\r\n"),
                22,
                2000002,
                false,
            ),
        ),
    ];
    for (input, want) in rows {
        check(input, *want);
    }
}

#[test]
fn too_large_unlinks_only_for_set() {
    // memcached 1.6.18: after `set sm` of 2 MB fails, `get sm` misses; after a
    // failed `append sm` the old value is still there.
    let l = Limits::default();
    let Parse::Invalid(inv) = parse(b"set sm 0 0 2000000\r\n", &l) else {
        panic!()
    };
    assert_eq!(inv.unlink.map(|k| k.raw()), Some(&b"sm"[..]));
    for cmd in ["add", "replace", "append", "prepend"] {
        let line = format!("{cmd} sm 0 0 2000000\r\n");
        let Parse::Invalid(inv) = parse(line.as_bytes(), &l) else {
            panic!()
        };
        assert_eq!(inv.unlink, None, "{cmd}");
    }
    let Parse::Invalid(inv) = parse(b"cas sm 0 0 2000000 1\r\n", &l) else {
        panic!()
    };
    assert_eq!(inv.unlink, None);
}

#[test]
fn item_size_is_a_setting() {
    let small = Limits {
        max_item_size: 10,
        ..Limits::default()
    };
    check_with(
        b"set a 0 0 10\r\n0123456789\r\n",
        Ok(b"set a 0 0 10\r\n0123456789\r\n", 26),
        &small,
    );
    check_with(
        b"set a 0 0 11\r\n",
        Err(
            Some(b"SERVER_ERROR object too large for cache\r\n"),
            14,
            13,
            false,
        ),
        &small,
    );
}

#[test]
fn delete_incr_touch() {
    let usage: Option<&[u8]> =
        Some(b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
    let rows: &[(&[u8], common::Want)] = &[
        (b"delete a\r\n", Ok(b"delete a\r\n", 10)),
        (b"delete a 0\r\n", Ok(b"delete a\r\n", 12)),
        (b"delete a noreply\r\n", Ok(b"delete a noreply\r\n", 18)),
        (b"delete a 0 noreply\r\n", Ok(b"delete a noreply\r\n", 20)),
        (b"delete a 1\r\n", Err(usage, 12, 0, false)),
        (b"delete a 0 1\r\n", Err(usage, 14, 0, false)),
        (b"delete a x noreply\r\n", Err(None, 20, 0, false)),
        (b"delete\r\n", Err(ERROR, 8, 0, false)),
        (b"delete a b c d\r\n", Err(ERROR, 16, 0, false)),
        (b"incr n 3\r\n", Ok(b"incr n 3\r\n", 10)),
        (
            b"decr n 18446744073709551615\r\n",
            Ok(b"decr n 18446744073709551615\r\n", 29),
        ),
        (b"incr n 1 noreply\r\n", Ok(b"incr n 1 noreply\r\n", 18)),
        (b"incr n 1 2\r\n", Ok(b"incr n 1\r\n", 12)),
        (b"incr n\r\n", Err(ERROR, 8, 0, false)),
        (b"incr n 1 2 3\r\n", Err(ERROR, 14, 0, false)),
        (
            b"incr n abc\r\n",
            Err(
                Some(b"CLIENT_ERROR invalid numeric delta argument\r\n"),
                12,
                0,
                false,
            ),
        ),
        (
            b"incr n -1\r\n",
            Err(
                Some(b"CLIENT_ERROR invalid numeric delta argument\r\n"),
                11,
                0,
                false,
            ),
        ),
        (
            b"incr n 18446744073709551616\r\n",
            Err(
                Some(b"CLIENT_ERROR invalid numeric delta argument\r\n"),
                29,
                0,
                false,
            ),
        ),
        (b"incr n abc noreply\r\n", Err(None, 20, 0, false)),
        (b"touch t 10\r\n", Ok(b"touch t 10\r\n", 12)),
        (b"touch t -5 noreply\r\n", Ok(b"touch t -5 noreply\r\n", 20)),
        (b"touch t\r\n", Err(ERROR, 9, 0, false)),
        (
            b"touch t abc\r\n",
            Err(
                Some(b"CLIENT_ERROR invalid exptime argument\r\n"),
                13,
                0,
                false,
            ),
        ),
        (b"touch t abc noreply\r\n", Err(None, 21, 0, false)),
    ];
    for (input, want) in rows {
        check(input, *want);
    }
}

#[test]
fn admin() {
    let rows: &[(&[u8], common::Want)] = &[
        (b"version\r\n", Ok(b"version\r\n", 9)),
        (b"version 1 2\r\n", Ok(b"version\r\n", 13)),
        // An HTTP request line on the memcached port: memcached hangs up
        // without a reply (malicious-commands.t); a known command does not.
        (b"GET / HTTP/1.0\r\n", Err(None, 16, 0, true)),
        (
            b"PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1\r\n",
            Err(None, 39, 0, true),
        ),
        (b"DELETE HTTP/1.1\r\n", Err(None, 17, 0, true)),
        (b"bogus HTTPX\r\n", Err(ERROR, 13, 0, false)),
        (b"version HTTP/1.1\r\n", Ok(b"version\r\n", 18)),
        (b"quit\r\n", Ok(b"quit\r\n", 6)),
        (b"quit 1 2\r\n", Ok(b"quit\r\n", 10)),
        (b"flush_all\r\n", Ok(b"flush_all\r\n", 11)),
        (b"flush_all 0\r\n", Ok(b"flush_all 0\r\n", 13)),
        (b"flush_all -1\r\n", Ok(b"flush_all -1\r\n", 14)),
        (b"flush_all noreply\r\n", Ok(b"flush_all noreply\r\n", 19)),
        (
            b"flush_all 10 noreply\r\n",
            Ok(b"flush_all 10 noreply\r\n", 22),
        ),
        (b"flush_all 10 20\r\n", Ok(b"flush_all 10\r\n", 17)),
        (
            b"flush_all abc\r\n",
            Err(
                Some(b"CLIENT_ERROR invalid exptime argument\r\n"),
                15,
                0,
                false,
            ),
        ),
        (b"flush_all abc noreply\r\n", Err(None, 23, 0, false)),
        (b"flush_all 1 2 3\r\n", Err(ERROR, 17, 0, false)),
        (b"verbosity 1\r\n", Ok(b"verbosity 1\r\n", 13)),
        (b"verbosity 1 2\r\n", Ok(b"verbosity 1\r\n", 15)),
        (
            b"verbosity 1 noreply\r\n",
            Ok(b"verbosity 1 noreply\r\n", 21),
        ),
        (b"verbosity\r\n", Err(ERROR, 11, 0, false)),
        (b"verbosity abc\r\n", Err(BAD, 15, 0, false)),
        (b"verbosity noreply\r\n", Err(None, 19, 0, false)),
        (b"verbosity 1 2 3\r\n", Err(ERROR, 17, 0, false)),
        (b"shutdown\r\n", Ok(b"shutdown\r\n", 10)),
        (b"shutdown graceful\r\n", Ok(b"shutdown graceful\r\n", 19)),
        (b"shutdown now\r\n", Ok(b"shutdown invalid\r\n", 14)),
        (b"cache_memlimit 100\r\n", Ok(b"cache_memlimit 100\r\n", 20)),
        (
            b"cache_memlimit 100 noreply\r\n",
            Ok(b"cache_memlimit 100 noreply\r\n", 28),
        ),
        (b"cache_memlimit\r\n", Err(ERROR, 16, 0, false)),
        (b"cache_memlimit abc\r\n", Err(ERROR, 20, 0, false)),
        (b"cache_memlimit 100 1 2\r\n", Err(ERROR, 24, 0, false)),
        (b"slabs reassign 1 2\r\n", Ok(b"slabs reassign 1 2\r\n", 20)),
        (
            b"slabs reassign -1 2\r\n",
            Ok(b"slabs reassign -1 2\r\n", 21),
        ),
        (b"slabs reassign a 2\r\n", Err(BAD, 20, 0, false)),
        (b"slabs reassign 1\r\n", Err(ERROR, 18, 0, false)),
        (b"slabs automove 1\r\n", Ok(b"slabs automove 1\r\n", 18)),
        (
            b"slabs automove 1 noreply\r\n",
            Ok(b"slabs automove 1 noreply\r\n", 26),
        ),
        (b"slabs automove 3\r\n", Err(ERROR, 18, 0, false)),
        (b"slabs automove abc\r\n", Err(BAD, 20, 0, false)),
        (
            b"slabs automove ratio 0.5\r\n",
            Ok(b"slabs automove ratio 0.5\r\n", 26),
        ),
        (b"slabs automove ratio\r\n", Err(ERROR, 22, 0, false)),
        (b"slabs automove ratio abc\r\n", Err(ERROR, 26, 0, false)),
        (b"slabs\r\n", Err(ERROR, 7, 0, false)),
        (b"slabs foo bar\r\n", Err(ERROR, 15, 0, false)),
        (b"lru_crawler enable\r\n", Ok(b"lru_crawler enable\r\n", 20)),
        (
            b"lru_crawler disable\r\n",
            Ok(b"lru_crawler disable\r\n", 21),
        ),
        (
            b"lru_crawler crawl 1,2,3\r\n",
            Ok(b"lru_crawler crawl 1,2,3\r\n", 25),
        ),
        (
            b"lru_crawler metadump all\r\n",
            Ok(b"lru_crawler metadump all\r\n", 26),
        ),
        (
            b"lru_crawler tocrawl 100\r\n",
            Ok(b"lru_crawler tocrawl 100\r\n", 25),
        ),
        (
            b"lru_crawler sleep 100\r\n",
            Ok(b"lru_crawler sleep 100\r\n", 23),
        ),
        (
            b"lru_crawler sleep 2000000\r\n",
            Err(
                Some(b"CLIENT_ERROR sleep must be one second or less\r\n"),
                27,
                0,
                false,
            ),
        ),
        (b"lru_crawler sleep abc\r\n", Err(BAD, 23, 0, false)),
        (b"lru_crawler tocrawl abc\r\n", Err(BAD, 25, 0, false)),
        (b"lru_crawler\r\n", Err(ERROR, 13, 0, false)),
        (b"lru_crawler foo\r\n", Err(ERROR, 17, 0, false)),
        (b"lru_crawler mgdump 1\r\n", Err(ERROR, 22, 0, false)),
        (
            b"lru tune 10 25 0.1 2.0\r\n",
            Ok(b"lru tune 10 25 0.1 2.0\r\n", 24),
        ),
        (
            b"lru tune 50 50 0.1 2.0\r\n",
            Err(
                Some(b"ERROR hot and warm pcts must not exceed 80\r\n"),
                24,
                0,
                false,
            ),
        ),
        (
            b"lru tune 10 25 0 2.0\r\n",
            Err(
                Some(b"ERROR hot/warm age factors must be greater than 0\r\n"),
                22,
                0,
                false,
            ),
        ),
        (b"lru tune a 25 0.1 2.0\r\n", Err(ERROR, 23, 0, false)),
        (b"lru tune 10 25 0.1\r\n", Err(ERROR, 20, 0, false)),
        (b"lru mode flat\r\n", Ok(b"lru mode flat\r\n", 15)),
        (b"lru mode segmented\r\n", Ok(b"lru mode segmented\r\n", 20)),
        (b"lru mode foo\r\n", Err(ERROR, 14, 0, false)),
        (b"lru temp_ttl 10\r\n", Ok(b"lru temp_ttl 10\r\n", 17)),
        (b"lru temp_ttl abc\r\n", Err(ERROR, 18, 0, false)),
        (b"lru\r\n", Err(ERROR, 5, 0, false)),
        (b"lru foo\r\n", Err(ERROR, 9, 0, false)),
        (b"watch\r\n", Ok(b"watch fetchers\r\n", 7)),
        (
            b"watch mutations evictions\r\n",
            Ok(b"watch evictions mutations\r\n", 27),
        ),
        (b"watch foo\r\n", Err(ERROR, 11, 0, false)),
        (b"misbehave\r\n", Ok(b"misbehave\r\n", 11)),
        (b"debugtime 5\r\n", Ok(b"debugtime 5\r\n", 13)),
        (b"debugtime p\r\n", Ok(b"debugtime p\r\n", 13)),
        (b"debugtime x\r\n", Err(ERROR, 13, 0, false)),
        (b"stats\r\n", Ok(b"stats\r\n", 7)),
        (b"stats  items\r\n", Ok(b"stats items\r\n", 14)),
        (
            b"stats cachedump 1 2\r\n",
            Ok(b"stats cachedump 1 2\r\n", 21),
        ),
        (b"\r\n", Err(ERROR, 2, 0, false)),
        (b"\n", Err(ERROR, 1, 0, false)),
        (b"x\r\n", Err(ERROR, 3, 0, false)),
        (b"g\r\n", Err(ERROR, 3, 0, false)),
        (b"bogus command\r\n", Err(ERROR, 15, 0, false)),
        (b"extstore item_size 10\r\n", Err(ERROR, 23, 0, false)),
    ];
    for (input, want) in rows {
        check(input, *want);
    }
}

#[test]
fn stats_args() {
    let Parse::Complete {
        request: Request::Stats(s),
        ..
    } = parse(b"stats detail dump\r\n", &Limits::default())
    else {
        panic!()
    };
    assert_eq!(s.subcommand(), Some(&b"detail"[..]));
    assert_eq!(s.args().collect::<Vec<_>>(), [&b"detail"[..], b"dump"]);
}

#[test]
fn line_guard() {
    // The guard is 16 KiB, memcached's read buffer: a line with its newline
    // within it is parsed (memcached parses any line whose newline arrives in
    // one read); past it the connection closes without a reply. get/gets
    // lines are exempt (after at most 100 leading spaces), gat is not.
    let guard = Limits::default().max_line_len;
    let mut set = b"set a 0 0 1".to_vec();
    set.resize(guard + 1, b' ');
    check(&set, Err(None, guard + 1, 0, true));
    set.truncate(guard);
    check(&set, More(None));
    set.extend_from_slice(b"\r\nx\r\n");
    check(&set, Ok(b"set a 0 0 1\r\nx\r\n", guard + 5));
    let mut gat = b"gat 0 a".to_vec();
    gat.resize(guard + 1, b' ');
    check(&gat, Err(None, guard + 1, 0, true));
    let mut get = b"get a".to_vec();
    get.resize(3000, b' ');
    check(&get, More(None));
    get.extend_from_slice(b"\r\n");
    check(&get, Ok(b"get a\r\n", 3002));
    // Ours: get lines are bounded too (memcached's are not).
    let small = Limits {
        max_line_len: 2048,
        max_get_line_len: 4096,
        ..Limits::default()
    };
    get.truncate(3000);
    get.resize(4097, b' ');
    check_with(
        &get,
        Err(Some(b"CLIENT_ERROR line too long\r\n"), 4097, 0, true),
        &small,
    );
    let mut keys = b"get".to_vec();
    while keys.len() < 4090 {
        keys.extend_from_slice(b" key");
    }
    keys.extend_from_slice(b"\r\n");
    assert!(matches!(parse(&keys, &small), Parse::Complete { .. }));
}

#[test]
fn many_keys_past_the_token_limit() {
    // memcached tokenizes 24 at a time and loops for gets; we read all keys.
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let line = format!("get {}\r\n", keys.join(" "));
    let Parse::Complete {
        request: Request::Get(g),
        ..
    } = parse(line.as_bytes(), &Limits::default())
    else {
        panic!()
    };
    assert_eq!(g.keys.len(), 100);
    let got: Vec<String> = g
        .keys
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(got, keys);
}

#[test]
fn pipelined() {
    // The replies memcached 1.6.18 gave for the same bytes are noted per step.
    let l = Limits::default();
    let buf = b"set a 0 0 1\r\nx\r\nget a b\r\nincr n 1\r\ndelete a\r\nmn\r\n";
    assert_eq!(
        pipeline(buf, &l),
        [
            "set a 0 0 1\r\nx\r\n",
            "get a b\r\n",
            "incr n 1\r\n",
            "delete a\r\n",
            "mn\r\n"
        ]
    );
    // CLIENT_ERROR bad data chunk, then the leftover "\n" reads as ERROR.
    assert_eq!(
        pipeline(b"set foo 0 0 1\r\nxx\r\nget foo\r\n", &l),
        [
            "CLIENT_ERROR bad data chunk\r\n",
            "ERROR\r\n",
            "get foo\r\n"
        ]
    );
    // noreply: only the ERROR of the leftover line is sent.
    assert_eq!(
        pipeline(b"set foo 0 0 1 noreply\r\nxx\r\nget foo\r\n", &l),
        [
            "!CLIENT_ERROR bad data chunk\r\n",
            "ERROR\r\n",
            "get foo\r\n"
        ]
    );
    // A refused oversized block is swallowed whatever it holds.
    let mut big = b"set sm 0 0 2000000\r\n".to_vec();
    big.resize(big.len() + 2_000_002, b'y');
    big.extend_from_slice(b"get sm\r\n");
    assert_eq!(
        pipeline(&big, &l),
        ["SERVER_ERROR object too large for cache\r\n", "get sm\r\n"]
    );
    // A bad token count does not swallow: the data line is a command of its own.
    assert_eq!(
        pipeline(b"set foo\0bar 0 0 1\r\nx\r\n", &l),
        ["ERROR\r\n", "ERROR\r\n"]
    );
    // Once the guard trips, nothing after it is read.
    let mut over = b"version\r\n".to_vec();
    over.resize(l.max_line_len + 1000, b'x');
    assert_eq!(pipeline(&over, &l), ["version\r\n", "!ERROR\r\n", "CLOSE"]);
}
