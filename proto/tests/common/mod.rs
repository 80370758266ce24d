//! Table helpers: a row is (bytes in, expected outcome), and every row is also
//! fed split at each byte position to check it parses the same once complete.

#![allow(dead_code)]

use proto::{Limits, Parse, parse};

/// What a row expects.
#[derive(Debug, Clone, Copy)]
pub enum Want<'a> {
    /// Complete: the canonical re-encoding of the request, and bytes consumed.
    Ok(&'a [u8], usize),
    /// Invalid: the reply sent (None when silenced), consumed, swallow, close.
    Err(Option<&'a [u8]>, usize, usize, bool),
    /// Incomplete with this hint.
    More(Option<usize>),
}

/// In a row, "consumed everything given".
pub const ALL: usize = 0;
/// In a row, "consumed the line; the rest is swallowed".
pub const LINE: usize = usize::MAX;

pub fn check_with(input: &[u8], want: Want<'_>, limits: &Limits) {
    let want = match want {
        Want::Ok(e, ALL) => Want::Ok(e, input.len()),
        Want::Err(r, ALL, s, c) => Want::Err(r, input.len(), s, c),
        Want::Err(r, LINE, s, c) => Want::Err(r, input.len() - s, s, c),
        w => w,
    };
    let got = parse(input, limits);
    let show = String::from_utf8_lossy(&input[..input.len().min(80)]);
    match (want, &got) {
        (Want::Ok(enc, n), Parse::Complete { request, consumed }) => {
            let mut out = Vec::new();
            request.encode(&mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(enc),
                "encoding of {show:?}"
            );
            assert_eq!(*consumed, n, "consumed for {show:?}");
            // Round trip: the canonical form parses back to an equal request.
            match parse(&out, limits) {
                Parse::Complete {
                    request: r2,
                    consumed,
                } => {
                    assert_eq!(&r2, request, "round trip of {show:?}");
                    assert_eq!(consumed, out.len());
                }
                other => panic!("canonical form of {show:?} did not parse: {other:?}"),
            }
        }
        (Want::Err(reply, n, swallow, close), Parse::Invalid(inv)) => {
            let mut out = Vec::new();
            inv.error.encode(&mut out);
            let sent = inv.reply.then_some(out.as_slice());
            assert_eq!(
                sent.map(String::from_utf8_lossy),
                reply.map(String::from_utf8_lossy),
                "reply for {show:?}"
            );
            assert_eq!(inv.consumed, n, "consumed for {show:?}");
            assert_eq!(inv.swallow, swallow, "swallow for {show:?}");
            assert_eq!(inv.close, close, "close for {show:?}");
        }
        (Want::More(m), Parse::Incomplete { more }) => assert_eq!(*more, m, "hint for {show:?}"),
        (w, g) => panic!(
            "{show:?}: wanted {w:?}, got {}",
            format!("{g:?}").chars().take(300).collect::<String>()
        ),
    }
    // Split at every byte: before the deciding byte it is Incomplete, with a hint
    // that never asks for more than the whole needs; once whole, the same result.
    let decided = match want {
        Want::Ok(_, n) | Want::Err(_, n, _, false) => n,
        _ => return,
    };
    for cut in 0..decided {
        match parse(&input[..cut], limits) {
            Parse::Incomplete { more } => {
                if let Some(m) = more {
                    assert!(cut + m <= decided, "{show:?} cut {cut}: hint {m} too big");
                    assert!(m > 0);
                }
            }
            other => panic!("{show:?} cut at {cut}: {other:?}"),
        }
    }
    assert_eq!(
        parse(&input[..decided], limits),
        got,
        "{show:?} whole vs exact"
    );
}

pub fn check(input: &[u8], want: Want<'_>) {
    check_with(input, want, &Limits::default());
}

/// Parse a pipeline, returning per request the encoded request or the error line
/// (with `!` for silenced errors), skipping swallowed bytes as a server would.
pub fn pipeline(mut buf: &[u8], limits: &Limits) -> Vec<String> {
    let mut outs = Vec::new();
    loop {
        match parse(buf, limits) {
            Parse::Complete { request, consumed } => {
                let mut o = Vec::new();
                request.encode(&mut o);
                outs.push(String::from_utf8_lossy(&o).into_owned());
                buf = &buf[consumed..];
            }
            Parse::Invalid(inv) => {
                let mut o = Vec::new();
                if !inv.reply {
                    o.push(b'!');
                }
                inv.error.encode(&mut o);
                outs.push(String::from_utf8_lossy(&o).into_owned());
                if inv.close {
                    outs.push("CLOSE".into());
                    return outs;
                }
                let skip = (inv.consumed + inv.swallow).min(buf.len());
                buf = &buf[skip..];
            }
            Parse::Incomplete { .. } => return outs,
        }
    }
}
