//! The HTTP port on the shard loop: REST over the same store and routing as
//! the memcached port, `/metrics`, `/stats`, `/health`, `/ready` and the
//! status page.
//!
//! Each shard listens on the HTTP port too (SO_REUSEPORT, bound next to the
//! memcached listener); a connection accepted there is a [`Wire::Http`]
//! connection and its bytes come here instead of to the memcached parser.
//! Nothing else in the request path changes: a REST request becomes the
//! equivalent memcached request, which is routed, run or forwarded to the
//! owning shard or node, and replied into the connection's reply queue like
//! any other; at the end of the turn [`Session::translate`] turns the
//! memcached replies, in order, into HTTP responses.
//!
//! ```text
//!  bytes ─► frame.rs (httparse, bounds) ─► rest.rs (route, build memcached bytes)
//!        ─► Core::handle (the memcached request path) ─► ReplyQueue (memcached replies)
//!        ─► Session::translate ─► answer.rs (memcached reply → HTTP response) ─► send
//! ```
//!
//! | file | what |
//! |---|---|
//! | `frame.rs` | one request's framing and bounds (400, 411, 413, 431) |
//! | `rest.rs` | routing and HTTP → memcached |
//! | `answer.rs` | memcached → HTTP, the response writer, JSON strings |
//! | `metrics.rs` | the Prometheus text of `stats shards`, the `/stats` JSON |
//! | `status.html` | the status page, embedded |
//!
//! [`Wire::Http`]: super::net::conn::Wire::Http

mod answer;
mod frame;
mod metrics;
mod rest;

use std::collections::VecDeque;

use proto::Parse;
use proto::client::{ReplyParse, parse_reply};

use super::Core;
use super::client::{Client, Handled};
use super::net::conn::Pause;
use super::order::ReplyQueue;
use super::request::Step;
use answer::Op;
use frame::{Frame, FrameLimits};
use rest::{Action, Context};

/// One HTTP connection's requests between parse and response.
#[derive(Debug, Default)]
pub struct Session {
    /// Requests not answered yet, in order.
    pending: VecDeque<Pending>,
    /// memcached reply bytes not yet turned into a response.
    mc: Vec<u8>,
    /// HTTP responses ready to send.
    pub out: Vec<u8>,
}

#[derive(Debug)]
enum Pending {
    /// Answered without the store: the whole response.
    Ready(Vec<u8>),
    /// Answered from memcached replies.
    Awaits { op: Op, close: bool },
}

impl Session {
    fn push_ready(&mut self, response: Vec<u8>) {
        if self.pending.is_empty() {
            self.out.extend_from_slice(&response);
        } else {
            self.pending.push_back(Pending::Ready(response));
        }
    }

    fn push_op(&mut self, op: Op, close: bool) {
        self.pending.push_back(Pending::Awaits { op, close });
    }

    /// Takes the memcached replies ready in `replies` and answers every
    /// request whose replies are all in, in order. False when the replies
    /// cannot be read (never from this server): the connection must close.
    pub fn translate(&mut self, replies: &mut ReplyQueue) -> bool {
        replies.take_ready(&mut self.mc);
        let mut used = 0;
        let mut ok = true;
        while let Some(front) = self.pending.front() {
            match front {
                Pending::Ready(r) => self.out.extend_from_slice(r),
                Pending::Awaits { op, close } => {
                    let mut parsed = Vec::with_capacity(op.replies());
                    let mut at = used;
                    while parsed.len() < op.replies() {
                        match parse_reply(&self.mc[at..]) {
                            ReplyParse::Complete { reply, consumed } => {
                                parsed.push(reply);
                                at += consumed;
                            }
                            ReplyParse::Incomplete { .. } => break,
                            ReplyParse::Invalid(e) => {
                                tracing::warn!(?e, "unreadable memcached reply on the HTTP port");
                                ok = false;
                                break;
                            }
                        }
                    }
                    if !ok {
                        let bad =
                            answer::error(502, "unreadable reply from the cache", false, true);
                        self.out.extend_from_slice(&bad);
                        self.pending.clear();
                        break;
                    }
                    if parsed.len() < op.replies() {
                        break;
                    }
                    answer::answer(&mut self.out, op, &parsed, *close);
                    used = at;
                }
            }
            self.pending.pop_front();
        }
        self.mc.drain(..used);
        ok
    }

    /// Bytes held here: replies not yet answered, responses not yet sent.
    pub fn buffered(&self) -> usize {
        self.mc.len() + self.out.len()
    }

    /// Whether every request has been answered and sent on.
    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.out.is_empty()
    }
}

impl Core {
    /// Frames, routes and runs one HTTP request at the start of `rest`.
    pub(super) fn step_http(&mut self, slot: u32, client: Client, rest: &[u8]) -> Step {
        let h = &self.shared.config.http;
        let limits = FrameLimits {
            max_header: h.max_header_bytes.0 as usize,
            max_body: h.max_body_bytes.0 as usize,
        };
        let request = match frame::frame(rest, limits) {
            Frame::Incomplete { need } => {
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.need = need;
                }
                return Step::Stop(0);
            }
            Frame::Refused(r) => {
                self.stats.protocol_errors += 1;
                if let Some(conn) = self.net.conns.slot_mut(slot) {
                    conn.need = 0;
                    conn.closing = true;
                    if let Some(s) = conn.http.as_deref_mut() {
                        s.push_ready(answer::error(r.status, r.reason, false, true));
                    }
                }
                return Step::Stop(rest.len());
            }
            Frame::Complete { request, consumed } => (request, consumed),
        };
        let (request, consumed) = request;
        let node = match &self.shared.cluster {
            Some(plan) => plan.peers.this().name.as_str(),
            None => h.node_name.as_str(),
        };
        let cx = Context {
            // One atomic load: SIGHUP may have replaced it.
            token: self.http_token.refresh(&self.shared.http_token).as_deref(),
            max_key_length: self.limits.max_key_len,
            max_value: self.limits.max_item_size,
            node,
            // Settled once no member is merely presumed live: each has been
            // heard from, or the start-up grace is over.
            settled: self.view.as_ref().is_none_or(|v| {
                v.members
                    .iter()
                    .all(|m| !(m.state == crate::membership::view::State::Unknown && m.live))
            }),
        };
        let close = request.close;
        let action = rest::route(&request, &cx);
        if let Some(conn) = self.net.conns.slot_mut(slot) {
            conn.need = 0;
        }
        match action {
            Action::Direct(response) => self.session(slot, |s| s.push_ready(response)),
            Action::Memcached { request, op } => {
                let (ran, handled) = self.run_memcached(client, &request);
                match (ran, handled) {
                    (_, Handled::Done | Handled::Close) => {
                        self.session(slot, |s| s.push_op(op, close))
                    }
                    (0, Handled::Stall) => {
                        // Nothing ran: parse the request again once the
                        // channel has room.
                        self.net.pause(slot, Pause::Mesh);
                        return Step::Stop(0);
                    }
                    (ran, Handled::Stall) => {
                        // Part of a several-request op ran: its replies
                        // come, and are answered as "busy".
                        self.session(slot, |s| s.push_op(Op::Busy(ran), close));
                    }
                }
            }
        }
        if close {
            if let Some(conn) = self.net.conns.slot_mut(slot) {
                conn.closing = true;
            }
            return Step::Stop(consumed);
        }
        Step::Next(consumed)
    }

    fn session(&mut self, slot: u32, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self
            .net
            .conns
            .slot_mut(slot)
            .and_then(|c| c.http.as_deref_mut())
        {
            f(s);
        }
    }

    /// Runs the memcached requests in `bytes` through the request path, as
    /// if a memcached client had sent them; returns how many ran, and what
    /// became of the last.
    fn run_memcached(&mut self, client: Client, bytes: &[u8]) -> (usize, Handled) {
        let (mut pos, mut ran) = (0, 0);
        while pos < bytes.len() {
            let Parse::Complete { request, consumed } = proto::parse(&bytes[pos..], &self.limits)
            else {
                // rest.rs builds only requests that parse: a bug, answered
                // as a server error rather than a crash.
                debug_assert!(false, "an HTTP request built a bad memcached request");
                self.reply(client, |out| {
                    out.extend_from_slice(b"SERVER_ERROR bad request\r\n")
                });
                return (ran + 1, Handled::Done);
            };
            let handled = self.handle(client, &request, &bytes[pos..pos + consumed], usize::MAX);
            if handled == Handled::Stall {
                return (ran, Handled::Stall);
            }
            ran += 1;
            pos += consumed;
        }
        (ran, Handled::Done)
    }
}
