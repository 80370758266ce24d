//! Folding replies into request outcomes. `proto`'s reply parser returns a
//! whole classic get reply (VALUE* END) as one reply; a meta multi-get is
//! several replies (VA* MN), so a request may take more than one; so is a
//! binary multi-get (getkq hits, then the noop's response).

use proto::binary::{BinResponse, Opcode, Status as BinStatus};
use proto::client::{MetaCode, Reply};
use proto::reply::Status;

use super::ctx::{Ctx, Outcome, Pending};
use crate::wire::Protocol;
use crate::workload::OpKind;

/// Progress of the request at the front of a connection's queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct Partial {
    pub hits: u32,
    /// An error reply inside a meta multi-get (which still ends with MN).
    pub failed: Option<Outcome>,
}

pub enum Step {
    /// The request needs more replies.
    More,
    Done(Outcome),
    /// The reply does not belong to this request: the stream is out of sync.
    Invalid,
}

fn error_outcome(reply: &Reply) -> Option<Outcome> {
    match reply {
        Reply::Error => Some(Outcome::Error),
        Reply::ClientError(_) => Some(Outcome::ClientError),
        Reply::ServerError(_) => Some(Outcome::ServerError),
        _ => None,
    }
}

/// Applies one reply to the request `p` in flight.
pub fn apply(p: &Pending, partial: &mut Partial, reply: Reply, ctx: &mut Ctx) -> Step {
    if let Some(err) = error_outcome(&reply) {
        let meta_multi = ctx.protocol == Protocol::Meta && p.kind == OpKind::Get && p.width > 1;
        if meta_multi {
            partial.failed = Some(err);
            return Step::More;
        }
        return Step::Done(err);
    }
    match (ctx.protocol, p.kind, reply) {
        (Protocol::Text | Protocol::Udp, OpKind::Get, Reply::Values(values)) => {
            let mut hits = 0;
            for v in values {
                hits += 1;
                ctx.check_value(p.phase, Some(v.key), v.data);
            }
            Step::Done(Outcome::Get { hits })
        }
        (Protocol::Text | Protocol::Udp, OpKind::Set, Reply::Status(s)) => match s {
            Status::Stored => Step::Done(Outcome::Stored),
            Status::NotStored | Status::Exists | Status::NotFound => Step::Done(Outcome::NotStored),
            _ => Step::Invalid,
        },
        (Protocol::Meta, OpKind::Get, Reply::Meta(m)) => {
            let single = p.width == 1;
            match m.code {
                MetaCode::Va => {
                    partial.hits += 1;
                    ctx.check_value(p.phase, m.flags.key(), m.value.unwrap_or_default());
                    if single {
                        Step::Done(Outcome::Get { hits: 1 })
                    } else {
                        Step::More
                    }
                }
                MetaCode::En if single => Step::Done(Outcome::Get { hits: 0 }),
                // Quiet mode hides misses, but a server may still send EN.
                MetaCode::En => Step::More,
                MetaCode::Mn if !single => Step::Done(
                    partial
                        .failed
                        .unwrap_or(Outcome::Get { hits: partial.hits }),
                ),
                _ => Step::Invalid,
            }
        }
        (Protocol::Meta, OpKind::Set, Reply::Meta(m)) => match m.code {
            MetaCode::Hd => Step::Done(Outcome::Stored),
            MetaCode::Ns | MetaCode::Ex | MetaCode::Nf => Step::Done(Outcome::NotStored),
            _ => Step::Invalid,
        },
        _ => Step::Invalid,
    }
}

/// Applies one binary response to the request `p` in flight.
pub fn apply_binary(
    p: &Pending,
    partial: &mut Partial,
    r: &BinResponse<'_>,
    ctx: &mut Ctx,
) -> Step {
    let status = r.status();
    let multi = p.kind == OpKind::Get && p.width > 1;
    let error = match status {
        Some(BinStatus::TooLarge | BinStatus::OutOfMemory) => Some(Outcome::ServerError),
        Some(BinStatus::InvalidArguments | BinStatus::DeltaBadval) => Some(Outcome::ClientError),
        Some(BinStatus::UnknownCommand | BinStatus::AuthError | BinStatus::AuthContinue) | None => {
            Some(Outcome::Error)
        }
        _ => None,
    };
    if let Some(err) = error {
        if multi && r.opcode != Opcode::Noop as u8 {
            partial.failed = Some(err);
            return Step::More;
        }
        return Step::Done(err);
    }
    match (p.kind, r.opcode, status) {
        (OpKind::Get, op, Some(BinStatus::Success)) if op == Opcode::GetK as u8 && !multi => {
            ctx.check_value(p.phase, Some(r.key), r.value);
            Step::Done(Outcome::Get { hits: 1 })
        }
        (OpKind::Get, op, Some(BinStatus::NotFound)) if op == Opcode::GetK as u8 && !multi => {
            Step::Done(Outcome::Get { hits: 0 })
        }
        (OpKind::Get, op, Some(BinStatus::Success)) if op == Opcode::GetKQ as u8 && multi => {
            partial.hits += 1;
            ctx.check_value(p.phase, Some(r.key), r.value);
            Step::More
        }
        (OpKind::Get, op, _) if op == Opcode::Noop as u8 && multi => Step::Done(
            partial
                .failed
                .unwrap_or(Outcome::Get { hits: partial.hits }),
        ),
        (OpKind::Set, op, Some(BinStatus::Success)) if op == Opcode::Set as u8 => {
            Step::Done(Outcome::Stored)
        }
        (
            OpKind::Set,
            op,
            Some(BinStatus::KeyExists | BinStatus::NotFound | BinStatus::NotStored),
        ) if op == Opcode::Set as u8 => Step::Done(Outcome::NotStored),
        _ => Step::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ctx::Phase;
    use proto::client::{ReplyParse, parse_reply};

    /// Feeds a whole reply stream for one request; returns the outcome and
    /// how many bytes it used.
    fn run(
        protocol: Protocol,
        kind: OpKind,
        width: u16,
        mut bytes: &[u8],
    ) -> (Option<Outcome>, Ctx) {
        let mut ctx = Ctx::new(protocol, true);
        let p = Pending {
            kind,
            width,
            intended: 0,
            phase: Phase::Measured,
        };
        let mut partial = Partial::default();
        loop {
            match parse_reply(bytes) {
                ReplyParse::Complete { reply, consumed } => {
                    bytes = &bytes[consumed..];
                    match apply(&p, &mut partial, reply, &mut ctx) {
                        Step::More => {}
                        Step::Done(o) => return (Some(o), ctx),
                        Step::Invalid => return (None, ctx),
                    }
                }
                _ => return (None, ctx),
            }
        }
    }

    fn verified(key: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        crate::verify::write_value(&mut v, key, 1, 40);
        v
    }

    #[test]
    fn text_multiget_counts_hits_and_verifies() {
        let good = verified(b"k1");
        let mut stream = Vec::new();
        stream.extend_from_slice(b"VALUE k1 0 40\r\n");
        stream.extend_from_slice(&good);
        stream.extend_from_slice(b"\r\nVALUE k2 0 40\r\n");
        stream.extend_from_slice(&good); // k1's value under k2: corrupt
        stream.extend_from_slice(b"\r\nEND\r\n");
        let (o, ctx) = run(Protocol::Text, OpKind::Get, 3, &stream);
        assert_eq!(o, Some(Outcome::Get { hits: 2 }));
        assert_eq!(ctx.counters[2].errors.verify, 1);
    }

    #[test]
    fn meta_single_and_multi_gets() {
        let v = verified(b"k7");
        let mut hit = b"VA 40 kk7\r\n".to_vec();
        hit.extend_from_slice(&v);
        hit.extend_from_slice(b"\r\n");
        assert_eq!(
            run(Protocol::Meta, OpKind::Get, 1, &hit).0,
            Some(Outcome::Get { hits: 1 })
        );
        assert_eq!(
            run(Protocol::Meta, OpKind::Get, 1, b"EN\r\n").0,
            Some(Outcome::Get { hits: 0 })
        );
        let mut multi = hit.clone();
        multi.extend_from_slice(b"MN\r\n");
        let (o, ctx) = run(Protocol::Meta, OpKind::Get, 4, &multi);
        assert_eq!(o, Some(Outcome::Get { hits: 1 }));
        assert_eq!(ctx.counters[2].errors.verify, 0);
    }

    #[test]
    fn sets_and_errors() {
        assert_eq!(
            run(Protocol::Text, OpKind::Set, 1, b"STORED\r\n").0,
            Some(Outcome::Stored)
        );
        assert_eq!(
            run(Protocol::Text, OpKind::Set, 1, b"NOT_STORED\r\n").0,
            Some(Outcome::NotStored)
        );
        assert_eq!(
            run(Protocol::Meta, OpKind::Set, 1, b"HD\r\n").0,
            Some(Outcome::Stored)
        );
        assert_eq!(
            run(
                Protocol::Text,
                OpKind::Set,
                1,
                b"SERVER_ERROR out of memory\r\n"
            )
            .0,
            Some(Outcome::ServerError)
        );
        assert_eq!(
            run(
                Protocol::Meta,
                OpKind::Get,
                2,
                b"CLIENT_ERROR bad\r\nMN\r\n"
            )
            .0,
            Some(Outcome::ClientError)
        );
        // A reply that belongs to another request is out of sync.
        assert_eq!(run(Protocol::Text, OpKind::Set, 1, b"END\r\n").0, None);
        assert_eq!(run(Protocol::Text, OpKind::Get, 1, b"STORED\r\n").0, None);
    }

    /// Feeds binary responses for one request; returns the outcome.
    fn run_binary(kind: OpKind, width: u16, mut bytes: &[u8]) -> Option<Outcome> {
        use proto::binary::{ResponseParse, parse_response};
        let mut ctx = Ctx::new(Protocol::Binary, true);
        let p = Pending {
            kind,
            width,
            intended: 0,
            phase: Phase::Measured,
        };
        let mut partial = Partial::default();
        while let ResponseParse::Complete { response, consumed } = parse_response(bytes) {
            bytes = &bytes[consumed..];
            match apply_binary(&p, &mut partial, &response, &mut ctx) {
                Step::More => {}
                Step::Done(o) => return Some(o),
                Step::Invalid => return None,
            }
        }
        None
    }

    #[test]
    fn binary_responses_fold_into_outcomes() {
        use proto::binary::get::{encode_hit, encode_miss};
        use proto::binary::response::{encode_ok, encode_status};
        use proto::binary::{Opcode, ReplyTo, Status};
        let to = |op: Opcode| ReplyTo {
            opcode: op as u8,
            opaque: 0,
        };
        let key = b"k001";
        let mut value = Vec::new();
        crate::verify::write_value(&mut value, key, 1, 40);
        let mut hit = Vec::new();
        encode_hit(&mut hit, to(Opcode::GetK), 0, 1, Some(key), &value);
        assert_eq!(
            run_binary(OpKind::Get, 1, &hit),
            Some(Outcome::Get { hits: 1 })
        );
        let mut miss = Vec::new();
        encode_miss(&mut miss, to(Opcode::GetK), Some(key));
        assert_eq!(
            run_binary(OpKind::Get, 1, &miss),
            Some(Outcome::Get { hits: 0 })
        );
        // A multi-get: quiet hits, then the noop.
        let mut multi = Vec::new();
        encode_hit(&mut multi, to(Opcode::GetKQ), 0, 1, Some(key), &value);
        encode_hit(&mut multi, to(Opcode::GetKQ), 0, 2, Some(key), &value);
        encode_ok(&mut multi, to(Opcode::Noop), 0);
        assert_eq!(
            run_binary(OpKind::Get, 3, &multi),
            Some(Outcome::Get { hits: 2 })
        );
        let mut stored = Vec::new();
        encode_ok(&mut stored, to(Opcode::Set), 9);
        assert_eq!(run_binary(OpKind::Set, 1, &stored), Some(Outcome::Stored));
        let mut big = Vec::new();
        encode_status(&mut big, to(Opcode::Set), Status::TooLarge);
        assert_eq!(run_binary(OpKind::Set, 1, &big), Some(Outcome::ServerError));
        // A set's response to a get is out of sync.
        assert_eq!(run_binary(OpKind::Get, 1, &stored), None);
    }
}
