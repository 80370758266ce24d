//! Matching a peer link's reply stream to the requests in flight on it.
//!
//! Requests are pipelined, so replies come back in order; what has to be
//! known is where each one ends. proto's client-side parser finds the end of
//! one reply. A request that may have no reply at all (classic `noreply`, a
//! meta request in quiet mode) is sent followed by `mn`, whose `MN` always
//! comes: its reply is then everything before that `MN`, possibly nothing.
//!
//! ```text
//!   sent:     get a\r\n      set b 0 0 1 noreply\r\n x\r\n mn\r\n     get c d\r\n
//!   expect:   One            UntilNoop                              Values
//!   received: VALUE a … END  MN                                     VALUE c … END
//!   deliver:  VALUE a … END  (nothing)                              VALUE c …   (END is the client's)
//! ```

use std::time::Instant;

use proto::client::{MetaCode, Reply, ReplyError, ReplyParse, parse_reply};

use crate::shard::client::Client;

/// What the reply to one forwarded request looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly one reply, delivered whole.
    One,
    /// A retrieval reply whose `VALUE` blocks are delivered without the `END`:
    /// one part of a multi-key get, whose `END` the entry node writes.
    Values,
    /// Any number of replies up to the `MN` of the `mn` sent after the
    /// request; delivered without the `MN`.
    UntilNoop,
}

/// What the waiting client is told when the link fails before the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// `SERVER_ERROR backend failure`.
    Error,
    /// Nothing: the client asked for no reply (`noreply`), or the reply is
    /// part of a multi-get, where an error line inside the `VALUE` blocks
    /// would break the client's parser: the part's keys read as misses.
    Nothing,
}

/// One forwarded request waiting for its reply.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    /// `None`: the reply is read and dropped (the link's announcement, an
    /// unlink run for its effect only).
    pub client: Option<Client>,
    pub part: u32,
    pub expect: Expect,
    pub on_failure: OnFailure,
    pub since: Instant,
    /// What else waits for this reply.
    pub then: Then,
    /// A read kept to be sent to another replica if the link fails first:
    /// where its bytes start in the link's replay buffer, and their length
    /// (`Links::push_read`).
    pub replay: Option<(u64, u32)>,
}

/// What waits for a forwarded request's reply besides its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    Nothing,
    /// A replica record a held reply waits for (`replication_ack = "all"`):
    /// the key of its `Core::acks` entry, counted down when this request is
    /// answered or fails.
    Ack(u64),
    /// A warm-up read of key `key` of fill `fill` (warmup.rs): the reply is
    /// the previous owner's copy, or its miss.
    Fill {
        fill: u64,
        key: u32,
    },
}

/// Where the next reply for `expect` ends in `buf`: `Ok(Some((deliver,
/// consumed)))` when it is all there, the first `deliver` bytes being what
/// the client gets; `Ok(None)` when more bytes are needed; an error when the
/// stream cannot be a reply (the link is then dropped).
pub fn take_reply(buf: &[u8], expect: Expect) -> Result<Option<(usize, usize)>, ReplyError> {
    match expect {
        Expect::One => match parse_reply(buf) {
            ReplyParse::Complete { consumed, .. } => Ok(Some((consumed, consumed))),
            ReplyParse::Incomplete { .. } => Ok(None),
            ReplyParse::Invalid(e) => Err(e),
        },
        Expect::Values => match parse_reply(buf) {
            // `VALUE` blocks, then the 5 bytes of `END\r\n`.
            ReplyParse::Complete {
                reply: Reply::Values(_),
                consumed,
            } => Ok(Some((consumed - 5, consumed))),
            // The peer refused the get (e.g. out of memory): its keys read
            // as misses rather than an error line among VALUE blocks.
            ReplyParse::Complete { consumed, .. } => Ok(Some((0, consumed))),
            ReplyParse::Incomplete { .. } => Ok(None),
            ReplyParse::Invalid(e) => Err(e),
        },
        Expect::UntilNoop => {
            let mut at = 0;
            loop {
                match parse_reply(&buf[at..]) {
                    ReplyParse::Complete {
                        reply: Reply::Meta(m),
                        consumed,
                    } if m.code == MetaCode::Mn => return Ok(Some((at, at + consumed))),
                    ReplyParse::Complete { consumed, .. } => at += consumed,
                    ReplyParse::Incomplete { .. } => return Ok(None),
                    ReplyParse::Invalid(e) => return Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(buf: &str, expect: Expect) -> Result<Option<(String, usize)>, ReplyError> {
        take_reply(buf.as_bytes(), expect).map(|r| r.map(|(d, c)| (buf[..d].to_string(), c)))
    }

    #[test]
    fn one_reply_is_delivered_whole() {
        let cases = [
            ("STORED\r\nNEXT", "STORED\r\n"),
            (
                "VALUE k 0 2\r\nhi\r\nEND\r\n",
                "VALUE k 0 2\r\nhi\r\nEND\r\n",
            ),
            ("END\r\n", "END\r\n"),
            ("VA 2 f0\r\nhi\r\nHD\r\n", "VA 2 f0\r\nhi\r\n"),
            (
                "SERVER_ERROR out of memory\r\n",
                "SERVER_ERROR out of memory\r\n",
            ),
            ("12\r\n", "12\r\n"),
        ];
        for (buf, want) in cases {
            let (got, consumed) = take(buf, Expect::One).unwrap().unwrap();
            assert_eq!(got, want);
            assert_eq!(consumed, want.len());
        }
    }

    #[test]
    fn values_lose_their_end() {
        let buf = "VALUE a 1 1\r\nx\r\nVALUE b 2 2\r\nyz\r\nEND\r\nSTORED\r\n";
        let (got, consumed) = take(buf, Expect::Values).unwrap().unwrap();
        assert_eq!(got, "VALUE a 1 1\r\nx\r\nVALUE b 2 2\r\nyz\r\n");
        assert_eq!(consumed, buf.len() - "STORED\r\n".len());
        assert_eq!(
            take("END\r\n", Expect::Values).unwrap().unwrap(),
            (String::new(), 5)
        );
        // A refusal in place of the values: nothing for the client.
        let refusal = "SERVER_ERROR out of memory writing get response\r\n";
        assert_eq!(
            take(refusal, Expect::Values).unwrap().unwrap(),
            (String::new(), refusal.len())
        );
    }

    #[test]
    fn until_noop_takes_everything_before_mn() {
        assert_eq!(
            take("MN\r\n", Expect::UntilNoop).unwrap().unwrap(),
            (String::new(), 4)
        );
        let buf = "VA 1\r\nx\r\nMN\r\nHD\r\n";
        assert_eq!(
            take(buf, Expect::UntilNoop).unwrap().unwrap(),
            ("VA 1\r\nx\r\n".to_string(), 13)
        );
        // A classic noreply that still drew an error line.
        let buf = "CLIENT_ERROR bad data chunk\r\nMN\r\n";
        assert_eq!(
            take(buf, Expect::UntilNoop).unwrap().unwrap(),
            ("CLIENT_ERROR bad data chunk\r\n".to_string(), buf.len())
        );
    }

    #[test]
    fn partial_replies_wait_and_garbage_is_an_error() {
        for (buf, expect) in [
            ("VALUE k 0 5\r\nhel", Expect::One),
            ("VALUE k 0 2\r\nhi\r\n", Expect::Values),
            ("STO", Expect::One),
            ("HD\r\nM", Expect::UntilNoop),
            ("", Expect::UntilNoop),
        ] {
            assert_eq!(take(buf, expect).unwrap(), None, "{buf:?}");
        }
        for (buf, expect) in [
            ("VALUE k 0 2\r\nhiXX", Expect::One),
            ("VALUE k x 2\r\nhi\r\nEND\r\n", Expect::Values),
            ("STORED\n", Expect::UntilNoop),
        ] {
            assert!(take(buf, expect).is_err(), "{buf:?}");
        }
    }
}
