//! One client connection's state on its shard, and the table of them.
//!
//! A connection has at most one receive (multishot) and one send in flight.
//! Its slot is freed only when neither is, so the kernel never writes into or
//! reads from memory that has been reused.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::order::ReplyQueue;
use runtime::next_generation;

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

/// The connections of one shard: a slab of slots with generations, so that a
/// completion for a connection that has since closed is recognised and
/// dropped.
#[derive(Default)]
pub struct Conns {
    slots: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    live: usize,
}

impl Conns {
    /// Stores a connection built by `make` with its slot's next generation.
    pub fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = next_generation(self.generations[slot as usize]);
        self.generations[slot as usize] = generation;
        self.slots[slot as usize] = Some(make(generation));
        self.live += 1;
        slot
    }

    /// The connection in `slot` if it still has `generation`.
    pub fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut Conn> {
        self.slots
            .get_mut(slot as usize)?
            .as_mut()
            .filter(|c| c.generation == generation)
    }

    /// The connection in `slot`, whatever its generation.
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut Conn> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    pub fn remove(&mut self, slot: u32) -> Option<Conn> {
        let conn = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.live -= 1;
        Some(conn)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots of every live connection.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| i as u32)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn reused_slots_get_new_generations() {
        let mut conns = Conns::default();
        let a = conns.insert(|g| Conn::new(fd(), g, 0, 0));
        let gen_a = conns.slot_mut(a).unwrap().generation;
        conns.remove(a).unwrap();
        let b = conns.insert(|g| Conn::new(fd(), g, 0, 0));
        assert_eq!(a, b, "slot reused");
        assert!(
            conns.get_mut(a, gen_a).is_none(),
            "stale generation must not match"
        );
        let gen_b = conns.slot_mut(b).unwrap().generation;
        assert_ne!(gen_a, gen_b);
        assert!(conns.get_mut(b, gen_b).is_some());
        assert_eq!(conns.len(), 1);
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
