//! Folding reply items into request outcomes: a get's reply is several
//! items (VALUE* END, or VA* MN in meta), everything else is one.

use super::ctx::{Ctx, Outcome, Pending};
use crate::wire::Protocol;
use crate::wire::reply::{Item, meta_key};
use crate::workload::OpKind;

/// Progress of the reply at the front of a connection's queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct Partial {
    pub hits: u32,
    /// An error line inside a meta multi-get (which still ends with MN).
    pub failed: Option<Outcome>,
}

pub enum Step {
    /// The request needs more items.
    More,
    Done(Outcome),
    /// The item does not belong to this request: the stream is out of sync.
    Invalid,
}

fn error_outcome(item: &Item) -> Option<Outcome> {
    match item {
        Item::Error => Some(Outcome::Error),
        Item::ClientError(_) => Some(Outcome::ClientError),
        Item::ServerError(_) => Some(Outcome::ServerError),
        _ => None,
    }
}

/// Applies one item to the request `p` in flight.
pub fn apply(p: &Pending, partial: &mut Partial, item: Item, ctx: &mut Ctx) -> Step {
    if let Some(err) = error_outcome(&item) {
        let meta_multi = ctx.protocol == Protocol::Meta && p.kind == OpKind::Get && p.width > 1;
        if meta_multi {
            partial.failed = Some(err);
            return Step::More;
        }
        return Step::Done(err);
    }
    match (ctx.protocol, p.kind) {
        (Protocol::Text | Protocol::Udp, OpKind::Get) => match item {
            Item::Value { key, data } => {
                partial.hits += 1;
                ctx.check_value(p.phase, Some(key), data);
                Step::More
            }
            Item::End => Step::Done(Outcome::Get { hits: partial.hits }),
            _ => Step::Invalid,
        },
        (Protocol::Text | Protocol::Udp, OpKind::Set) => match item {
            Item::Stored => Step::Done(Outcome::Stored),
            Item::NotStored | Item::Exists | Item::NotFound => Step::Done(Outcome::NotStored),
            _ => Step::Invalid,
        },
        (Protocol::Meta, OpKind::Get) => {
            let single = p.width == 1;
            match item {
                Item::MetaValue { flags, data } => {
                    partial.hits += 1;
                    ctx.check_value(p.phase, meta_key(flags), data);
                    if single {
                        Step::Done(Outcome::Get { hits: 1 })
                    } else {
                        Step::More
                    }
                }
                Item::Meta(code) if single && &code == b"EN" => {
                    Step::Done(Outcome::Get { hits: 0 })
                }
                // Quiet mode hides misses, but a server may still send EN.
                Item::Meta(code) if !single && &code == b"EN" => Step::More,
                Item::Meta(code) if !single && &code == b"MN" => Step::Done(
                    partial
                        .failed
                        .unwrap_or(Outcome::Get { hits: partial.hits }),
                ),
                _ => Step::Invalid,
            }
        }
        (Protocol::Meta, OpKind::Set) => match item {
            Item::Meta(code) if &code == b"HD" => Step::Done(Outcome::Stored),
            Item::Meta(code) if matches!(&code, b"NS" | b"EX" | b"NF") => {
                Step::Done(Outcome::NotStored)
            }
            _ => Step::Invalid,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ctx::Phase;
    use crate::wire::reply::{ItemParse, parse_item};

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
            match parse_item(bytes) {
                ItemParse::Complete(item, n) => {
                    bytes = &bytes[n..];
                    match apply(&p, &mut partial, item, &mut ctx) {
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
