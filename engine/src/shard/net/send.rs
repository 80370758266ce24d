//! The sending side of a shard's connections: one send in flight per
//! connection with everything its queue has ready, and closing only once
//! everything owed is sent and the kernel holds nothing of the connection.

use std::sync::atomic::Ordering;

use runtime::Token;

use super::Net;
use super::conn::{MAX_AWAITED, Pause};
use crate::logger::line::CloseReason;
use crate::shard::ops::{OP_CANCEL, OP_SEND};
use crate::shard::stats::ShardStats;
use crate::shared::Shared;

impl Net {
    /// End of turn for one connection, first half: send what is ready.
    /// Returns true when a connection paused for unsent output has drained
    /// enough to be read again: the caller parses what it buffered, then
    /// calls [`Net::after_flush`].
    pub fn flush_conn(&mut self, slot: u32, max_output: usize) -> bool {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return false;
        };
        conn.dirty = false;
        self.send_ready(slot);
        let Some(conn) = self.conns.slot_mut(slot) else {
            return false;
        };
        if conn.pause == Pause::Output
            && conn.pending_output() <= max_output / 2
            && conn.replies.awaiting() <= MAX_AWAITED / 2
        {
            conn.pause = Pause::No;
            return true;
        }
        false
    }

    /// End of turn for one connection, second half: re-arm the receive of a
    /// connection that wants input, close one that is done.
    pub fn after_flush(&mut self, slot: u32, shared: &Shared, stats: &mut ShardStats) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        // The turn ends for this connection: a fresh -R budget.
        conn.served = 0;
        let wants_input = !conn.closing && !conn.eof && conn.pause == Pause::No && !self.stopping;
        if wants_input && !conn.recv_armed && !conn.cancelling {
            self.arm_recv(slot);
        }
        self.maybe_close(slot, shared, stats);
    }

    /// Starts a send of what the connection has ready, unless one is in flight.
    fn send_ready(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if !conn.sending && conn.take_output() {
            conn.inflight_done = 0;
            self.queue_send(slot);
        }
    }

    fn queue_send(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let token = Token::new(OP_SEND, slot, conn.generation);
        conn.sending = true;
        let rest = &conn.inflight[conn.inflight_done..];
        // SAFETY: `inflight` is neither written nor dropped while `sending`
        // is set, and the slot is not freed while `sending` (see `quiescent`).
        if unsafe {
            self.ring
                .queue_send(conn.raw_fd(), rest, libc::MSG_NOSIGNAL, token)
        }
        .is_err()
            && let Some(conn) = self.conns.slot_mut(slot)
        {
            conn.sending = false;
            conn.closing = true;
        }
    }

    pub fn on_send(&mut self, t: Token, result: i32, stats: &mut ShardStats) {
        let Some(conn) = self.conns.get_mut(t.slot, t.generation) else {
            return;
        };
        conn.sending = false;
        if result < 0 {
            // The peer is gone: drop what it was owed.
            conn.inflight.clear();
            conn.inflight_done = 0;
            conn.replies.reset();
            conn.eof = true;
            conn.closing = true;
            self.mark_dirty(t.slot);
            return;
        }
        stats.bytes_written += result as u64;
        conn.inflight_done += result as usize;
        if conn.inflight_done < conn.inflight.len() {
            self.queue_send(t.slot);
            return;
        }
        conn.inflight.clear();
        conn.inflight_done = 0;
        if conn.inflight.capacity() > 1 << 20 {
            conn.inflight = Vec::new();
        }
        if let Some(tls) = conn.tls.as_deref_mut()
            && !conn.replies.has_ready()
        {
            // A TLS connection's buffers after its handshake flight (the
            // certificate chain) or a large reply: an idle connection keeps
            // neither (11.5 KB -> 3.5 KB per idle connection, benchmarks.md).
            if conn.inflight.capacity() > 4096 {
                conn.inflight = Vec::new();
            }
            tls.release_idle_buffers();
        }
        conn.replies.shrink(1 << 20);
        self.mark_dirty(t.slot);
    }

    /// Closes the connection once everything owed has been sent and the
    /// kernel holds nothing of it.
    pub fn maybe_close(&mut self, slot: u32, shared: &Shared, stats: &mut ShardStats) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if !conn.closing || !conn.flushed() {
            return;
        }
        // A TLS connection ends with close_notify, sent before the close
        // (not a watcher's: its session goes on, on the logger thread).
        if conn.watcher.is_none() && conn.tls.as_deref_mut().is_some_and(|t| t.close_notify()) {
            self.send_ready(slot);
            return;
        }
        if conn.recv_armed {
            self.cancel_recv(slot);
            return;
        }
        if !conn.quiescent() {
            return;
        }
        self.release(slot, shared, stats);
    }

    /// Closes at once, discarding what the client was owed (stop deadline).
    pub fn force_close(&mut self, slot: u32, shared: &Shared, stats: &mut ShardStats) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        conn.closing = true;
        conn.eof = true;
        conn.replies.reset();
        if conn.quiescent() {
            self.release(slot, shared, stats);
        } else if !conn.cancelling {
            conn.cancelling = true;
            let fd = conn.raw_fd();
            let _ = self.ring.queue_cancel_fd(fd, Token::op(OP_CANCEL));
        }
    }

    fn release(&mut self, slot: u32, shared: &Shared, stats: &mut ShardStats) {
        if let Some(c) = self.conns.slot(slot)
            && c.watcher.is_none()
            && shared.logger.state().wants(crate::logger::EV_CONNEVENTS)
        {
            let reason = c.close_reason.unwrap_or(if c.eof {
                CloseReason::Normal
            } else {
                CloseReason::Error
            });
            self.conn_events.push(crate::shard::watch::ConnEvent {
                peer: c.peer,
                fd: c.raw_fd(),
                closed: Some(reason),
            });
        }
        if let Some(conn) = self.conns.remove(slot) {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            stats.curr_connections -= 1;
            if let Some(kinds) = conn.watcher {
                shared.logger.hand_over(conn.fd, conn.tls, kinds);
            }
        }
        self.stalled.retain(|&s| s != slot);
        self.yielded.retain(|&s| s != slot);
    }
}
