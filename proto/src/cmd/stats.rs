//! `stats [args]` and the `STAT <name> <value>` replies.

use crate::line::{Tokens, split_tokens};
use crate::meta::{put_i64, put_u64};
use crate::text::{Ctx, Parsed};
use std::io::Write as _;

/// `stats` with its arguments (which statistics is the engine's business:
/// `settings`, `items`, `slabs`, `sizes`, `conns`, `detail on|off|dump`,
/// `cachedump <id> <limit>`, `reset`…; unknown ones are answered `ERROR`).
#[derive(Debug, Clone, Copy)]
pub struct Stats<'a> {
    args: &'a [u8],
}

impl PartialEq for Stats<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.args().eq(other.args())
    }
}

impl<'a> Stats<'a> {
    /// `stats` with the given space-separated arguments (client side).
    pub fn new(args: &'a [u8]) -> Self {
        Stats { args }
    }

    /// The arguments.
    pub fn args(&self) -> impl Iterator<Item = &'a [u8]> + Clone {
        split_tokens(self.args)
    }

    /// The first argument, if any (`None` is the general-purpose `stats`).
    pub fn subcommand(&self) -> Option<&'a [u8]> {
        self.args().next()
    }

    /// Append `stats[ args]\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"stats");
        for a in self.args() {
            out.push(b' ');
            out.extend_from_slice(a);
        }
        out.extend_from_slice(b"\r\n");
    }
}

pub(crate) fn parse<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Stats<'a>> {
    cx.done(Stats { args: t.rest(1) })
}

/// Append `STAT <name> <value>\r\n`.
#[inline]
pub fn encode_stat(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Append `STAT <name> <unsigned>\r\n`.
#[inline]
pub fn encode_stat_u64(out: &mut Vec<u8>, name: &[u8], value: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    put_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Append `STAT <name> <signed>\r\n`.
#[inline]
pub fn encode_stat_i64(out: &mut Vec<u8>, name: &[u8], value: i64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    put_i64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// Append `STAT <name> <formatted>\r\n` (e.g. `rusage_user 0.123456`); formats
/// straight into `out`.
pub fn encode_stat_fmt(out: &mut Vec<u8>, name: &[u8], value: std::fmt::Arguments<'_>) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    // Writing into a Vec cannot fail.
    let _ = out.write_fmt(value);
    out.extend_from_slice(b"\r\n");
}
