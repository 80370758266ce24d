//! Meta flags: parsing (memcached's `_meta_flag_preparse`), access, encoding.

use crate::error::ClientError;
use crate::line::split_tokens;
use crate::meta::put_u64;
use crate::num::{strtol, strtoul, strtoull};
use crate::{base64, meta::put_i64};

/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`: the whole `O…` token, letter included.
pub const MAX_OPAQUE_TOKEN: usize = 32;

/// memcached's `MFLAG_MAX_OPT_LENGTH`: a meta line may hold at most 19 tokens.
pub(crate) const MAX_META_TOKENS: usize = 19;

/// One meta flag, typed. Requests are built from these on the client side, and a
/// parsed [`MetaFlags`] yields them back in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFlag<'a> {
    /// `b`: the key is base64.
    Base64,
    /// `c`: return the CAS value.
    ReturnCas,
    /// `f`: return the client flags.
    ReturnFlags,
    /// `h`: return whether the item was hit before (0/1).
    ReturnHit,
    /// `k`: return the key.
    ReturnKey,
    /// `l`: return seconds since last access.
    ReturnLastAccess,
    /// `q`: quiet, suppress the nominal reply.
    Quiet,
    /// `s`: return the value size.
    ReturnSize,
    /// `t`: return the remaining TTL (-1 for none).
    ReturnTtl,
    /// `u`: do not bump the item in the LRU.
    NoBump,
    /// `v`: return the value.
    ReturnValue,
    /// `x`: (md) remove the value but keep the item (memcached > 1.6.18).
    RemoveValue,
    /// `I`: invalidate (md: mark stale; ms: store as stale if the CAS is older).
    Invalidate,
    /// `O<token>`: opaque, echoed in the reply.
    Opaque(&'a [u8]),
    /// `T<ttl>`: set the TTL.
    Ttl(i32),
    /// `N<ttl>`: vivify on miss with this TTL.
    Vivify(i32),
    /// `R<ttl>`: win the recache race when the remaining TTL is below this.
    Recache(i32),
    /// `E<cas>`: use this as the new CAS value (memcached > 1.6.18).
    NewCas(u64),
    /// `C<cas>`: compare this CAS value.
    CompareCas(u64),
    /// `F<flags>`: client flags to store.
    ClientFlags(u32),
    /// `M<mode>`: mode switch (ms: E A P R S; ma: I + D -).
    Mode(u8),
    /// `D<delta>`: ma delta.
    Delta(u64),
    /// `J<initial>`: ma initial value on vivify.
    Initial(u64),
    /// `P…`/`L…`: proxy hints, ignored by the server.
    ProxyHint(u8, &'a [u8]),
}

impl<'a> MetaFlag<'a> {
    /// Read one flag token that already passed [`MetaFlags`] parsing.
    fn from_token(t: &'a [u8]) -> Option<Self> {
        let arg = &t[1..];
        Some(match t[0] {
            b'b' => MetaFlag::Base64,
            b'c' => MetaFlag::ReturnCas,
            b'f' => MetaFlag::ReturnFlags,
            b'h' => MetaFlag::ReturnHit,
            b'k' => MetaFlag::ReturnKey,
            b'l' => MetaFlag::ReturnLastAccess,
            b'q' => MetaFlag::Quiet,
            b's' => MetaFlag::ReturnSize,
            b't' => MetaFlag::ReturnTtl,
            b'u' => MetaFlag::NoBump,
            b'v' => MetaFlag::ReturnValue,
            b'x' => MetaFlag::RemoveValue,
            b'I' => MetaFlag::Invalidate,
            b'O' => MetaFlag::Opaque(arg),
            b'T' => MetaFlag::Ttl(strtol(arg)?),
            b'N' => MetaFlag::Vivify(strtol(arg)?),
            b'R' => MetaFlag::Recache(strtol(arg)?),
            b'E' => MetaFlag::NewCas(strtoull(arg)?),
            b'C' => MetaFlag::CompareCas(strtoull(arg)?),
            b'F' => MetaFlag::ClientFlags(strtoul(arg)?),
            b'M' => MetaFlag::Mode(*arg.first()?),
            b'D' => MetaFlag::Delta(strtoull(arg)?),
            b'J' => MetaFlag::Initial(strtoull(arg)?),
            c @ (b'P' | b'L') => MetaFlag::ProxyHint(c, arg),
            _ => return None,
        })
    }

    /// Append ` <flag>` in its canonical form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        let letter = |out: &mut Vec<u8>, c: u8| out.push(c);
        match *self {
            MetaFlag::Base64 => letter(out, b'b'),
            MetaFlag::ReturnCas => letter(out, b'c'),
            MetaFlag::ReturnFlags => letter(out, b'f'),
            MetaFlag::ReturnHit => letter(out, b'h'),
            MetaFlag::ReturnKey => letter(out, b'k'),
            MetaFlag::ReturnLastAccess => letter(out, b'l'),
            MetaFlag::Quiet => letter(out, b'q'),
            MetaFlag::ReturnSize => letter(out, b's'),
            MetaFlag::ReturnTtl => letter(out, b't'),
            MetaFlag::NoBump => letter(out, b'u'),
            MetaFlag::ReturnValue => letter(out, b'v'),
            MetaFlag::RemoveValue => letter(out, b'x'),
            MetaFlag::Invalidate => letter(out, b'I'),
            MetaFlag::Opaque(o) => {
                out.push(b'O');
                out.extend_from_slice(o);
            }
            MetaFlag::Ttl(v) => {
                out.push(b'T');
                put_i64(out, v.into());
            }
            MetaFlag::Vivify(v) => {
                out.push(b'N');
                put_i64(out, v.into());
            }
            MetaFlag::Recache(v) => {
                out.push(b'R');
                put_i64(out, v.into());
            }
            MetaFlag::NewCas(v) => {
                out.push(b'E');
                put_u64(out, v);
            }
            MetaFlag::CompareCas(v) => {
                out.push(b'C');
                put_u64(out, v);
            }
            MetaFlag::ClientFlags(v) => {
                out.push(b'F');
                put_u64(out, v.into());
            }
            MetaFlag::Mode(m) => {
                out.push(b'M');
                out.push(m);
            }
            MetaFlag::Delta(v) => {
                out.push(b'D');
                put_u64(out, v);
            }
            MetaFlag::Initial(v) => {
                out.push(b'J');
                put_u64(out, v);
            }
            MetaFlag::ProxyHint(c, t) => {
                out.push(c);
                out.extend_from_slice(t);
            }
        }
    }
}

/// The flags of one meta request: presence bits, the values of token flags, and
/// the raw flag text (for reply order and zero-copy opaque echo).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaFlags<'a> {
    present: u64,
    ttl: i32,
    vivify: i32,
    recache: i32,
    client_flags: u32,
    mode: u8,
    new_cas: u64,
    compare_cas: u64,
    delta: u64,
    initial: u64,
    opaque: &'a [u8],
    raw: &'a [u8],
}

#[inline]
fn bit(c: u8) -> u64 {
    debug_assert!(c.is_ascii_alphabetic());
    1u64 << (c - b'A')
}

impl Eq for MetaFlags<'_> {}

impl PartialEq for MetaFlags<'_> {
    /// Two flag sets are equal when they hold the same flags in the same order
    /// (order is meaningful: it is the order of the reply's return flags).
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a> MetaFlags<'a> {
    /// Parse the flag tokens `toks` of a meta request whose key token is `key`,
    /// reproducing memcached's checks and its choice of error text: an unknown or
    /// repeated flag stops at once; a bad token value is remembered and parsing
    /// goes on, so the last such complaint is the one reported.
    pub(crate) fn parse<I>(toks: I, raw: &'a [u8], key: &[u8]) -> Result<Self, ClientError>
    where
        I: Iterator<Item = &'a [u8]>,
    {
        let mut f = MetaFlags {
            raw,
            ..MetaFlags::default()
        };
        let mut seen: u128 = 0;
        let mut failed = false;
        let mut why = ClientError::BadCommandLineFormat;
        for t in toks {
            let o = t[0];
            if o >= 127 || seen & (1u128 << o) != 0 {
                return Err(ClientError::DuplicateFlag);
            }
            seen |= 1u128 << o;
            let arg = &t[1..];
            let mut bad = |e: Option<ClientError>| {
                failed = true;
                if let Some(e) = e {
                    why = e;
                }
            };
            match o {
                b'b' => {
                    if !base64::validate(key) {
                        bad(Some(ClientError::ErrorDecodingKey));
                    }
                }
                b'T' | b'N' | b'R' => match strtol(arg) {
                    Some(v) if o == b'T' => f.ttl = v,
                    Some(v) if o == b'N' => f.vivify = v,
                    Some(v) => f.recache = v,
                    None => bad(Some(ClientError::BadToken)),
                },
                b'F' => match strtoul(arg) {
                    Some(v) => f.client_flags = v,
                    // memcached flags the error here without choosing a message.
                    None => bad(None),
                },
                b'C' | b'E' => match strtoull(arg) {
                    Some(v) if o == b'C' => f.compare_cas = v,
                    Some(v) => f.new_cas = v,
                    None => bad(Some(ClientError::BadToken)),
                },
                b'M' => {
                    if t.len() != 2 {
                        bad(Some(ClientError::IncorrectModeLength));
                    } else {
                        f.mode = t[1];
                    }
                }
                b'J' => match strtoull(arg) {
                    Some(v) => f.initial = v,
                    None => bad(Some(ClientError::InvalidInitialValue)),
                },
                b'D' => match strtoull(arg) {
                    Some(v) => f.delta = v,
                    None => bad(Some(ClientError::InvalidDeltaValue)),
                },
                b'O' => f.opaque = arg,
                b'P' | b'L' | b'c' | b'f' | b'h' | b'k' | b'l' | b'q' | b's' | b't' | b'u'
                | b'v' | b'x' | b'I' | b'Y' => {}
                _ => return Err(ClientError::InvalidFlag),
            }
            f.present |= bit(o);
        }
        if failed { Err(why) } else { Ok(f) }
    }

    /// The flag tokens as sent, letter first (reply encoders walk these to keep
    /// the request's order).
    pub(crate) fn raw_tokens(&self) -> impl Iterator<Item = &'a [u8]> + Clone {
        split_tokens(self.raw)
    }

    /// The flags in request order.
    pub fn iter(&self) -> impl Iterator<Item = MetaFlag<'a>> + Clone {
        self.raw_tokens().filter_map(MetaFlag::from_token)
    }

    /// The raw flag text, as sent (tokens separated by spaces).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the flag letter `c` was sent (e.g. `b'k'`).
    #[inline]
    pub fn has(&self, c: u8) -> bool {
        c.is_ascii_alphabetic() && self.present & bit(c) != 0
    }

    #[inline]
    fn value<T: Copy>(&self, c: u8, v: T) -> Option<T> {
        self.has(c).then_some(v)
    }

    /// `q`.
    pub fn quiet(&self) -> bool {
        self.has(b'q')
    }
    /// `v`.
    pub fn return_value(&self) -> bool {
        self.has(b'v')
    }
    /// `b`.
    pub fn base64(&self) -> bool {
        self.has(b'b')
    }
    /// `u`.
    pub fn no_bump(&self) -> bool {
        self.has(b'u')
    }
    /// `I`.
    pub fn invalidate(&self) -> bool {
        self.has(b'I')
    }
    /// `Y` (corecache's own, for replica records on peer links): apply an
    /// ms only if its `E` CAS is newer than the stored item's, an md only if
    /// the stored item's CAS is not newer than its `E`.
    pub fn if_newer(&self) -> bool {
        self.has(b'Y')
    }
    /// `x`.
    pub fn remove_value(&self) -> bool {
        self.has(b'x')
    }
    /// `T`.
    pub fn ttl(&self) -> Option<i32> {
        self.value(b'T', self.ttl)
    }
    /// `N`.
    pub fn vivify(&self) -> Option<i32> {
        self.value(b'N', self.vivify)
    }
    /// `R`.
    pub fn recache(&self) -> Option<i32> {
        self.value(b'R', self.recache)
    }
    /// `E`.
    pub fn new_cas(&self) -> Option<u64> {
        self.value(b'E', self.new_cas)
    }
    /// `C`.
    pub fn compare_cas(&self) -> Option<u64> {
        self.value(b'C', self.compare_cas)
    }
    /// `F`.
    pub fn client_flags(&self) -> Option<u32> {
        self.value(b'F', self.client_flags)
    }
    /// `M`: the mode character.
    pub fn mode(&self) -> Option<u8> {
        self.value(b'M', self.mode)
    }
    /// `D`.
    pub fn delta(&self) -> Option<u64> {
        self.value(b'D', self.delta)
    }
    /// `J`.
    pub fn initial(&self) -> Option<u64> {
        self.value(b'J', self.initial)
    }
    /// `O`: the opaque token without its letter.
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.value(b'O', self.opaque)
    }

    /// memcached refuses an `O` token longer than 32 bytes, letter included.
    pub(crate) fn opaque_too_long(&self) -> bool {
        self.has(b'O') && self.opaque.len() + 1 > MAX_OPAQUE_TOKEN
    }

    /// Append the flags in canonical form (` f1 f2…`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for f in self.iter() {
            f.encode(out);
        }
    }
}

/// Append flags given as a list (client side).
pub fn encode_list(flags: &[MetaFlag<'_>], out: &mut Vec<u8>) {
    for f in flags {
        f.encode(out);
    }
}
