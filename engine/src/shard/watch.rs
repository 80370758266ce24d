//! `watch`: the connection becomes a log watcher. The shard finishes it as
//! after `quit` (nothing more is parsed; what it owed is sent, its receive
//! ends), and then, instead of closing the socket, hands it with its TLS
//! session to the logger thread (crate::logger, `Net::release`). Its close is
//! no connection event.
//!
//! Also the connection events (`watch connevents`) and evictions (`watch
//! evictions`) of this shard's turn, which the network half and the store
//! record while someone watches them and the log takes at the end of the turn.

use proto::cmd::admin::Watch;
use proto::{ClientError, ErrorMessage, ErrorReply};

use super::Core;
use super::client::{Client, Handled};
use super::net::conn::Wire;
use crate::logger::{EV_CONNEVENTS, EV_EVICTIONS, WatchError, line};

/// A connection event recorded by `Net` while someone watches them.
#[derive(Clone, Copy, Debug)]
pub struct ConnEvent {
    pub peer: Option<std::net::SocketAddr>,
    pub fd: i32,
    /// `None` for a new connection, the reason for a close.
    pub closed: Option<line::CloseReason>,
}

impl Core {
    pub(super) fn start_watch(&mut self, client: Client, w: Watch) -> Handled {
        if !self.shared.config.server.watch {
            return self.reply(client, |out| {
                ErrorReply::from(ClientError::WatchNotAllowed).encode(out)
            });
        }
        let Client::Conn { slot, generation } = client else {
            // A UDP request has no connection to turn into a stream.
            return self.reply(client, |out| ErrorReply::Error.encode(out));
        };
        let Some(conn) = self.net.conns.get_mut(slot, generation) else {
            return Handled::Done;
        };
        if conn.wire == Wire::Http {
            return self.reply(client, |out| ErrorReply::Error.encode(out));
        }
        if conn.sending || conn.replies.has_ready() || conn.replies.awaiting() > 0 {
            return self.reply(client, |out| {
                ErrorReply::Message(ErrorMessage::WatchNotFirst).encode(out)
            });
        }
        match self.shared.logger.reserve() {
            Ok(()) => {
                // Closed as after `quit`, except that `Net::release` hands the
                // socket (and TLS session) to the logger instead of closing it.
                conn.watcher = Some(w.events);
                Handled::Close
            }
            Err(WatchError::TooMany) => self.reply(client, |out| {
                out.extend_from_slice(b"WATCHER_TOO_MANY log watcher limit reached\r\n")
            }),
            Err(WatchError::Failed) => self.reply(client, |out| {
                out.extend_from_slice(b"WATCHER_FAILED failed to add log watcher\r\n")
            }),
        }
    }

    /// End of turn: the evictions the store recorded become log lines.
    pub(super) fn log_evictions(&mut self) {
        for e in self.store.take_evictions() {
            self.log
                .log(EV_EVICTIONS, |out, stamp| line::eviction(out, stamp, &e));
        }
    }

    /// End of turn: the connection events `Net` recorded become log lines.
    pub(super) fn log_conn_events(&mut self) {
        for e in self.net.take_conn_events() {
            self.log.log(EV_CONNEVENTS, |out, stamp| match e.closed {
                None => line::conn_new(out, stamp, e.peer, e.fd),
                Some(reason) => line::conn_close(out, stamp, e.peer, reason, e.fd),
            });
        }
    }
}
