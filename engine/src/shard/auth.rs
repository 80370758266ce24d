//! Authentication on the shard: memcached 1.6.18's two schemes, checked
//! against the password files in `crate::auth`.
//!
//! - ascii (`-Y`, memcached's `try_read_command_asciiauth`): until it has
//!   authenticated, a connection may send only `set <key> <flags> <exptime>
//!   <n>` whose data is `user password`; it is answered `STORED` on a match
//!   and `CLIENT_ERROR authentication failure` otherwise (the connection stays
//!   for a retry), and anything else `CLIENT_ERROR unauthenticated`.
//! - SASL PLAIN in the binary protocol (`-S`): before authenticating, only
//!   list-mechs, auth, step and version are answered; anything else gets
//!   `AuthError` and the connection is closed, as memcached does.

use memchr::memchr;
use proto::binary::response::encode_status;
use proto::binary::sasl::{encode_authenticated, encode_mechs};
use proto::binary::{BinOp, BinRequest, Status};

use super::Core;
use super::client::{Client, Handled};
use super::request::Step;

/// memcached closes a connection that sends this many bytes without a newline
/// before authenticating.
const MAX_AUTH_LINE: usize = 2048;
/// The longest `user password` data read; memcached's entries are at most 256
/// bytes. A longer block is refused and discarded as it arrives, never buffered.
const MAX_AUTH_DATA: usize = 1024;
/// memcached's longest SASL mechanism name.
const MAX_MECH_LEN: usize = 32;

const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad authentication token format\r\n";
const BAD_TERMINATION: &[u8] = b"CLIENT_ERROR bad command line termination\r\n";
const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";

fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

impl Core {
    /// One request of a connection that has not authenticated with `-Y` yet.
    pub(super) fn step_ascii_auth(&mut self, slot: u32, rest: &[u8]) -> Step {
        let Some(conn) = self.net.conns.slot_mut(slot) else {
            return Step::Stop(0);
        };
        let Some(nl) = memchr(b'\n', rest) else {
            if rest.len() > MAX_AUTH_LINE {
                conn.closing = true;
            }
            conn.need = 0;
            return Step::Stop(0);
        };
        let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
        let t: Vec<&[u8]> = tokens(line).take(6).collect();
        let size = t
            .get(4)
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u32>().ok());
        let (true, Some(size)) = (t.len() >= 5 && t[0] == b"set", size) else {
            conn.replies.sink().extend_from_slice(UNAUTHENTICATED);
            return Step::Next(nl + 1);
        };
        let size = size as usize;
        if size > MAX_AUTH_DATA {
            conn.replies.sink().extend_from_slice(BAD_FORMAT);
            conn.swallow = size + 2;
            self.stats.auth_cmds += 1;
            self.stats.auth_errors += 1;
            return Step::Next(nl + 1);
        }
        let total = nl + 1 + size + 2;
        if rest.len() < total {
            conn.need = total;
            return Step::Stop(0);
        }
        conn.need = 0;
        let data = &rest[nl + 1..total];
        if !data.ends_with(b"\r\n") {
            conn.replies.sink().extend_from_slice(BAD_TERMINATION);
            return Step::Next(total);
        }
        let words: Vec<&[u8]> = tokens(&data[..size]).take(2).collect();
        if words.len() < 2 {
            conn.replies.sink().extend_from_slice(BAD_FORMAT);
            return Step::Next(total);
        }
        let ok = self
            .shared
            .ascii_auth
            .as_ref()
            .is_some_and(|a| a.check(words[0], words[1]));
        let conn = self.net.conns.slot_mut(slot).expect("still here");
        self.stats.auth_cmds += 1;
        if ok {
            conn.authenticated = true;
            conn.replies.sink().extend_from_slice(b"STORED\r\n");
        } else {
            self.stats.auth_errors += 1;
            conn.replies.sink().extend_from_slice(FAILURE);
        }
        Step::Next(total)
    }

    /// Whether a binary request may run on this connection; refuses it (and
    /// closes) when SASL is on and the connection has not authenticated.
    pub(super) fn binary_allowed(&mut self, slot: u32, request: &BinRequest<'_>) -> bool {
        let Some(conn) = self.net.conns.slot_mut(slot) else {
            return false;
        };
        if conn.authenticated
            || matches!(
                request.op,
                BinOp::SaslListMechs
                    | BinOp::SaslAuth { .. }
                    | BinOp::SaslStep { .. }
                    | BinOp::Version
            )
        {
            return true;
        }
        encode_status(conn.replies.sink(), request.reply_to(), Status::AuthError);
        conn.closing = true;
        false
    }

    /// list-mechs, auth and step with SASL on (`-S`): PLAIN only.
    pub(super) fn sasl(&mut self, client: Client, request: &BinRequest<'_>) -> Handled {
        let to = request.reply_to();
        let Client::Conn { slot, generation } = client else {
            return Handled::Done; // UDP and -S are refused at start-up.
        };
        let ok = match request.op {
            BinOp::SaslListMechs => {
                return self.reply(client, |out| encode_mechs(out, to, "PLAIN"));
            }
            BinOp::SaslAuth { mech, .. } | BinOp::SaslStep { mech, .. }
                if mech.len() > MAX_MECH_LEN =>
            {
                return self.reply(client, |out| {
                    encode_status(out, to, Status::InvalidArguments)
                });
            }
            BinOp::SaslAuth { mech, data } if mech == b"PLAIN" => {
                // authzid NUL authcid NUL password (RFC 4616); authzid unused.
                let mut parts = data.split(|&b| b == 0);
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(_), Some(user), Some(pass), None) => self
                        .shared
                        .sasl_auth
                        .as_ref()
                        .is_some_and(|a| a.check(user, pass)),
                    _ => false,
                }
            }
            // Another mechanism, or a step: PLAIN has no second step.
            _ => false,
        };
        self.stats.auth_cmds += 1;
        if !ok {
            self.stats.auth_errors += 1;
            return self.reply(client, |out| encode_status(out, to, Status::AuthError));
        }
        if let Some(conn) = self.net.conns.get_mut(slot, generation) {
            conn.authenticated = true;
        }
        self.reply(client, |out| encode_authenticated(out, to))
    }
}
