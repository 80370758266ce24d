//! One client connection's state on its shard.
//!
//! A connection has at most one receive (multishot) and one send in flight.
//! Its slot is freed only when neither is, so the kernel never writes into or
//! reads from memory that has been reused.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::shard::order::ReplyQueue;
use crate::shard::slots::Slots;

/// Replies from other shards a connection may await before it stops being
/// read (`Pause::Output`): their size is not known until they arrive, and each
/// holds at most a long-get piece's keys (shard/long_get.rs). Reading resumes
/// once at most half are awaited and the output is below half its bound.
pub const MAX_AWAITED: usize = 64;
/// Bytes of each buffer an idle connection keeps. A buffer a large value grew
/// past this is given back once the connection has sent no request for
/// [`IDLE_SECS`] and holds nothing in it, so a client that once sent or fetched
/// a big item does not pin that much memory for as long as it stays connected
/// (memcached likewise shrinks a read buffer grown past its 16 KiB when the
/// connection waits for its next command). A busy connection keeps what it
/// grew: giving it back after every reply cost 17% of the depth-16 rate with
/// 8 KB values (the buffers regrown for every batch).
pub const IDLE_KEEP: usize = 16 << 10;
/// Seconds without a request after which a connection counts as idle here.
pub const IDLE_SECS: u32 = 2;

/// Why a connection stopped being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// Being read.
    No,
    /// Too many replies waiting to be sent: the client is not reading.
    Output,
    /// A channel to another shard is full.
    Mesh,
    /// It ran its requests-per-turn budget (-R) with more buffered: the
    /// rest waits in `rbuf` for the next turn, and no more is read meanwhile.
    Yield,
}

/// The protocol a connection is read in: memcached decides it once, from the
/// first byte (see `-B`), and so do we.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Nothing received yet.
    Undecided,
    /// Text and meta commands.
    Text,
    /// The binary protocol.
    Binary,
    /// HTTP/1.1, on the HTTP port (shard/http/).
    Http,
}

#[derive(Debug)]
pub struct Conn {
    pub fd: OwnedFd,
    pub generation: u32,
    /// Bytes received and not yet parsed (from `rbuf_off` on).
    pub rbuf: Vec<u8>,
    /// Bytes at the front of `rbuf` already parsed. Non-zero only while the
    /// connection is paused: a paused connection's input is resumed from an
    /// offset, so a deep pipeline is not moved down by every resume (which made
    /// a multi-megabyte pipeline quadratic).
    pub rbuf_off: usize,
    /// The input of a connection that yielded (-R), parsed from
    /// `backlog_done` on: taken a few requests a turn from an offset, so a
    /// deep pipeline is not moved down by every turn. What arrives meanwhile
    /// waits in `rbuf`.
    pub backlog: Vec<u8>,
    pub backlog_done: usize,
    /// Do not parse again until `rbuf` holds this many bytes (a data block is
    /// still arriving).
    pub need: usize,
    /// Bytes of a refused data block still to discard as they arrive.
    pub swallow: usize,
    pub wire: Wire,
    /// Passed -Y or SASL authentication, or none is required (set when the
    /// first bytes arrive).
    pub authenticated: bool,
    /// Inside a `get`/`gets` line too long to parse whole: what follows are
    /// more of its keys (see shard/long_get.rs).
    pub get_tail: Option<crate::shard::long_get::Tail>,
    pub replies: ReplyQueue,
    /// Bytes handed to the kernel by the send in flight.
    pub inflight: Vec<u8>,
    /// How much of `inflight` the kernel has taken.
    pub inflight_done: usize,
    pub sending: bool,
    pub recv_armed: bool,
    /// A cancellation of the receive is in flight.
    pub cancelling: bool,
    pub pause: Pause,
    /// Close once the replies owed so far have been sent (quit, EOF, a line
    /// over the guard, server stopping).
    pub closing: bool,
    /// The peer sent EOF: no more input will come.
    pub eof: bool,
    /// On the shard's list of connections to send for this turn.
    pub dirty: bool,
    pub peer: Option<std::net::SocketAddr>,
    /// Seconds since start when its last request was parsed (or it was
    /// accepted): the idle timeout and `stats conns` count from here.
    pub last_cmd: u32,
    /// Requests handled since the end of the last loop turn (-R).
    pub served: u32,
    pub listener: u32,
    /// Another node of the cluster announced this connection as its peer
    /// link (`cluster_link`): its requests are served here, never forwarded.
    pub peer_link: bool,
    /// On the HTTP port: its requests awaiting answers, its responses.
    pub http: Option<Box<crate::shard::http::Session>>,
    /// A binary connection in a cluster: its requests awaiting answers, its
    /// packets (shard/binary/session.rs).
    pub binary: Option<Box<crate::shard::binary::Session>>,
    /// On a TLS listener: the record layer and the ciphertext it holds.
    /// Taken out while its plaintext is handed to the request path.
    pub tls: Option<Box<crate::tls::TlsConn>>,
    /// `watch` asked for these event kinds: once flushed, the socket goes to
    /// the logger thread instead of being closed (and its close is no event).
    pub watcher: Option<u16>,
    /// Why it closes, when the shard knows better than "EOF: normal,
    /// anything else: error" (quit, idle timeout, stop).
    pub close_reason: Option<crate::logger::line::CloseReason>,
}

impl Conn {
    /// A connection accepted at `now` (seconds since start).
    pub fn new(fd: OwnedFd, generation: u32, now: u32, listener: u32) -> Conn {
        let peer = runtime::socket::peer_addr(&fd).ok();
        Conn {
            fd,
            generation,
            rbuf: Vec::new(),
            rbuf_off: 0,
            backlog: Vec::new(),
            backlog_done: 0,
            need: 0,
            swallow: 0,
            wire: Wire::Undecided,
            authenticated: true,
            get_tail: None,
            replies: ReplyQueue::default(),
            inflight: Vec::new(),
            inflight_done: 0,
            sending: false,
            recv_armed: false,
            cancelling: false,
            pause: Pause::No,
            closing: false,
            eof: false,
            dirty: false,
            peer,
            last_cmd: now,
            served: 0,
            listener,
            peer_link: false,
            http: None,
            binary: None,
            tls: None,
            watcher: None,
            close_reason: None,
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Bytes owed to the client and not yet taken by the kernel.
    pub fn pending_output(&self) -> usize {
        let http = self.http.as_ref().map_or(0, |h| h.buffered())
            + self.binary.as_ref().map_or(0, |b| b.buffered());
        let tls = self.tls.as_ref().map_or(0, |t| t.outgoing.len());
        self.replies.buffered() + http + tls + self.inflight.len() - self.inflight_done
    }

    /// Whether no request came for [`IDLE_SECS`] at `now`.
    pub fn quiet_since(&self, now: u32) -> bool {
        now.saturating_sub(self.last_cmd) >= IDLE_SECS
    }

    /// Gives back the buffers grown past [`IDLE_KEEP`] that hold nothing now:
    /// the read buffer, the send buffer (not while a send is in flight: the
    /// kernel reads it), the reply queue's and a binary session's.
    pub fn release_idle_buffers(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > IDLE_KEEP {
            self.rbuf = Vec::new();
            self.rbuf_off = 0;
        }
        if !self.sending && self.inflight.is_empty() && self.inflight.capacity() > IDLE_KEEP {
            self.inflight = Vec::new();
            self.inflight_done = 0;
        }
        self.replies.shrink(IDLE_KEEP);
        if let Some(b) = self.binary.as_deref_mut() {
            b.shrink(IDLE_KEEP);
        }
    }

    /// Whether everything owed has been sent and nothing is awaited.
    pub fn flushed(&self) -> bool {
        !self.sending
            && self.replies.awaiting() == 0
            && !self.replies.has_ready()
            && self.http.as_ref().is_none_or(|h| h.idle())
            && self.binary.as_ref().is_none_or(|b| b.idle())
            && self.tls.as_ref().is_none_or(|t| t.outgoing.is_empty())
    }

    /// Moves what is ready to send into `inflight` (empty, as no send is in
    /// flight); false when nothing is. An HTTP connection's memcached
    /// replies become its responses here first, and a cluster's binary
    /// connection's its binary packets.
    pub fn take_output(&mut self) -> bool {
        if self.tls.is_none() {
            return self.take_plain_output();
        }
        // TLS: the plaintext goes through `inflight` into the record
        // layer's ciphertext, which is what is sent.
        if self.take_plain_output()
            && let Some(tls) = self.tls.as_deref_mut()
        {
            if let Err(e) = tls.encrypt(&self.inflight) {
                tracing::debug!("TLS encrypt failed: {e}");
                self.closing = true;
            }
            self.inflight.clear();
        }
        let Some(tls) = self.tls.as_deref_mut() else {
            return false;
        };
        if tls.outgoing.is_empty() {
            return false;
        }
        std::mem::swap(&mut tls.outgoing, &mut self.inflight);
        true
    }

    fn take_plain_output(&mut self) -> bool {
        let (ok, out) = if let Some(h) = self.http.as_deref_mut() {
            (h.translate(&mut self.replies), &mut h.out)
        } else if let Some(b) = self.binary.as_deref_mut() {
            (b.translate(&mut self.replies), &mut b.out)
        } else {
            if !self.replies.has_ready() {
                return false;
            }
            self.replies.swap_ready(&mut self.inflight);
            return true;
        };
        if !ok {
            self.closing = true;
        }
        if out.is_empty() {
            return false;
        }
        std::mem::swap(out, &mut self.inflight);
        out.clear();
        true
    }

    /// Whether the connection is waiting for its next request, and has
    /// waited longer than `timeout` seconds at `now`. As memcached kicks only
    /// connections waiting for a command: not one in the middle of a data
    /// block (or swallowing one), with replies to send or owed, or paused.
    pub fn idle_for(&self, now: u32, timeout: u32) -> bool {
        now.saturating_sub(self.last_cmd) > timeout
            && !self.closing
            && self.need == 0
            && self.swallow == 0
            && self.pause == Pause::No
            && self.flushed()
    }

    /// Whether the slot can be freed: the kernel holds nothing of ours.
    pub fn quiescent(&self) -> bool {
        !self.sending && !self.recv_armed
    }
}

/// The connections of one shard, by slot and generation.
pub type Conns = Slots<Conn>;

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn a_connection_is_quiescent_only_with_nothing_in_flight() {
        let mut c = Conn::new(fd(), 1, 0, 0);
        assert!(c.quiescent() && c.flushed());
        c.recv_armed = true;
        assert!(!c.quiescent());
        c.recv_armed = false;
        c.sending = true;
        assert!(!c.quiescent() && !c.flushed());
    }

    #[test]
    fn an_idle_connection_gives_back_grown_buffers_that_hold_nothing() {
        let mut c = Conn::new(fd(), 1, 10, 0);
        assert!(!c.quiet_since(10 + IDLE_SECS - 1) && c.quiet_since(10 + IDLE_SECS));
        let big = IDLE_KEEP + 1;
        c.rbuf.reserve(big);
        c.inflight.reserve(big);
        c.replies.sink().reserve(big);
        // In use: a send in flight (the kernel reads `inflight`) and the
        // start of a request in the read buffer.
        c.sending = true;
        c.inflight.push(b'x');
        c.rbuf.extend_from_slice(b"set k 0 0 100000\r\n");
        c.release_idle_buffers();
        assert!(c.rbuf.capacity() > IDLE_KEEP && c.inflight.capacity() > IDLE_KEEP);
        assert_eq!(c.replies.sink().capacity(), 0, "an empty reply buffer goes");
        c.sending = false;
        c.inflight.clear();
        c.rbuf.clear();
        c.release_idle_buffers();
        assert_eq!((c.rbuf.capacity(), c.inflight.capacity()), (0, 0));
        // A small buffer stays.
        c.rbuf.reserve(IDLE_KEEP);
        c.release_idle_buffers();
        assert!(c.rbuf.capacity() >= IDLE_KEEP);
    }

    #[test]
    fn idle_means_waiting_for_a_request_longer_than_the_timeout() {
        let mut c = Conn::new(fd(), 1, 10, 0);
        assert!(!c.idle_for(13, 3), "3 s is not longer than 3 s");
        assert!(c.idle_for(14, 3));
        c.last_cmd = 12;
        assert!(!c.idle_for(14, 3), "a request restarts the count");
        c.last_cmd = 10;
        // Mid data block, swallowing, sending, paused, closing: not waiting.
        c.need = 5;
        assert!(!c.idle_for(14, 3));
        c.need = 0;
        c.swallow = 5;
        assert!(!c.idle_for(14, 3));
        c.swallow = 0;
        c.sending = true;
        assert!(!c.idle_for(14, 3));
        c.sending = false;
        c.pause = Pause::Output;
        assert!(!c.idle_for(14, 3));
        c.pause = Pause::No;
        c.closing = true;
        assert!(!c.idle_for(14, 3));
        c.closing = false;
        // A line without its newline yet is still waiting for a request.
        c.rbuf.extend_from_slice(b"get fo");
        assert!(c.idle_for(14, 3));
    }
}
