//! `touch <key> <exptime> [noreply]`.

use crate::check_key;
use crate::cmd::{put_noreply, put_sp_i64};
use crate::error::{ClientError, ErrorReply};
use crate::line::Tokens;
use crate::num::strtol;
use crate::text::{Ctx, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch<'a> {
    pub key: &'a [u8],
    pub exptime: i32,
    pub noreply: bool,
}

pub(crate) fn parse<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Touch<'a>> {
    if t.len() != 3 && t.len() != 4 {
        return cx.invalid(ErrorReply::Error, true);
    }
    let noreply = t.noreply();
    let key = t.get(1);
    if !check_key(key, &cx.limits) {
        return cx.invalid(ClientError::BadCommandLineFormat, !noreply);
    }
    let Some(exptime) = strtol(t.get(2)) else {
        return cx.invalid(ClientError::InvalidExptime, !noreply);
    };
    cx.done(Touch {
        key,
        exptime,
        noreply,
    })
}

impl Touch<'_> {
    /// Append `touch <key> <exptime>[ noreply]\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"touch ");
        out.extend_from_slice(self.key);
        put_sp_i64(out, self.exptime.into());
        put_noreply(out, self.noreply);
        out.extend_from_slice(b"\r\n");
    }
}
