//! Folding replies into request outcomes. `proto`'s reply parser returns a
//! whole classic get reply (VALUE* END) as one reply; a meta multi-get is
//! several replies (VA* MN), so a request may take more than one.

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
}
