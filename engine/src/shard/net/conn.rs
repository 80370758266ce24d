//! One client connection's state on its shard.
//!
//! A connection has at most one receive (multishot) and one send in flight.
//! Its slot is freed only when neither is, so the kernel never writes into or
//! reads from memory that has been reused.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::shard::order::ReplyQueue;
use crate::shard::slots::Slots;

/// Why a connection stopped being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// Being read.
    No,
    /// Too many replies waiting to be sent: the client is not reading.
    Output,
    /// A channel to another shard is full.
    Mesh,
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
}

#[derive(Debug)]
pub struct Conn {
    pub fd: OwnedFd,
    pub generation: u32,
    /// Bytes received and not yet parsed.
    pub rbuf: Vec<u8>,
    /// Do not parse again until `rbuf` holds this many bytes (a data block is
    /// still arriving).
    pub need: usize,
    /// Bytes of a refused data block still to discard as they arrive.
    pub swallow: usize,
    pub wire: Wire,
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
    /// Seconds since start when the connection was accepted (`stats conns`).
    pub since: u32,
    pub listener: u32,
    /// Another node of the cluster announced this connection as its peer
    /// link (`cluster_link`): its requests are served here, never forwarded.
    pub peer_link: bool,
}

impl Conn {
    pub fn new(fd: OwnedFd, generation: u32, since: u32, listener: u32) -> Conn {
        let peer = runtime::socket::peer_addr(&fd).ok();
        Conn {
            fd,
            generation,
            rbuf: Vec::new(),
            need: 0,
            swallow: 0,
            wire: Wire::Undecided,
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
            since,
            listener,
            peer_link: false,
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Bytes owed to the client and not yet taken by the kernel.
    pub fn pending_output(&self) -> usize {
        self.replies.buffered() + self.inflight.len() - self.inflight_done
    }

    /// Whether everything owed has been sent and nothing is awaited.
    pub fn flushed(&self) -> bool {
        !self.sending && self.replies.awaiting() == 0 && !self.replies.has_ready()
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
}
