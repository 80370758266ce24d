//! memcached's binary protocol on the shard: the same path as text requests
//! (route by the key's owner, run inline or forward the request's bytes,
//! reply into the connection's queue in order), with `proto::binary` to parse
//! and encode.
//!
//! A forwarded binary request travels as its own bytes, like a text one; the
//! owner tells them apart by the first byte (no text command starts with the
//! binary magic 0x80). Keyless commands are answered here; `stat` reuses the
//! text `stats` machinery (every shard's counters, merged) and re-encodes its
//! `STAT name value` lines as binary stat packets.
//!
//! In a cluster a binary connection, and a binary UDP datagram, takes another
//! way (session.rs): its keyed requests become meta requests on the memcached
//! request path, which knows nodes, and the meta replies become binary packets
//! again (translate.rs).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | routing within the node, keyless opcodes, `Exec::run_binary` |
//! | `translate.rs` | binary request → meta request, meta reply → binary packet |
//! | `session.rs` | a cluster's binary connection: its requests in order, translated at flush time |

mod session;
mod translate;

pub use session::{Packets, Session};

use proto::binary::arith::encode_counter;
use proto::binary::get::{encode_hit, encode_miss, encode_touched};
use proto::binary::response::{encode_ok, encode_status};
use proto::binary::{
    self, ArithMode, BinOp, BinRequest, ConcatMode, ReplyTo, Status, StoreMode, admin,
};
use proto::{Parse, Request};

use super::Core;
use super::client::{Client, Handled};
use super::mesh::Kind;
use super::route::{self, Target};
use super::stats::latency;
use crate::config::VERSION;
use crate::shard::exec::{Exec, Outcome, exec};
use store::{
    DeleteOutcome, HashedKey, MetaArith, MetaArithArgs, MetaDeleteArgs, MetaSetArgs, MetaSetMode,
    StoreMode as Mode, StoreOutcome,
};

impl Core {
    /// Routes one complete binary request and runs or forwards it; `raw` is
    /// its bytes on the wire.
    pub(super) fn handle_binary(
        &mut self,
        client: Client,
        request: &BinRequest<'_>,
        raw: &[u8],
    ) -> Handled {
        self.log_cfd = self.net.client_fd(client);
        let Some(timed) = self.sample_latency(|| latency::binary_family(request)) else {
            return self.route_binary(client, request, raw);
        };
        let before = self.net.queue(client).map(|q| q.next_part());
        let handled = self.route_binary(client, request, raw);
        self.finish_timing(client, before, handled, timed);
        handled
    }

    /// [`Core::handle_binary`] without the clock.
    fn route_binary(&mut self, client: Client, request: &BinRequest<'_>, raw: &[u8]) -> Handled {
        let Some(key) = keyed(request) else {
            return self.binary_keyless(client, request);
        };
        let hash = route::key_hash(key);
        // Within this node only: in a cluster, binary connections and
        // datagrams have a session and their keyed requests go as meta
        // requests instead (session.rs). `route::target` never names a node.
        match route::target(hash, self.id, self.mesh.shards()) {
            Target::Local | Target::Node(_) => {
                let Some(queue) = self.net.queue(client) else {
                    return Handled::Done;
                };
                let mut exec = exec!(self);
                exec.run_binary(request, hash, queue.sink());
                Handled::Done
            }
            Target::Shard(owner) => {
                if !self.mesh.can_send(owner) {
                    return Handled::Stall;
                }
                self.forward(client, owner, Kind::Exec, &hash.to_le_bytes(), raw);
                Handled::Done
            }
        }
    }

    pub(super) fn binary_keyless(&mut self, client: Client, request: &BinRequest<'_>) -> Handled {
        let to = request.reply_to();
        let quiet = request.quiet;
        match request.op {
            BinOp::Noop => self.reply(client, |out| encode_ok(out, to, 0)),
            BinOp::Version => self.reply(client, |out| admin::encode_version(out, to, VERSION)),
            BinOp::Quit => {
                if !quiet {
                    self.reply(client, |out| encode_ok(out, to, 0));
                }
                Handled::Close
            }
            BinOp::Flush { delay } => {
                if self.shared.config.server.disable_flush_all {
                    // memcached's answer when flush_all is disabled (-F).
                    return self.reply(client, |out| encode_status(out, to, Status::AuthError));
                }
                if !self.flush_all_shards(client, i64::from(delay.unwrap_or(0))) {
                    return Handled::Stall;
                }
                self.reply(client, |out| {
                    if !quiet {
                        encode_ok(out, to, 0)
                    }
                })
            }
            BinOp::Stat { key } => {
                // The text command this is, parsed by the text parser so both
                // protocols share one `stats`.
                let mut line = b"stats".to_vec();
                if let Some(k) = key {
                    line.push(b' ');
                    line.extend_from_slice(k);
                }
                line.extend_from_slice(b"\r\n");
                match proto::parse(&line, &self.limits) {
                    Parse::Complete {
                        request: Request::Stats(s),
                        ..
                    } => self.stats_command(client, &s, Some(to)),
                    _ => self.reply(client, |out| encode_status(out, to, Status::NotFound)),
                }
            }
            BinOp::SaslListMechs | BinOp::SaslAuth { .. } | BinOp::SaslStep { .. }
                if self.shared.sasl_auth.is_some() =>
            {
                self.sasl(client, request)
            }
            // memcached 1.6.18 has no verbosity opcode, and without -S no SASL.
            BinOp::Verbosity { .. }
            | BinOp::SaslListMechs
            | BinOp::SaslAuth { .. }
            | BinOp::SaslStep { .. } => {
                self.reply(client, |out| encode_status(out, to, Status::UnknownCommand))
            }
            BinOp::Get { .. }
            | BinOp::Gat { .. }
            | BinOp::Touch { .. }
            | BinOp::Store { .. }
            | BinOp::Concat { .. }
            | BinOp::Delete { .. }
            | BinOp::Arith(_) => {
                debug_assert!(false, "keyed binary request in binary_keyless");
                Handled::Done
            }
        }
    }
}

/// The key a request is routed by; `None` for keyless ones (`stat` names a
/// stats group with its key, not an item).
pub(super) fn keyed<'a>(request: &BinRequest<'a>) -> Option<&'a [u8]> {
    match request.op {
        BinOp::Stat { .. } => None,
        _ => request.key(),
    }
}

/// Re-encodes a text `stats` reply (`STAT name value` lines, then `END`, or
/// `OK`/`RESET` for the commands that only act) as binary stat packets and
/// the empty one that ends them; a text error becomes `NotFound`, as
/// memcached answers a stats group it does not know.
pub(super) fn stats_to_binary(text: &[u8], to: ReplyTo, out: &mut Vec<u8>) {
    let lines = || {
        text.split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
    };
    let is_end = |l: &[u8]| matches!(l, b"END" | b"OK" | b"RESET");
    if !lines().all(|l| l.starts_with(b"STAT ") || is_end(l)) {
        return encode_status(out, to, Status::NotFound);
    }
    for line in lines() {
        let Some(pair) = line.strip_prefix(b"STAT ") else {
            break;
        };
        let (name, value) = match memchr::memchr(b' ', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        admin::encode_stat(out, to.opaque, name, value);
    }
    admin::encode_stats_end(out, to.opaque);
}

impl Exec<'_> {
    /// Runs a keyed binary request whose key hashes to `hash`.
    pub(super) fn run_binary(
        &mut self,
        request: &BinRequest<'_>,
        hash: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let to = request.reply_to();
        let quiet = request.quiet;
        match request.op {
            BinOp::Get { key, with_key } | BinOp::Gat { key, with_key, .. } => {
                let hashed = HashedKey::with_hash(key, hash);
                // Every binary reply carries the CAS: the item is given its word.
                let item = match request.op {
                    BinOp::Gat { exptime, .. } => {
                        self.stats.cmd_touch += 1;
                        self.store.gats(hashed, i64::from(exptime))
                    }
                    _ => {
                        self.stats.cmd_get += 1;
                        self.store.gets(hashed)
                    }
                };
                match item {
                    Some(it) => encode_hit(
                        out,
                        to,
                        it.flags,
                        it.cas,
                        with_key.then_some(it.key),
                        it.value,
                    ),
                    None if !quiet => encode_miss(out, to, with_key.then_some(key)),
                    None => {}
                }
            }
            BinOp::Touch { key, exptime } => {
                self.stats.cmd_touch += 1;
                match self
                    .store
                    .gats(HashedKey::with_hash(key, hash), i64::from(exptime))
                {
                    Some(it) => encode_touched(out, to, it.flags, it.cas),
                    None => encode_status(out, to, Status::NotFound),
                }
            }
            BinOp::Store {
                mode,
                key,
                flags,
                exptime,
                value,
            } => {
                self.stats.cmd_set += 1;
                // memcached: a CAS in the header makes any of the three a
                // compare-and-swap; under -C the header's CAS is not read
                // (memcached's item has nowhere to keep it), so it is a plain store.
                let req_cas = self.store.request_cas(request.cas);
                let store_mode = match (req_cas, mode) {
                    (0, StoreMode::Set) => Mode::Set,
                    (0, StoreMode::Add) => Mode::Add,
                    (0, StoreMode::Replace) => Mode::Replace,
                    _ => Mode::Cas,
                };
                let outcome = self.store.store_with_cas(
                    store_mode,
                    HashedKey::with_hash(key, hash),
                    flags,
                    i64::from(exptime),
                    value,
                    req_cas,
                );
                stored(out, to, quiet, outcome, mode.not_stored_status());
            }
            BinOp::Concat { mode, key, value } => {
                self.stats.cmd_set += 1;
                let key = HashedKey::with_hash(key, hash);
                let outcome = if self.store.request_cas(request.cas) == 0 {
                    let m = match mode {
                        ConcatMode::Append => Mode::Append,
                        ConcatMode::Prepend => Mode::Prepend,
                    };
                    self.store.store_with_cas(m, key, 0, 0, value, 0)
                } else {
                    let args = MetaSetArgs {
                        mode: match mode {
                            ConcatMode::Append => MetaSetMode::Append,
                            ConcatMode::Prepend => MetaSetMode::Prepend,
                        },
                        flags: 0,
                        exptime: 0,
                        compare_cas: Some(request.cas),
                        invalidate: false,
                        new_cas: None,
                        vivify: None,
                        return_cas: true,
                    };
                    self.store.meta_set(key, value, &args)
                };
                stored(out, to, quiet, outcome, Status::NotStored);
            }
            BinOp::Delete { key } => {
                let key = HashedKey::with_hash(key, hash);
                let outcome = if request.cas == 0 {
                    self.store.delete(key)
                } else {
                    let args = MetaDeleteArgs {
                        compare_cas: Some(request.cas),
                        ..MetaDeleteArgs::default()
                    };
                    self.store.meta_delete(key, &args)
                };
                match outcome {
                    DeleteOutcome::Deleted if quiet => {}
                    DeleteOutcome::Deleted => encode_ok(out, to, 0),
                    DeleteOutcome::Exists => encode_status(out, to, Status::KeyExists),
                    DeleteOutcome::OutOfMemory => encode_status(out, to, Status::OutOfMemory),
                    DeleteOutcome::NotFound | DeleteOutcome::NotStored => {
                        encode_status(out, to, Status::NotFound)
                    }
                }
            }
            BinOp::Arith(a) => {
                let args = MetaArithArgs {
                    incr: a.mode == ArithMode::Increment,
                    delta: a.delta,
                    compare_cas: (request.cas != 0).then_some(request.cas),
                    vivify: a.creates().then_some(i64::from(a.exptime)),
                    initial: a.initial,
                    touch: None,
                    new_cas: None,
                    return_cas: true,
                };
                match self
                    .store
                    .meta_arith(HashedKey::with_hash(a.key, hash), &args)
                {
                    MetaArith::Value { .. } if quiet => {}
                    MetaArith::Value { value, cas, .. } => encode_counter(out, to, value, cas),
                    MetaArith::NotFound | MetaArith::NotStored => {
                        encode_status(out, to, Status::NotFound)
                    }
                    MetaArith::Exists => encode_status(out, to, Status::KeyExists),
                    MetaArith::NonNumeric => encode_status(out, to, Status::DeltaBadval),
                    MetaArith::OutOfMemory => encode_status(out, to, Status::OutOfMemory),
                }
            }
            _ => debug_assert!(false, "keyless binary request routed to the store"),
        }
        Outcome::Done
    }
}

/// The reply to a store: the new CAS (not sent when quiet), or the refusal;
/// `not_stored` is what a refused write is called for this command.
fn stored(out: &mut Vec<u8>, to: ReplyTo, quiet: bool, outcome: StoreOutcome, not_stored: Status) {
    match outcome {
        StoreOutcome::Stored { .. } if quiet => {}
        StoreOutcome::Stored { cas } => encode_ok(out, to, cas),
        StoreOutcome::NotStored => encode_status(out, to, not_stored),
        StoreOutcome::Exists => encode_status(out, to, Status::KeyExists),
        StoreOutcome::NotFound => encode_status(out, to, Status::NotFound),
        StoreOutcome::TooLarge => encode_status(out, to, Status::TooLarge),
        StoreOutcome::OutOfMemory => encode_status(out, to, Status::OutOfMemory),
    }
}

/// Whether a forwarded request's bytes are a binary request.
pub(super) fn is_binary(request: &[u8]) -> bool {
    request.first() == Some(&binary::REQUEST_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TO: ReplyTo = ReplyTo {
        opcode: 0x10,
        opaque: 42,
    };

    fn packets(mut b: &[u8]) -> Vec<(u16, Vec<u8>, Vec<u8>)> {
        let mut v = Vec::new();
        while !b.is_empty() {
            let keylen = u16::from_be_bytes([b[2], b[3]]) as usize;
            let status = u16::from_be_bytes([b[6], b[7]]);
            let body = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
            assert_eq!(u32::from_be_bytes(b[12..16].try_into().unwrap()), 42);
            let rest = &b[24..24 + body];
            v.push((status, rest[..keylen].to_vec(), rest[keylen..].to_vec()));
            b = &b[24 + body..];
        }
        v
    }

    #[test]
    fn stats_lines_become_stat_packets_and_an_empty_end() {
        let mut out = Vec::new();
        stats_to_binary(
            b"STAT pid 12\r\nSTAT version 1.6 x\r\nEND\r\n",
            TO,
            &mut out,
        );
        assert_eq!(
            packets(&out),
            [
                (0, b"pid".to_vec(), b"12".to_vec()),
                (0, b"version".to_vec(), b"1.6 x".to_vec()),
                (0, vec![], vec![]),
            ]
        );
    }

    #[test]
    fn commands_that_only_act_end_at_once_and_errors_are_not_found() {
        for ok in [&b"OK\r\n"[..], b"RESET\r\n", b"END\r\n"] {
            let mut out = Vec::new();
            stats_to_binary(ok, TO, &mut out);
            assert_eq!(packets(&out), [(0, vec![], vec![])]);
        }
        let mut out = Vec::new();
        stats_to_binary(b"ERROR\r\n", TO, &mut out);
        assert_eq!(packets(&out), [(1, vec![], b"Not found".to_vec())]);
    }

    #[test]
    fn stat_names_no_item_and_other_ops_route_by_their_key() {
        let stat = BinRequest::new(
            BinOp::Stat {
                key: Some(b"slabs"),
            },
            false,
            0,
            0,
        );
        assert_eq!(keyed(&stat), None);
        let get = BinRequest::new(
            BinOp::Get {
                key: b"k",
                with_key: false,
            },
            false,
            0,
            0,
        );
        assert_eq!(keyed(&get), Some(&b"k"[..]));
        assert_eq!(keyed(&BinRequest::new(BinOp::Noop, false, 0, 0)), None);
    }
}
