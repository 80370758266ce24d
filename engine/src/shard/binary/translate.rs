//! Binary requests as meta requests and meta replies as binary packets: how a
//! binary connection in a cluster takes the memcached request path (routing
//! by node then shard, forwarding, replication), as the HTTP port does
//! (shard/http/). Pure: bytes in, bytes out.
//!
//! Every keyed request becomes exactly one meta request, never quiet: its one
//! reply tells what to answer, and a quiet binary opcode's success is dropped
//! here rather than by the meta `q` flag (whose rules differ per command).
//!
//! | binary | meta |
//! |---|---|
//! | get getq getk getkq | `mg <key> v f c` |
//! | gat gatq gatk gatkq | `mg <key> v f c T<exptime>` |
//! | touch | `mg <key> f c T<exptime>` |
//! | set add replace (+q) | `ms <key> <len> F<flags> T<exptime> c M<S E R>`; a CAS makes any of them `MS C<cas>` |
//! | append prepend (+q) | `ms <key> <len> c M<A P>[ C<cas>]` |
//! | delete (+q) | `md <key>[ C<cas>]` |
//! | incr decr (+q) | `ma <key> v c M<I D> D<delta>[ N<exptime> J<initial>][ C<cas>]` |
//!
//! A key of printable bytes without spaces goes as it is; any other key in
//! base64 (`b`), which carries any bytes.

use std::io::Write;

use proto::binary::arith::encode_counter;
use proto::binary::get::{encode_hit, encode_miss, encode_touched};
use proto::binary::response::{encode_ok, encode_status, encode_status_message};
use proto::binary::{ArithMode, BinOp, BinRequest, ConcatMode, ReplyTo, Status, StoreMode};
use proto::client::{MetaCode, MetaReply, Reply};

/// What a translated request's one meta reply is answered as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaits {
    to: ReplyTo,
    quiet: bool,
    op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// get and gat; the key, for getk and gatk.
    Get {
        key: Option<Box<[u8]>>,
    },
    Touch,
    /// What a refused store is called for this command.
    Store {
        not_stored: Status,
    },
    Delete,
    Arith,
}

/// Appends the meta request that does what keyed `request` does; `None` (and
/// nothing appended) for a keyless one.
pub fn request(request: &BinRequest<'_>, out: &mut Vec<u8>) -> Option<Awaits> {
    let cas = request.cas;
    let op = match request.op {
        BinOp::Get { key, with_key } => {
            command(out, b"mg", key, None);
            out.extend_from_slice(b" v f c");
            Op::Get {
                key: with_key.then(|| key.into()),
            }
        }
        BinOp::Gat {
            key,
            exptime,
            with_key,
        } => {
            command(out, b"mg", key, None);
            let _ = write!(out, " v f c T{exptime}");
            Op::Get {
                key: with_key.then(|| key.into()),
            }
        }
        BinOp::Touch { key, exptime } => {
            command(out, b"mg", key, None);
            let _ = write!(out, " f c T{exptime}");
            Op::Touch
        }
        BinOp::Store {
            mode,
            key,
            flags,
            exptime,
            value,
        } => {
            command(out, b"ms", key, Some(value.len()));
            let _ = write!(out, " F{flags} T{exptime} c");
            // memcached: a CAS in the header makes any of the three a
            // compare-and-swap (as `Exec::run_binary`).
            if cas != 0 {
                let _ = write!(out, " MS C{cas}");
            } else {
                out.extend_from_slice(match mode {
                    StoreMode::Set => b" MS",
                    StoreMode::Add => b" ME",
                    StoreMode::Replace => b" MR",
                });
            }
            data(out, value);
            Op::Store {
                not_stored: mode.not_stored_status(),
            }
        }
        BinOp::Concat { mode, key, value } => {
            command(out, b"ms", key, Some(value.len()));
            out.extend_from_slice(match mode {
                ConcatMode::Append => b" c MA",
                ConcatMode::Prepend => b" c MP",
            });
            if cas != 0 {
                let _ = write!(out, " C{cas}");
            }
            data(out, value);
            Op::Store {
                not_stored: Status::NotStored,
            }
        }
        BinOp::Delete { key } => {
            command(out, b"md", key, None);
            if cas != 0 {
                let _ = write!(out, " C{cas}");
            }
            Op::Delete
        }
        BinOp::Arith(a) => {
            command(out, b"ma", a.key, None);
            let mode = match a.mode {
                ArithMode::Increment => 'I',
                ArithMode::Decrement => 'D',
            };
            let _ = write!(out, " v c M{mode} D{}", a.delta);
            // 0xffffffff: a miss does not create the counter.
            if a.creates() {
                let _ = write!(out, " N{} J{}", a.exptime, a.initial);
            }
            if cas != 0 {
                let _ = write!(out, " C{cas}");
            }
            Op::Arith
        }
        _ => return None,
    };
    if !matches!(request.op, BinOp::Store { .. } | BinOp::Concat { .. }) {
        out.extend_from_slice(b"\r\n");
    }
    Some(Awaits {
        to: request.reply_to(),
        quiet: request.quiet,
        op,
    })
}

/// `<verb> <key>[ <len>]`, then ` b` when the key goes in base64.
fn command(out: &mut Vec<u8>, verb: &[u8], key: &[u8], len: Option<usize>) {
    out.extend_from_slice(verb);
    out.push(b' ');
    let plain = !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic());
    if plain {
        out.extend_from_slice(key);
    } else {
        proto::base64::encode(key, out);
    }
    if let Some(len) = len {
        let _ = write!(out, " {len}");
    }
    if !plain {
        out.extend_from_slice(b" b");
    }
}

/// The end of a store's line, then its data block.
fn data(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the binary reply to `awaits` from its meta `reply` (nothing for a
/// quiet opcode's success, or a quiet get's miss).
pub fn answer(out: &mut Vec<u8>, awaits: &Awaits, reply: &Reply<'_>) {
    let (to, quiet) = (awaits.to, awaits.quiet);
    let meta = match reply {
        Reply::Meta(m) => m,
        Reply::ServerError(reason) => return server_error(out, to, reason),
        Reply::ClientError(_) if awaits.op == Op::Arith => {
            // The only client error an `ma` this builds can get.
            return encode_status(out, to, Status::DeltaBadval);
        }
        Reply::ClientError(reason) => {
            let reason = String::from_utf8_lossy(reason);
            return encode_status_message(out, to, Status::InvalidArguments, &reason);
        }
        _ => return encode_status(out, to, Status::InvalidArguments),
    };
    let MetaReply { code, flags, value } = meta;
    let cas = flags.cas().unwrap_or(0);
    match (&awaits.op, code) {
        (Op::Get { key }, MetaCode::Va) => encode_hit(
            out,
            to,
            flags.client_flags().unwrap_or(0),
            cas,
            key.as_deref(),
            value.unwrap_or_default(),
        ),
        (Op::Get { .. }, MetaCode::En) if quiet => {}
        (Op::Get { key }, MetaCode::En) => encode_miss(out, to, key.as_deref()),
        (Op::Touch, MetaCode::Hd) => {
            encode_touched(out, to, flags.client_flags().unwrap_or(0), cas)
        }
        (Op::Touch, MetaCode::En) => encode_status(out, to, Status::NotFound),
        (Op::Store { .. } | Op::Delete, MetaCode::Hd) if quiet => {}
        (Op::Store { .. } | Op::Delete, MetaCode::Hd) => encode_ok(out, to, cas),
        (Op::Store { not_stored }, MetaCode::Ns) => encode_status(out, to, *not_stored),
        (Op::Arith, MetaCode::Va) if quiet => {}
        (Op::Arith, MetaCode::Va) => {
            let number = value
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse().ok());
            match number {
                Some(n) => encode_counter(out, to, n, cas),
                None => encode_status(out, to, Status::DeltaBadval),
            }
        }
        (_, MetaCode::Ex) => encode_status(out, to, Status::KeyExists),
        (_, MetaCode::Nf | MetaCode::Ns | MetaCode::En) => encode_status(out, to, Status::NotFound),
        _ => encode_status(out, to, Status::InvalidArguments),
    }
}

/// `SERVER_ERROR <reason>`: too large and out of memory as `Exec::run_binary`
/// answers them; anything else (a cluster's `backend failure`, an ack not
/// met) as memcached's server-side failure, 0x82, with the reason.
fn server_error(out: &mut Vec<u8>, to: ReplyTo, reason: &[u8]) {
    if reason.starts_with(b"object too large") {
        return encode_status(out, to, Status::TooLarge);
    }
    if reason.starts_with(b"out of memory") {
        return encode_status(out, to, Status::OutOfMemory);
    }
    let reason = String::from_utf8_lossy(reason);
    encode_status_message(out, to, Status::OutOfMemory, &reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::binary::Arith;
    use proto::client::{ReplyParse, parse_reply};

    fn req(op: BinOp<'_>, quiet: bool, cas: u64) -> BinRequest<'_> {
        BinRequest::new(op, quiet, 7, cas)
    }

    fn meta(r: &BinRequest<'_>) -> String {
        let mut out = Vec::new();
        request(r, &mut out).expect("keyed");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn requests_become_meta_requests() {
        let get = |with_key| BinOp::Get {
            key: b"k1",
            with_key,
        };
        let store = |mode| BinOp::Store {
            mode,
            key: b"k1",
            flags: 5,
            exptime: 60,
            value: b"abc",
        };
        let arith = |mode, exptime| {
            BinOp::Arith(Arith {
                mode,
                key: b"n",
                delta: 3,
                initial: 10,
                exptime,
            })
        };
        let cases: &[(BinRequest<'_>, &str)] = &[
            (req(get(false), false, 0), "mg k1 v f c\r\n"),
            (req(get(true), true, 0), "mg k1 v f c\r\n"),
            (
                req(
                    BinOp::Gat {
                        key: b"k1",
                        exptime: 9,
                        with_key: false,
                    },
                    false,
                    0,
                ),
                "mg k1 v f c T9\r\n",
            ),
            (
                req(
                    BinOp::Touch {
                        key: b"k1",
                        exptime: 9,
                    },
                    false,
                    0,
                ),
                "mg k1 f c T9\r\n",
            ),
            (
                req(store(StoreMode::Set), false, 0),
                "ms k1 3 F5 T60 c MS\r\nabc\r\n",
            ),
            (
                req(store(StoreMode::Add), true, 0),
                "ms k1 3 F5 T60 c ME\r\nabc\r\n",
            ),
            (
                req(store(StoreMode::Replace), false, 0),
                "ms k1 3 F5 T60 c MR\r\nabc\r\n",
            ),
            (
                req(store(StoreMode::Add), false, 42),
                "ms k1 3 F5 T60 c MS C42\r\nabc\r\n",
            ),
            (
                req(
                    BinOp::Concat {
                        mode: ConcatMode::Prepend,
                        key: b"k1",
                        value: b"x",
                    },
                    false,
                    4,
                ),
                "ms k1 1 c MP C4\r\nx\r\n",
            ),
            (req(BinOp::Delete { key: b"k1" }, true, 0), "md k1\r\n"),
            (req(BinOp::Delete { key: b"k1" }, false, 8), "md k1 C8\r\n"),
            (
                req(arith(ArithMode::Increment, 0), false, 0),
                "ma n v c MI D3 N0 J10\r\n",
            ),
            (
                req(
                    arith(ArithMode::Decrement, proto::binary::NO_CREATE),
                    false,
                    2,
                ),
                "ma n v c MD D3 C2\r\n",
            ),
            // Bytes a text line cannot carry: base64.
            (
                req(
                    BinOp::Get {
                        key: b"a b\r\n\0",
                        with_key: false,
                    },
                    false,
                    0,
                ),
                "mg YSBiDQoA b v f c\r\n",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(meta(r), *want, "{r:?}");
            // And the text parser takes it whole.
            let bytes = want.as_bytes();
            match proto::parse(bytes, &proto::Limits::default()) {
                proto::Parse::Complete { consumed, .. } => assert_eq!(consumed, bytes.len()),
                other => panic!("{want:?} does not parse: {other:?}"),
            }
        }
        let mut out = Vec::new();
        assert_eq!(request(&req(BinOp::Noop, false, 0), &mut out), None);
        assert!(out.is_empty());
    }

    /// The packets `reply` is answered with, as (opcode, status, cas, extras,
    /// key, value).
    type Packet = (u8, u16, u64, Vec<u8>, Vec<u8>, Vec<u8>);

    fn answered(r: &BinRequest<'_>, reply: &[u8]) -> Vec<Packet> {
        let awaits = request(r, &mut Vec::new()).unwrap();
        let ReplyParse::Complete { reply, consumed } = parse_reply(reply) else {
            panic!("bad reply {reply:?}");
        };
        assert!(consumed > 0);
        let mut out = Vec::new();
        answer(&mut out, &awaits, &reply);
        let mut b = &out[..];
        let mut v = Vec::new();
        while !b.is_empty() {
            assert_eq!(b[0], 0x81);
            let keylen = u16::from_be_bytes([b[2], b[3]]) as usize;
            let extlen = b[4] as usize;
            let status = u16::from_be_bytes([b[6], b[7]]);
            let body = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
            assert_eq!(u32::from_be_bytes(b[12..16].try_into().unwrap()), 7);
            let cas = u64::from_be_bytes(b[16..24].try_into().unwrap());
            let rest = &b[24..24 + body];
            v.push((
                b[1],
                status,
                cas,
                rest[..extlen].to_vec(),
                rest[extlen..extlen + keylen].to_vec(),
                rest[extlen + keylen..].to_vec(),
            ));
            b = &b[24 + body..];
        }
        v
    }

    fn status_only(op: u8, status: Status) -> Packet {
        (
            op,
            status.code(),
            0,
            vec![],
            vec![],
            status.message().as_bytes().to_vec(),
        )
    }

    #[test]
    fn meta_replies_become_binary_packets() {
        let get = |with_key, quiet| {
            req(
                BinOp::Get {
                    key: b"k1",
                    with_key,
                },
                quiet,
                0,
            )
        };
        let hit = b"VA 3 f5 c99\r\nabc\r\n";
        let f5 = 5u32.to_be_bytes().to_vec();
        // get, getk: flags, CAS, the key for getk, the value.
        assert_eq!(
            answered(&get(false, false), hit),
            [(0x00, 0, 99, f5.clone(), vec![], b"abc".to_vec())]
        );
        assert_eq!(
            answered(&get(true, true), hit),
            [(0x0d, 0, 99, f5.clone(), b"k1".to_vec(), b"abc".to_vec())]
        );
        // Misses: getk's carries the key; quiet ones send nothing.
        assert_eq!(
            answered(&get(false, false), b"EN\r\n"),
            [status_only(0x00, Status::NotFound)]
        );
        assert_eq!(
            answered(&get(true, false), b"EN\r\n"),
            [(0x0c, 1, 0, vec![], b"k1".to_vec(), vec![])]
        );
        assert_eq!(answered(&get(false, true), b"EN\r\n"), []);
        assert_eq!(answered(&get(true, true), b"EN\r\n"), []);

        let touch = req(
            BinOp::Touch {
                key: b"k1",
                exptime: 1,
            },
            false,
            0,
        );
        assert_eq!(
            answered(&touch, b"HD f5 c3\r\n"),
            [(0x1c, 0, 3, f5, vec![], vec![])]
        );
        assert_eq!(
            answered(&touch, b"EN\r\n"),
            [status_only(0x1c, Status::NotFound)]
        );

        let store = |mode, quiet| {
            req(
                BinOp::Store {
                    mode,
                    key: b"k1",
                    flags: 0,
                    exptime: 0,
                    value: b"v",
                },
                quiet,
                0,
            )
        };
        assert_eq!(
            answered(&store(StoreMode::Set, false), b"HD c12\r\n"),
            [(0x01, 0, 12, vec![], vec![], vec![])]
        );
        assert_eq!(answered(&store(StoreMode::Set, true), b"HD c12\r\n"), []);
        // A refusal is sent also for a quiet opcode, as its command calls it.
        assert_eq!(
            answered(&store(StoreMode::Add, true), b"NS\r\n"),
            [status_only(0x12, Status::KeyExists)]
        );
        assert_eq!(
            answered(&store(StoreMode::Replace, false), b"NS\r\n"),
            [status_only(0x03, Status::NotFound)]
        );
        assert_eq!(
            answered(&store(StoreMode::Set, false), b"EX\r\n"),
            [status_only(0x01, Status::KeyExists)]
        );
        assert_eq!(
            answered(&store(StoreMode::Set, false), b"NF\r\n"),
            [status_only(0x01, Status::NotFound)]
        );
        assert_eq!(
            answered(
                &store(StoreMode::Set, false),
                b"SERVER_ERROR object too large for cache\r\n"
            ),
            [status_only(0x01, Status::TooLarge)]
        );
        assert_eq!(
            answered(
                &store(StoreMode::Set, true),
                b"SERVER_ERROR backend failure\r\n"
            ),
            [(0x11, 0x82, 0, vec![], vec![], b"backend failure".to_vec())]
        );
        let append = req(
            BinOp::Concat {
                mode: ConcatMode::Append,
                key: b"k1",
                value: b"v",
            },
            false,
            0,
        );
        assert_eq!(
            answered(&append, b"NS\r\n"),
            [status_only(0x0e, Status::NotStored)]
        );

        let delete = |quiet| req(BinOp::Delete { key: b"k1" }, quiet, 0);
        assert_eq!(
            answered(&delete(false), b"HD\r\n"),
            [(0x04, 0, 0, vec![], vec![], vec![])]
        );
        assert_eq!(answered(&delete(true), b"HD\r\n"), []);
        assert_eq!(
            answered(&delete(true), b"NF\r\n"),
            [status_only(0x14, Status::NotFound)]
        );
        assert_eq!(
            answered(&delete(false), b"EX\r\n"),
            [status_only(0x04, Status::KeyExists)]
        );

        let incr = |quiet| {
            req(
                BinOp::Arith(Arith {
                    mode: ArithMode::Increment,
                    key: b"n",
                    delta: 1,
                    initial: 0,
                    exptime: 0,
                }),
                quiet,
                0,
            )
        };
        assert_eq!(
            answered(&incr(false), b"VA 2 c5\r\n11\r\n"),
            [(0x05, 0, 5, vec![], vec![], 11u64.to_be_bytes().to_vec())]
        );
        assert_eq!(answered(&incr(true), b"VA 2 c5\r\n11\r\n"), []);
        assert_eq!(
            answered(&incr(false), b"NF\r\n"),
            [status_only(0x05, Status::NotFound)]
        );
        assert_eq!(
            answered(
                &incr(true),
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
            ),
            [status_only(0x15, Status::DeltaBadval)]
        );
    }
}
