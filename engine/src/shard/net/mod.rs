//! A shard's network state: its ring, its listeners, its connections and its
//! UDP socket, and the connections this turn must flush or retry. Nothing
//! here parses or executes a request; the request path (`shard::request`)
//! is handed received bytes and gives back replies in a connection's queue.
//!
//! | file | what |
//! |---|---|
//! | `recv.rs` | accepting (with the server-wide `-c` limit), multishot receives, pausing |
//! | `send.rs` | the end-of-turn send of ready replies, closing once the kernel holds nothing |
//! | `conn.rs` | one connection's state |
//! | `udp.rs` | the UDP socket: datagram receive, frame header, replies cut into datagrams |

pub mod conn;
mod recv;
mod send;
pub mod udp;

use std::os::fd::{AsRawFd, OwnedFd};

use runtime::{Ring, Token, opcode, types};

use super::client::Client;
use super::ops::{OP_ACCEPT, OP_CANCEL};
use super::order::ReplyQueue;
use super::stats::ShardStats;
use crate::logger::line::CloseReason;
use crate::shared::Shared;
use conn::{Conns, Pause};
use udp::Udp;

pub use recv::Received;

/// The network half of a shard.
pub struct Net {
    pub ring: Ring,
    listeners: Vec<OwnedFd>,
    /// The index in `listeners` of the HTTP port's, when it is on.
    http_listener: Option<u32>,
    accept_armed: Vec<bool>,
    /// When accepting failed for lack of file descriptors: retry at the next tick.
    accept_backoff: bool,
    pub conns: Conns,
    pub udp: Option<Udp>,
    /// Connections with replies to send at the end of this turn.
    dirty: Vec<u32>,
    /// Connections paused because a channel to another shard was full.
    stalled: Vec<u32>,
    /// Connections that used their requests-per-turn budget with more
    /// buffered: they go on next turn.
    yielded: Vec<u32>,
    /// Listeners no longer accept: the shard is stopping.
    stopping: bool,
    /// Which listeners speak TLS (-Z, all TCP ones but `notls:`).
    tls_listener: Vec<bool>,
    /// The TLS configuration this shard took last, and its version.
    tls_config: Option<(u64, std::sync::Arc<rustls::ServerConfig>)>,
    /// Connection events of this turn, recorded only while someone watches
    /// them (`watch connevents`).
    conn_events: Vec<crate::shard::watch::ConnEvent>,
}

impl Net {
    /// `tls` says, per memcached listener, whether it speaks TLS; `http` is
    /// the HTTP listener and whether it does.
    pub fn new(
        ring: Ring,
        mut listeners: Vec<OwnedFd>,
        mut tls: Vec<bool>,
        http: Option<(OwnedFd, bool)>,
        udp: Option<Udp>,
    ) -> Net {
        tls.resize(listeners.len(), false);
        let http_listener = http.map(|(fd, https)| {
            listeners.push(fd);
            tls.push(https);
            listeners.len() as u32 - 1
        });
        let accept_armed = vec![false; listeners.len()];
        Net {
            ring,
            listeners,
            http_listener,
            accept_armed,
            accept_backoff: false,
            conns: Conns::default(),
            udp,
            dirty: Vec::new(),
            stalled: Vec::new(),
            yielded: Vec::new(),
            stopping: false,
            tls_listener: tls,
            tls_config: None,
            conn_events: Vec::new(),
        }
    }

    /// The reply queue of a client, from whichever table holds it.
    pub fn queue(&mut self, client: Client) -> Option<&mut ReplyQueue> {
        match client {
            Client::Conn { slot, generation } => {
                self.conns.get_mut(slot, generation).map(|c| &mut c.replies)
            }
            Client::Udp { slot, generation } => self.udp.as_mut()?.queue(slot, generation),
        }
    }

    pub fn has_conn_events(&self) -> bool {
        !self.conn_events.is_empty()
    }

    pub fn take_conn_events(&mut self) -> Vec<crate::shard::watch::ConnEvent> {
        std::mem::take(&mut self.conn_events)
    }

    /// A connection's descriptor, for log lines (-1 for a UDP request).
    pub fn client_fd(&self, client: Client) -> i32 {
        match client {
            Client::Conn { slot, generation } => self
                .conns
                .slot(slot)
                .filter(|c| c.generation == generation)
                .map_or(-1, |c| c.raw_fd()),
            Client::Udp { .. } => -1,
        }
    }

    /// Arms a multishot accept on every listener that has none, and the UDP
    /// receive (otherwise it is first armed at the end of the first loop turn,
    /// and datagrams wait for the 1 s tick to end it).
    pub fn arm_listeners(&mut self) -> std::io::Result<()> {
        for i in 0..self.listeners.len() {
            if !self.accept_armed[i] {
                let entry = accept_entry(&self.listeners[i], i);
                // SAFETY: a multishot accept references only the listener fd,
                // which lives as long as the shard.
                unsafe { self.ring.push(&entry)? };
                self.accept_armed[i] = true;
            }
        }
        if let Some(u) = self.udp.as_mut() {
            u.arm(&mut self.ring);
        }
        Ok(())
    }

    /// Once a second: accepting again after running out of descriptors.
    pub fn tick(&mut self) {
        if self.accept_backoff && !self.stopping {
            self.accept_backoff = false;
            let _ = self.arm_listeners();
        }
    }

    /// Queues `slot` for the end-of-turn flush.
    pub fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.slot_mut(slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// The connections to flush this turn (the list is handed back with
    /// [`Net::restore_dirty`] so that its allocation is reused).
    pub fn take_dirty(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.dirty)
    }

    pub fn restore_dirty(&mut self, mut dirty: Vec<u32>) {
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }

    /// Connections paused on a full channel whose input is to be tried again:
    /// each is unpaused here.
    pub fn take_stalled(&mut self) -> Vec<u32> {
        let stalled = std::mem::take(&mut self.stalled);
        stalled
            .into_iter()
            .filter(|&slot| match self.conns.slot_mut(slot) {
                Some(conn) if conn.pause == Pause::Mesh => {
                    conn.pause = Pause::No;
                    true
                }
                _ => false,
            })
            .collect()
    }

    /// Whether some connection yielded and waits for the next turn (which
    /// must then not wait for a completion).
    pub fn has_yielded(&self) -> bool {
        !self.yielded.is_empty()
    }

    /// The connections that yielded so far: they stay paused until
    /// [`Net::unyield`], so that input arriving before then is only buffered
    /// and a connection runs at most its budget per turn.
    pub fn take_yielded(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.yielded)
    }

    /// Lets a connection taken with [`Net::take_yielded`] run again; false
    /// when it is gone or no longer paused for yielding.
    pub fn unyield(&mut self, slot: u32) -> bool {
        match self.conns.slot_mut(slot) {
            Some(conn) if conn.pause == Pause::Yield => {
                conn.pause = Pause::No;
                true
            }
            _ => false,
        }
    }

    /// Once a second: connections that sent nothing for a while give back the
    /// buffers large values grew (see [`conn::IDLE_KEEP`]).
    pub fn release_idle_buffers(&mut self, now: u32) {
        for conn in self.conns.iter_mut() {
            if conn.quiet_since(now) {
                conn.release_idle_buffers();
            }
        }
    }

    /// Once a second with `-o idle_timeout`: closes every connection that has
    /// waited longer than `timeout` seconds for its next request.
    pub fn kick_idle(&mut self, now: u32, timeout: u32, shared: &Shared, stats: &mut ShardStats) {
        let slots: Vec<u32> = self.conns.slots().collect();
        for slot in slots {
            let Some(conn) = self.conns.slot_mut(slot) else {
                continue;
            };
            if conn.idle_for(now, timeout) {
                conn.closing = true;
                conn.close_reason = Some(CloseReason::IdleTimeout);
                stats.idle_kicks += 1;
                self.maybe_close(slot, shared, stats);
            }
        }
    }

    /// Stop accepting and receiving datagrams; every connection closes once
    /// it has nothing owed (see `send.rs`).
    pub fn begin_stop(&mut self) {
        self.stopping = true;
        for (i, l) in self.listeners.iter().enumerate() {
            if self.accept_armed[i] {
                let _ = self
                    .ring
                    .queue_cancel_fd(l.as_raw_fd(), Token::op(OP_CANCEL));
            }
        }
        let slots: Vec<u32> = self.conns.slots().collect();
        for slot in slots {
            if let Some(c) = self.conns.slot_mut(slot) {
                c.closing = true;
                c.close_reason.get_or_insert(CloseReason::Shutdown);
            }
        }
        if let Some(u) = self.udp.as_mut() {
            u.stop(&mut self.ring);
        }
    }

    /// End of turn for UDP: send complete replies, re-arm the receive.
    pub fn flush_udp(&mut self, stats: &mut ShardStats) {
        if let Some(u) = self.udp.as_mut() {
            u.flush(&mut self.ring, stats);
        }
    }
}

/// Builds the multishot accept for listener `i`.
fn accept_entry(fd: &OwnedFd, i: usize) -> runtime::squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(fd.as_raw_fd()))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(Token::new(OP_ACCEPT, i as u32, 0).to_user_data())
}
