//! memcached's binary protocol (deprecated by memcached since 1.6, still spoken
//! by older clients): a 24-byte header, then extras, key and value.
//!
//! ```text
//!   request header (network byte order)          response header
//!   0      1       2       3                      0      1       2       3
//!   ┌──────┬───────┬───────────────┐              ┌──────┬───────┬───────────────┐
//!   │ 0x80 │opcode │ key length    │  0           │ 0x81 │opcode │ key length    │
//!   ├──────┼───────┼───────────────┤              ├──────┼───────┼───────────────┤
//!   │extlen│ dtype │ vbucket (0)   │  4           │extlen│ dtype │ status        │
//!   ├──────┴───────┴───────────────┤              ├──────┴───────┴───────────────┤
//!   │ total body length            │  8           │ total body length            │
//!   ├──────────────────────────────┤              ├──────────────────────────────┤
//!   │ opaque (echoed)              │ 12           │ opaque                       │
//!   ├──────────────────────────────┤              ├──────────────────────────────┤
//!   │ cas (8 bytes)                │ 16..24       │ cas (8 bytes)                │
//!   └──────────────────────────────┘              └──────────────────────────────┘
//!   body = extras (extlen) ‖ key (key length) ‖ value (the rest)
//! ```
//!
//! ```text
//!   bytes ──► parse(buf, &limits) ──► BinParse::Complete { BinRequest<'buf>, consumed = 24 + body }
//!                                ├──► BinParse::Incomplete { more }      (read, then retry)
//!                                └──► BinParse::Invalid(BinInvalid)      (reply?, skip, swallow, close?)
//!   outcome ──► encode_* / encode_response(&mut out, …) ──► bytes
//!   client:  BinRequest::encode ──► bytes;  parse_response(bytes) ──► BinResponse
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`get`] | get getq getk getkq, gat gatq gatk gatkq, touch; hit and miss replies |
//! | [`store`] | set add replace (+q), append prepend (+q) |
//! | [`arith`] | increment decrement (+q); the 8-byte counter reply |
//! | [`delete`] | delete deleteq |
//! | [`admin`] | quit flush noop version stat verbosity; version and stat replies |
//! | [`sasl`] | SASL list-mechs, auth, step |
//! | [`response`] | [`Status`], [`ResponseHeader`], [`encode_response`], status-only replies |
//! | [`client`] | [`BinRequest::encode`] and [`parse_response`] for the loadgen and tests |
//!
//! # What the engine does with each operation
//!
//! The engine never reads wire bytes: it matches on [`BinOp`], calls the store,
//! and answers with the encoders here, echoing [`BinRequest::reply_to`]. What
//! memcached 1.6.18 (`proto_bin.c`) does, and so what the engine should do:
//!
//! | op | store call | reply |
//! |---|---|---|
//! | `Get { key, with_key }` | get | hit: [`get::encode_hit`] (flags extras, item CAS, key if `with_key`); miss: [`get::encode_miss`], not sent when `quiet` |
//! | `Gat { key, exptime, with_key }` | get and touch | as `Get` |
//! | `Touch { key, exptime }` | touch | hit: [`get::encode_touched`] (flags, CAS, no value); miss: `NotFound` |
//! | `Store { mode, key, flags, exptime, value }` | store with `mode`; compare-and-swap when `request.cas != 0` | stored: [`response::encode_ok`] with the new CAS, not sent when `quiet`; not stored: `add` → `KeyExists`, `replace` → `NotFound`, `set` → `NotStored`; CAS mismatch → `KeyExists`, CAS on a missing key → `NotFound` |
//! | `Concat { mode, key, value }` | append/prepend (CAS as `Store`) | stored: as `Store`; missing key → `NotStored` |
//! | `Delete { key }` | delete, only if `request.cas` is 0 or matches | ok (CAS 0, not sent when `quiet`); `NotFound`; CAS mismatch → `KeyExists` |
//! | `Arith { mode, key, delta, initial, exptime }` | incr/decr; on a miss, create `initial` with `exptime` unless [`Arith::creates`] is false (`exptime == 0xffffffff`) | [`arith::encode_counter`] with the new CAS (not sent when `quiet`); miss that may not create → `NotFound`; non-numeric → `DeltaBadval`; `request.cas` given and not matching → `KeyExists` |
//! | `Flush { delay }` | flush now or after `delay` seconds | ok, not sent when `quiet`; flush disabled → `AuthError` |
//! | `Noop` | — | [`response::encode_ok`]; the engine flushes its pending replies (quiet gets end with a noop) |
//! | `Version` | — | [`admin::encode_version`] |
//! | `Stat { key }` | the stats table (`None`: general stats) | [`admin::encode_stat`] per pair, then [`admin::encode_stats_end`]; an unknown group → `NotFound` |
//! | `Quit` | — | ok (not sent when `quiet`), then close |
//! | `Verbosity { level }` | — | memcached 1.6.18 has no such opcode and answers `UnknownCommand`; the engine should too |
//! | `SaslListMechs`, `SaslAuth`, `SaslStep` | — | SASL off (memcached without `-S`): `UnknownCommand` |
//!
//! Errors are always sent, quiet or not; quiet only silences successes (and
//! misses of quiet gets).
//!
//! # Where this differs from memcached 1.6.18, on purpose
//!
//! - An unknown opcode is answered and its body skipped exactly; memcached skips
//!   `body length` bytes counted after the extras and key, which eats the start
//!   of the next request when the unknown request had extras or a key.
//! - `stat`, `touch` and the `gat` family with more body than extras and key are
//!   refused with `InvalidArguments` and a close, as memcached refuses such
//!   bodies for every other opcode; memcached reads the surplus as the next request.
//! - Errors that close the connection are decided from the header alone;
//!   memcached first waits for the extras and key it then ignores.

pub mod admin;
pub mod arith;
pub mod client;
pub mod delete;
pub mod get;
pub mod response;
pub mod sasl;
pub mod store;

pub use arith::{Arith, ArithMode};
pub use client::{BinResponse, ResponseError, ResponseParse, encode_request, parse_response};
pub use response::{ResponseHeader, Status, encode_response};
pub use store::{ConcatMode, StoreMode};

use crate::Limits;

/// Length of every request and response header.
pub const HEADER_LEN: usize = 24;
/// The magic byte of a request; memcached picks the binary protocol for a
/// connection whose first byte is this.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The magic byte of a response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// `exptime` of an increment/decrement that must not create a missing counter.
pub const NO_CREATE: u32 = 0xffff_ffff;

macro_rules! opcodes {
    ($($(#[$m:meta])* $v:ident = $n:literal,)*) => {
        /// Every opcode this codec knows, with memcached's numbers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode { $($(#[$m])* $v = $n,)* }
        impl Opcode {
            /// The opcode with this number, if known.
            pub fn from_u8(n: u8) -> Option<Opcode> {
                match n { $($n => Some(Opcode::$v),)* _ => None }
            }
            /// Every opcode, for tests and docs.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$v,)*];
        }
    };
}

opcodes!(
    Get = 0x00,
    Set = 0x01,
    Add = 0x02,
    Replace = 0x03,
    Delete = 0x04,
    Increment = 0x05,
    Decrement = 0x06,
    Quit = 0x07,
    Flush = 0x08,
    GetQ = 0x09,
    Noop = 0x0a,
    Version = 0x0b,
    GetK = 0x0c,
    GetKQ = 0x0d,
    Append = 0x0e,
    Prepend = 0x0f,
    Stat = 0x10,
    SetQ = 0x11,
    AddQ = 0x12,
    ReplaceQ = 0x13,
    DeleteQ = 0x14,
    IncrementQ = 0x15,
    DecrementQ = 0x16,
    QuitQ = 0x17,
    FlushQ = 0x18,
    AppendQ = 0x19,
    PrependQ = 0x1a,
    /// In the binary protocol's spec; memcached 1.6.18 answers it `UnknownCommand`.
    Verbosity = 0x1b,
    Touch = 0x1c,
    Gat = 0x1d,
    GatQ = 0x1e,
    SaslListMechs = 0x20,
    SaslAuth = 0x21,
    SaslStep = 0x22,
    GatK = 0x23,
    GatKQ = 0x24,
);

impl Opcode {
    /// Whether this is the quiet twin of another opcode.
    pub fn is_quiet(self) -> bool {
        use Opcode::*;
        matches!(
            self,
            GetQ | GetKQ
                | SetQ
                | AddQ
                | ReplaceQ
                | DeleteQ
                | IncrementQ
                | DecrementQ
                | QuitQ
                | FlushQ
                | AppendQ
                | PrependQ
                | GatQ
                | GatKQ
        )
    }
}

/// A parsed request: what the engine needs from the header, and the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinRequest<'a> {
    /// The opcode as sent; replies carry it back.
    pub opcode: Opcode,
    /// Echoed in every reply to this request.
    pub opaque: u32,
    /// The header's CAS: compare-and-swap for stores, concatenations, deletes and
    /// counters when not 0; ignored by the other operations.
    pub cas: u64,
    /// A quiet opcode: successes (and quiet-get misses) are not answered.
    pub quiet: bool,
    pub op: BinOp<'a>,
}

/// The operation, with its extras decoded. Keys and values borrow the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp<'a> {
    /// get getq getk getkq; `with_key`: the reply carries the key (getk).
    Get {
        key: &'a [u8],
        with_key: bool,
    },
    /// gat gatq gatk gatkq: get and set the expiration.
    Gat {
        key: &'a [u8],
        exptime: u32,
        with_key: bool,
    },
    Touch {
        key: &'a [u8],
        exptime: u32,
    },
    /// set add replace (+q).
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: u32,
        value: &'a [u8],
    },
    /// append prepend (+q).
    Concat {
        mode: ConcatMode,
        key: &'a [u8],
        value: &'a [u8],
    },
    Delete {
        key: &'a [u8],
    },
    /// increment decrement (+q).
    Arith(Arith<'a>),
    Quit,
    /// `delay`: `None` when the request had no extras, else its expiration field.
    Flush {
        delay: Option<u32>,
    },
    Noop,
    Version,
    /// `None`: the general stats; else the group (`settings`, `slabs`, `reset` …).
    Stat {
        key: Option<&'a [u8]>,
    },
    Verbosity {
        level: u32,
    },
    SaslListMechs,
    SaslAuth {
        mech: &'a [u8],
        data: &'a [u8],
    },
    SaslStep {
        mech: &'a [u8],
        data: &'a [u8],
    },
}

impl<'a> BinRequest<'a> {
    /// A request for `op`, with the opcode that expresses it (the quiet twin when
    /// `quiet` and the operation has one; `quiet` is cleared when it has none).
    pub fn new(op: BinOp<'a>, quiet: bool, opaque: u32, cas: u64) -> Self {
        let opcode = op.opcode(quiet);
        BinRequest {
            opcode,
            opaque,
            cas,
            quiet: opcode.is_quiet(),
            op,
        }
    }

    /// Where replies to this request go.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            opcode: self.opcode as u8,
            opaque: self.opaque,
        }
    }

    /// Whether a hit is answered with the key (getk, gatk and their quiet twins).
    pub fn returns_key(&self) -> bool {
        matches!(
            self.op,
            BinOp::Get { with_key: true, .. } | BinOp::Gat { with_key: true, .. }
        )
    }

    /// The key the operation acts on, if it has one.
    pub fn key(&self) -> Option<&'a [u8]> {
        match self.op {
            BinOp::Get { key, .. }
            | BinOp::Gat { key, .. }
            | BinOp::Touch { key, .. }
            | BinOp::Store { key, .. }
            | BinOp::Concat { key, .. }
            | BinOp::Delete { key } => Some(key),
            BinOp::Arith(a) => Some(a.key),
            BinOp::Stat { key } => key,
            _ => None,
        }
    }
}

impl BinOp<'_> {
    /// The opcode for this operation, quiet if asked and there is a quiet twin.
    pub fn opcode(&self, quiet: bool) -> Opcode {
        use Opcode::*;
        let (loud, q) = match *self {
            BinOp::Get {
                with_key: false, ..
            } => (Get, GetQ),
            BinOp::Get { with_key: true, .. } => (GetK, GetKQ),
            BinOp::Gat {
                with_key: false, ..
            } => (Gat, GatQ),
            BinOp::Gat { with_key: true, .. } => (GatK, GatKQ),
            BinOp::Touch { .. } => (Touch, Touch),
            BinOp::Store { mode, .. } => mode.opcodes(),
            BinOp::Concat { mode, .. } => mode.opcodes(),
            BinOp::Delete { .. } => (Delete, DeleteQ),
            BinOp::Arith(a) => a.mode.opcodes(),
            BinOp::Quit => (Quit, QuitQ),
            BinOp::Flush { .. } => (Flush, FlushQ),
            BinOp::Noop => (Noop, Noop),
            BinOp::Version => (Version, Version),
            BinOp::Stat { .. } => (Stat, Stat),
            BinOp::Verbosity { .. } => (Verbosity, Verbosity),
            BinOp::SaslListMechs => (SaslListMechs, SaslListMechs),
            BinOp::SaslAuth { .. } => (SaslAuth, SaslAuth),
            BinOp::SaslStep { .. } => (SaslStep, SaslStep),
        };
        if quiet { q } else { loud }
    }
}

/// The opcode and opaque a reply echoes. `opcode` is a byte, not an [`Opcode`],
/// because unknown opcodes are answered too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub opcode: u8,
    pub opaque: u32,
}

/// The error reply memcached sends for a refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinError {
    pub to: ReplyTo,
    pub status: Status,
}

impl BinError {
    /// Append the reply: the status, its message as the body, CAS 0.
    pub fn encode(&self, out: &mut Vec<u8>) {
        response::encode_status(out, self.to, self.status);
    }
}

/// A request memcached refuses, and how to get back in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinInvalid<'a> {
    /// What to answer; `None` for a bad magic byte, which memcached answers by
    /// closing the connection.
    pub reply: Option<BinError>,
    /// Bytes at the start of the buffer to drop (at least 1, at most what was given).
    pub consumed: usize,
    /// Further bytes to discard after `consumed`: the body of a refused request.
    /// It may exceed what the buffer holds: count it down, never buffer it.
    pub swallow: usize,
    /// Close the connection after the reply (memcached does so for bad lengths).
    pub close: bool,
    /// Unlink this key: memcached drops the old item when a `set` is refused as
    /// too large, so that stale data does not outlive the failed write.
    pub unlink: Option<&'a [u8]>,
}

/// The result of parsing the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinParse<'a> {
    /// A request and the bytes it took: always the header plus its body.
    Complete {
        request: BinRequest<'a>,
        consumed: usize,
    },
    /// More bytes are needed: `more` is how many at least (the rest of the
    /// header, then the rest of the body). Always `Some`; an `Option` to match
    /// the text parser's shape.
    Incomplete {
        more: Option<usize>,
    },
    Invalid(BinInvalid<'a>),
}

/// The decoded fixed header of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub opcode: u8,
    pub keylen: usize,
    pub extlen: usize,
    pub bodylen: usize,
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    fn read(b: &[u8]) -> Header {
        Header {
            opcode: b[1],
            keylen: u16::from_be_bytes([b[2], b[3]]) as usize,
            extlen: b[4] as usize,
            bodylen: u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize,
            opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            cas: u64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
        }
    }

    fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            opcode: self.opcode,
            opaque: self.opaque,
        }
    }

    /// Length of the value: the body after extras and key.
    pub fn vlen(&self) -> usize {
        self.bodylen - self.extlen - self.keylen
    }

    /// The refusal memcached's `handle_binary_protocol_error` sends: invalid
    /// arguments, then close.
    pub fn einval<'a>(&self) -> Check<'a> {
        Check::Refuse(self.refuse(Status::InvalidArguments, HEADER_LEN, 0, true))
    }

    pub fn refuse<'a>(
        &self,
        status: Status,
        consumed: usize,
        swallow: usize,
        close: bool,
    ) -> BinInvalid<'a> {
        BinInvalid {
            reply: Some(BinError {
                to: self.reply_to(),
                status,
            }),
            consumed,
            swallow,
            close,
            unlink: None,
        }
    }
}

/// What a family's length check decided from the header alone.
pub(crate) enum Check<'a> {
    /// Lengths fit the opcode: wait for the whole body, then decode it.
    Body,
    /// Refuse once `need` bytes are in (header, extras and key: a too-large
    /// value is refused without reading it), unlinking the key when `unlink`.
    RefuseAt {
        need: usize,
        inv: BinInvalid<'a>,
        unlink: bool,
    },
    /// Refuse now.
    Refuse(BinInvalid<'a>),
}

/// A decoded body: extras, key and value, borrowed from the buffer.
pub(crate) struct Body<'a> {
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

pub(crate) fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Parse one binary request from the start of `buf`.
///
/// ```
/// use proto::Limits;
/// use proto::binary::{self, BinOp, BinParse, BinRequest};
/// let mut wire = Vec::new();
/// BinRequest::new(BinOp::Get { key: b"k", with_key: false }, false, 7, 0).encode(&mut wire);
/// let BinParse::Complete { request, consumed } = binary::parse(&wire, &Limits::default()) else {
///     panic!()
/// };
/// assert_eq!((request.op, request.opaque, consumed), (BinOp::Get { key: b"k", with_key: false }, 7, 25));
/// ```
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> BinParse<'a> {
    let Some(&magic) = buf.first() else {
        return BinParse::Incomplete {
            more: Some(HEADER_LEN),
        };
    };
    if magic != REQUEST_MAGIC {
        return BinParse::Invalid(BinInvalid {
            reply: None,
            consumed: 1,
            swallow: 0,
            close: true,
            unlink: None,
        });
    }
    if buf.len() < HEADER_LEN {
        return BinParse::Incomplete {
            more: Some(HEADER_LEN - buf.len()),
        };
    }
    let h = Header::read(buf);
    // The order of memcached's dispatch_bin_command: framing, key limit, opcode.
    if h.keylen + h.extlen > h.bodylen {
        let inv = h.refuse(Status::UnknownCommand, HEADER_LEN, 0, true);
        return BinParse::Invalid(inv);
    }
    if h.keylen > limits.max_key_len {
        return BinParse::Invalid(h.refuse(Status::InvalidArguments, HEADER_LEN, 0, true));
    }
    let Some(opcode) = Opcode::from_u8(h.opcode) else {
        let inv = h.refuse(Status::UnknownCommand, HEADER_LEN, h.bodylen, false);
        return BinParse::Invalid(inv);
    };
    let check = match opcode {
        Opcode::Get | Opcode::GetQ | Opcode::GetK | Opcode::GetKQ => get::check_get(&h),
        Opcode::Gat | Opcode::GatQ | Opcode::GatK | Opcode::GatKQ | Opcode::Touch => {
            get::check_touch(&h)
        }
        Opcode::Set
        | Opcode::SetQ
        | Opcode::Add
        | Opcode::AddQ
        | Opcode::Replace
        | Opcode::ReplaceQ => store::check_store(&h, opcode, limits),
        Opcode::Append | Opcode::AppendQ | Opcode::Prepend | Opcode::PrependQ => {
            store::check_concat(&h, limits)
        }
        Opcode::Delete | Opcode::DeleteQ => delete::check(&h),
        Opcode::Increment | Opcode::IncrementQ | Opcode::Decrement | Opcode::DecrementQ => {
            arith::check(&h)
        }
        Opcode::Quit
        | Opcode::QuitQ
        | Opcode::Noop
        | Opcode::Version
        | Opcode::Flush
        | Opcode::FlushQ
        | Opcode::Stat
        | Opcode::Verbosity => admin::check(&h, opcode),
        Opcode::SaslListMechs | Opcode::SaslAuth | Opcode::SaslStep => {
            sasl::check(&h, opcode, limits)
        }
    };
    match check {
        Check::Refuse(inv) => return BinParse::Invalid(inv),
        Check::RefuseAt {
            need,
            mut inv,
            unlink,
        } => {
            if buf.len() < need {
                return BinParse::Incomplete {
                    more: Some(need - buf.len()),
                };
            }
            if unlink {
                inv.unlink = Some(&buf[HEADER_LEN + h.extlen..need]);
            }
            return BinParse::Invalid(inv);
        }
        Check::Body => {}
    }
    let total = HEADER_LEN + h.bodylen;
    if buf.len() < total {
        return BinParse::Incomplete {
            more: Some(total - buf.len()),
        };
    }
    let key_at = HEADER_LEN + h.extlen;
    let value_at = key_at + h.keylen;
    let body = Body {
        extras: &buf[HEADER_LEN..key_at],
        key: &buf[key_at..value_at],
        value: &buf[value_at..total],
    };
    if !crate::check_key(body.key, limits) {
        return BinParse::Invalid(h.refuse(Status::InvalidArguments, total, 0, true));
    }
    let op = decode(opcode, &body);
    BinParse::Complete {
        request: BinRequest {
            opcode,
            opaque: h.opaque,
            cas: h.cas,
            quiet: opcode.is_quiet(),
            op,
        },
        consumed: total,
    }
}

/// The operation of a body whose lengths [`parse`] has checked.
fn decode<'a>(opcode: Opcode, b: &Body<'a>) -> BinOp<'a> {
    use Opcode::*;
    match opcode {
        Get | GetQ => BinOp::Get {
            key: b.key,
            with_key: false,
        },
        GetK | GetKQ => BinOp::Get {
            key: b.key,
            with_key: true,
        },
        Gat | GatQ | GatK | GatKQ => BinOp::Gat {
            key: b.key,
            exptime: be32(b.extras),
            with_key: matches!(opcode, GatK | GatKQ),
        },
        Touch => BinOp::Touch {
            key: b.key,
            exptime: be32(b.extras),
        },
        Set | SetQ | Add | AddQ | Replace | ReplaceQ => store::decode_store(opcode, b),
        Append | AppendQ | Prepend | PrependQ => store::decode_concat(opcode, b),
        Delete | DeleteQ => BinOp::Delete { key: b.key },
        Increment | IncrementQ | Decrement | DecrementQ => arith::decode(opcode, b),
        Quit | QuitQ => BinOp::Quit,
        Noop => BinOp::Noop,
        Version => BinOp::Version,
        Flush | FlushQ => BinOp::Flush {
            delay: (b.extras.len() == 4).then(|| be32(b.extras)),
        },
        Stat => BinOp::Stat {
            key: (!b.key.is_empty()).then_some(b.key),
        },
        Verbosity => BinOp::Verbosity {
            level: be32(b.extras),
        },
        SaslListMechs => BinOp::SaslListMechs,
        SaslAuth => BinOp::SaslAuth {
            mech: b.key,
            data: b.value,
        },
        SaslStep => BinOp::SaslStep {
            mech: b.key,
            data: b.value,
        },
    }
}
