//! `delete <key> [0] [noreply]`.

use crate::check_key;
use crate::cmd::put_noreply;
use crate::error::{ClientError, ErrorReply};
use crate::line::Tokens;
use crate::text::{Ctx, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete<'a> {
    pub key: &'a [u8],
    pub noreply: bool,
}

pub(crate) fn parse<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Delete<'a>> {
    if !(2..=4).contains(&t.len()) {
        return cx.invalid(ErrorReply::Error, true);
    }
    let mut noreply = false;
    if t.len() > 2 {
        // A legacy hold time of 0 is tolerated, as memcached does for old clients.
        let hold_is_zero = t.get(2) == b"0";
        noreply = t.noreply();
        let valid = (t.len() == 3 && (hold_is_zero || noreply))
            || (t.len() == 4 && hold_is_zero && noreply);
        if !valid {
            return cx.invalid(ClientError::DeleteUsage, !noreply);
        }
    }
    let key = t.get(1);
    if !check_key(key, &cx.limits) {
        return cx.invalid(ClientError::BadCommandLineFormat, !noreply);
    }
    cx.done(Delete { key, noreply })
}

impl Delete<'_> {
    /// Append `delete <key>[ noreply]\r\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"delete ");
        out.extend_from_slice(self.key);
        put_noreply(out, self.noreply);
        out.extend_from_slice(b"\r\n");
    }
}
