//! Connection I/O on a shard: accepting (with the server-wide connection
//! limit), multishot receives, one send in flight per connection, pausing a
//! connection that does not read its replies, and closing only once the
//! kernel holds nothing of the connection's.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::conn::{Conn, Pause};
use super::{Core, OP_CANCEL, OP_RECV, OP_SEND, TCP_GROUP, accept_entry};
use runtime::Token;

/// What a client over the connection limit is told before it is closed (memcached's words).
const TOO_MANY_CONNECTIONS: &[u8] = b"SERVER_ERROR too many open connections\r\n";

impl Core {
    /// Arms a multishot accept on every listener that has none.
    pub(super) fn arm_listeners(&mut self) -> std::io::Result<()> {
        for i in 0..self.listeners.len() {
            if !self.accept_armed[i] {
                let entry = accept_entry(&self.listeners[i], i);
                // SAFETY: a multishot accept references only the listener fd,
                // which lives as long as the shard.
                unsafe { self.ring.push(&entry)? };
                self.accept_armed[i] = true;
            }
        }
        // The UDP receive too: otherwise it is first armed at the end of the
        // first loop turn, and datagrams wait for the 1 s tick to end it.
        if let Some(u) = self.udp.as_mut() {
            u.arm(&mut self.ring);
        }
        Ok(())
    }

    pub(super) fn on_accept(&mut self, listener: u32, result: i32, more: bool) {
        let index = listener as usize;
        if !more {
            self.accept_armed[index] = false;
        }
        if result < 0 {
            match -result {
                libc::ECANCELED => {}
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    // Out of descriptors or memory: retrying at once would spin.
                    if !self.accept_backoff {
                        tracing::warn!(
                            shard = self.id,
                            "accept failed: {}",
                            std::io::Error::from_raw_os_error(-result)
                        );
                    }
                    self.accept_backoff = true;
                }
                e => tracing::debug!(
                    shard = self.id,
                    "accept failed: {}",
                    std::io::Error::from_raw_os_error(e)
                ),
            }
        } else {
            // SAFETY: a successful accept returns a new descriptor that we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(result) };
            self.admit(fd, listener);
        }
        if !self.accept_armed[index] && !self.stopping && !self.accept_backoff {
            let _ = self.arm_listeners();
        }
    }

    fn admit(&mut self, fd: OwnedFd, listener: u32) {
        if self.stopping {
            return;
        }
        let limit = self.shared.config.server.max_connections;
        if self.shared.connections.fetch_add(1, Ordering::Relaxed) >= limit {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.stats.rejected_connections += 1;
            // SAFETY: send on a descriptor we own, from a static buffer; a
            // fresh socket's empty send buffer takes these few bytes at once.
            unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    TOO_MANY_CONNECTIONS.as_ptr().cast(),
                    TOO_MANY_CONNECTIONS.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
            }
            return;
        }
        let _ = runtime::socket::set_nodelay(&fd);
        let now = self.now;
        let slot = self
            .conns
            .insert(|generation| Conn::new(fd, generation, now, listener));
        self.stats.curr_connections += 1;
        self.stats.total_connections += 1;
        self.arm_recv(slot);
    }

    fn arm_recv(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let (fd, token) = (conn.raw_fd(), Token::new(OP_RECV, slot, conn.generation));
        conn.recv_armed = true;
        // SAFETY: the shard's buffer ring outlives its connections, and the
        // connection's descriptor stays open until the receive has ended
        // (`quiescent`).
        if unsafe { self.ring.queue_recv_multi(fd, TCP_GROUP, token) }.is_err()
            && let Some(conn) = self.conns.slot_mut(slot)
        {
            conn.recv_armed = false;
            conn.closing = true;
        }
    }

    pub(super) fn on_recv(&mut self, t: Token, result: i32, more: bool, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(t.slot, t.generation) else {
            return;
        };
        if !more {
            conn.recv_armed = false;
            conn.cancelling = false;
        }
        match result {
            n if n > 0 => {
                self.stats.bytes_read += n as u64;
                self.on_data(t.slot, data);
            }
            0 => {
                // EOF: answer what was sent before it, then close.
                conn.eof = true;
                conn.closing = true;
            }
            e if -e == libc::ENOBUFS => {
                // Every receive buffer is taken; they come back this turn.
            }
            e if -e == libc::ECANCELED => {}
            _ => {
                // Reset or another error: nobody will read replies any more.
                conn.eof = true;
                conn.closing = true;
                conn.replies.reset();
            }
        }
        self.mark_dirty(t.slot);
    }

    /// Queues `slot` for the end-of-turn flush.
    pub(super) fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.slot_mut(slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// End of turn for one connection: send what is ready, resume reading
    /// once replies have drained, re-arm the receive, close when done.
    pub(super) fn flush_conn(&mut self, slot: u32) {
        let max_output = self.shared.config.network.max_pending_output.0 as usize;
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        conn.dirty = false;
        if !conn.sending && conn.replies.has_ready() {
            conn.replies.swap_ready(&mut conn.inflight);
            conn.inflight_done = 0;
            self.queue_send(slot);
        }
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if conn.pause == Pause::Output && conn.pending_output() <= max_output / 2 {
            conn.pause = Pause::No;
            self.resume_input(slot);
        }
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let wants_input = !conn.closing && !conn.eof && conn.pause == Pause::No && !self.stopping;
        if wants_input && !conn.recv_armed && !conn.cancelling {
            self.arm_recv(slot);
        }
        self.maybe_close(slot);
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

    pub(super) fn on_send(&mut self, t: Token, result: i32) {
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
        self.stats.bytes_written += result as u64;
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
        conn.replies.shrink(1 << 20);
        self.mark_dirty(t.slot);
    }

    /// Stops reading a connection: its multishot receive is cancelled, and
    /// what already arrived waits in its read buffer.
    pub(super) fn pause(&mut self, slot: u32, why: Pause) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        conn.pause = why;
        if why == Pause::Mesh && !self.stalled.contains(&slot) {
            self.stalled.push(slot);
        }
        self.cancel_recv(slot);
    }

    fn cancel_recv(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if conn.recv_armed && !conn.cancelling {
            conn.cancelling = true;
            let target = Token::new(OP_RECV, slot, conn.generation);
            if self
                .ring
                .queue_cancel(target, Token::op(OP_CANCEL))
                .is_err()
                && let Some(conn) = self.conns.slot_mut(slot)
            {
                conn.cancelling = false;
            }
        }
    }

    /// Closes the connection once everything owed has been sent and the
    /// kernel holds nothing of it.
    pub(super) fn maybe_close(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if !conn.closing || !conn.flushed() {
            return;
        }
        if conn.recv_armed {
            self.cancel_recv(slot);
            return;
        }
        if !conn.quiescent() {
            return;
        }
        self.release(slot);
    }

    /// Closes at once, discarding what the client was owed (stop deadline).
    pub(super) fn force_close(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        conn.closing = true;
        conn.eof = true;
        conn.replies.reset();
        if conn.quiescent() {
            self.release(slot);
        } else if !conn.cancelling {
            conn.cancelling = true;
            let fd = conn.raw_fd();
            let _ = self.ring.queue_cancel_fd(fd, Token::op(OP_CANCEL));
        }
    }

    fn release(&mut self, slot: u32) {
        if self.conns.remove(slot).is_some() {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.stats.curr_connections -= 1;
        }
        self.stalled.retain(|&s| s != slot);
    }
}
