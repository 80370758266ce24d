//! `incr`/`decr <key> <delta> [noreply]`.

use crate::check_key;
use crate::cmd::{put_noreply, put_sp_u64};
use crate::error::{ClientError, ErrorReply};
use crate::line::Tokens;
use crate::num::strtoull;
use crate::text::{Ctx, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithCmd {
    Incr,
    Decr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arith<'a> {
    pub cmd: ArithCmd,
    pub key: &'a [u8],
    pub delta: u64,
    pub noreply: bool,
}

pub(crate) fn parse<'a>(cmd: ArithCmd, t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Arith<'a>> {
    if t.len() != 3 && t.len() != 4 {
        return cx.invalid(ErrorReply::Error, true);
    }
    let noreply = t.noreply();
    let key = t.get(1);
    if !check_key(key, &cx.limits) {
        return cx.invalid(ClientError::BadCommandLineFormat, !noreply);
    }
    let Some(delta) = strtoull(t.get(2)) else {
        return cx.invalid(ClientError::InvalidDeltaArgument, !noreply);
    };
    cx.done(Arith {
        cmd,
        key,
        delta,
        noreply,
    })
}

impl Arith<'_> {
    /// Append `incr|decr <key> <delta>[ noreply]\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.cmd {
            ArithCmd::Incr => b"incr ",
            ArithCmd::Decr => b"decr ",
        });
        out.extend_from_slice(self.key);
        put_sp_u64(out, self.delta);
        put_noreply(out, self.noreply);
        out.extend_from_slice(b"\r\n");
    }
}
