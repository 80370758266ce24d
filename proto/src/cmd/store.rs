//! `set`, `add`, `replace`, `append`, `prepend`, `cas`: request, parse, encode.

use crate::check_key;
use crate::cmd::{put_noreply, put_sp_i64, put_sp_u64};
use crate::error::{ClientError, ErrorReply, Invalid, ServerError};
use crate::line::Tokens;
use crate::meta::Key;
use crate::num::{strtol, strtoul, strtoull};
use crate::text::{Ctx, Parsed};

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCmd {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

impl StoreCmd {
    /// The command's name (`set`, `cas`, ...).
    pub fn name(self) -> &'static str {
        std::str::from_utf8(self.word()).expect("ascii")
    }

    fn word(self) -> &'static [u8] {
        match self {
            StoreCmd::Set => b"set",
            StoreCmd::Add => b"add",
            StoreCmd::Replace => b"replace",
            StoreCmd::Append => b"append",
            StoreCmd::Prepend => b"prepend",
            StoreCmd::Cas => b"cas",
        }
    }
}

/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store<'a> {
    pub cmd: StoreCmd,
    pub key: &'a [u8],
    /// Client flags (memcached keeps the low 32 bits of what was sent).
    pub flags: u32,
    /// Expiration as sent (relative seconds, or Unix time past 30 days; <0 expires).
    pub exptime: i32,
    pub data: &'a [u8],
    /// The compare value of `cas` (0 for the other commands).
    pub cas: u64,
    pub noreply: bool,
}

// Inlined into the dispatch, as get's parser is (see there).
#[inline(always)]
pub(crate) fn parse<'a>(cmd: StoreCmd, t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Store<'a>> {
    let base = if cmd == StoreCmd::Cas { 6 } else { 5 };
    // memcached's WANT_TOKENS_OR: exactly the arguments, or one more.
    if t.len() != base && t.len() != base + 1 {
        return cx.invalid(ErrorReply::Error, true);
    }
    // noreply is read before anything else can fail, so it silences the errors.
    let noreply = t.noreply();
    let bad = || cx.invalid(ClientError::BadCommandLineFormat, !noreply);
    let key = t.get(1);
    if !check_key(key, &cx.limits) {
        return bad();
    }
    let (Some(flags), Some(exptime), Some(vlen)) =
        (strtoul(t.get(2)), strtol(t.get(3)), strtol(t.get(4)))
    else {
        return bad();
    };
    let cas = if cmd == StoreCmd::Cas {
        match strtoull(t.get(5)) {
            Some(c) => c,
            None => return bad(),
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return bad();
    }
    let vlen = vlen as usize;
    if vlen > cx.limits.max_item_size {
        // Answered at once and the block swallowed as it arrives; a refused `set`
        // also removes the old item so that stale data does not persist.
        return Err(Invalid {
            error: ServerError::ObjectTooLarge.into(),
            reply: !noreply,
            consumed: cx.next,
            swallow: vlen + 2,
            close: false,
            unlink: (cmd == StoreCmd::Set).then_some(Key::plain(key)),
        }
        .into());
    }
    let (data, consumed) = cx.data_block(vlen, !noreply)?;
    let store = Store {
        cmd,
        key,
        flags,
        exptime,
        data,
        cas,
        noreply,
    };
    Ok((store, consumed))
}

impl Store<'_> {
    /// Append the command line and data block.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.key.len() + self.data.len() + 64);
        out.extend_from_slice(self.cmd.word());
        out.push(b' ');
        out.extend_from_slice(self.key);
        put_sp_u64(out, self.flags.into());
        put_sp_i64(out, self.exptime.into());
        put_sp_u64(out, self.data.len() as u64);
        if self.cmd == StoreCmd::Cas {
            put_sp_u64(out, self.cas);
        }
        put_noreply(out, self.noreply);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.data);
        out.extend_from_slice(b"\r\n");
    }
}
