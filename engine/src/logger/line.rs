//! The log lines watchers read, formatted on the shard that saw the event
//! (memcached's `logger.c` formats on its logger thread; here the shard's
//! bytes are the line, so the logger thread only copies), and the bounded
//! output buffer each watcher has on the logger thread.
//!
//! ```text
//! ts=1700000000.012345 gid=17 type=item_get key=foo status=found clsid=1 cfd=22 size=3
//! ts=1700000000.012399 gid=18 type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd=22 size=9
//! ts=1700000000.500000 gid=19 type=eviction key=n%2Cfoo1 fetch=no ttl=-1 la=3 clsid=40 size=11000
//! ts=1700000001.000002 gid=19 type=conn_new rip=127.0.0.1 rport=41234 transport=tcp cfd=23
//! ts=1700000001.000107 gid=20 type=conn_close rip=127.0.0.1 rport=41234 transport=tcp reason=normal cfd=23
//! skipped=12
//! ```
//! Lines end with `\n` alone, as memcached's do (the `OK\r\n` before them
//! is a reply). Keys are URI-encoded as memcached encodes them: every byte
//! but `A-Z a-z 0-9 - . _ ~` becomes `%XX`, so a line never holds a space or
//! a newline of a key.

use std::io::Write;
use std::net::SocketAddr;

/// What became of a fetch (memcached's `was_found` words; corecache's
/// store does not tell a flushed or expired item from a missing one, so
/// those are `not_found`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchStatus {
    NotFound,
    Found,
}

/// What became of a store (memcached's `store_item_type` words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreStatus {
    NotStored,
    Stored,
    Exists,
    NotFound,
    TooLarge,
    NoMemory,
}

impl StoreStatus {
    fn name(self) -> &'static str {
        match self {
            StoreStatus::NotStored => "not_stored",
            StoreStatus::Stored => "stored",
            StoreStatus::Exists => "exists",
            StoreStatus::NotFound => "not_found",
            StoreStatus::TooLarge => "too_large",
            StoreStatus::NoMemory => "no_memory",
        }
    }
}

/// Why a connection closed (memcached's `reason` words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Error,
    Normal,
    IdleTimeout,
    Shutdown,
}

impl CloseReason {
    fn name(self) -> &'static str {
        match self {
            CloseReason::Error => "error",
            CloseReason::Normal => "normal",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// The fields every line starts with: the wall-clock time of the event
/// (seconds and microseconds, the microseconds zero-padded to six digits
/// where memcached prints them unpadded) and its server-wide sequence number.
pub struct Stamp {
    pub secs: u64,
    pub micros: u32,
    pub gid: u64,
}

impl Stamp {
    pub fn now(gid: u64) -> Stamp {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Stamp {
            secs: t.as_secs(),
            micros: t.subsec_micros(),
            gid,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "ts={}.{:06} gid={} ", self.secs, self.micros, self.gid);
    }
}

/// Appends `key` URI-encoded (memcached's `uriencode`).
pub fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// `type=item_get`.
pub fn item_get(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    key: &[u8],
    status: FetchStatus,
    clsid: u32,
    cfd: i32,
    size: usize,
) {
    stamp.write(out);
    out.extend_from_slice(b"type=item_get key=");
    uri_encode(key, out);
    let status = match status {
        FetchStatus::NotFound => "not_found",
        FetchStatus::Found => "found",
    };
    let _ = writeln!(out, " status={status} clsid={clsid} cfd={cfd} size={size}");
}

/// `type=item_store`; `cmd` is the command's name (`set`, `add`, ... `cas`).
#[allow(clippy::too_many_arguments)]
pub fn item_store(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    key: &[u8],
    status: StoreStatus,
    cmd: &str,
    ttl: u64,
    clsid: u32,
    cfd: i32,
    size: usize,
) {
    stamp.write(out);
    out.extend_from_slice(b"type=item_store key=");
    uri_encode(key, out);
    let _ = writeln!(
        out,
        " status={} cmd={cmd} ttl={ttl} clsid={clsid} cfd={cfd} size={size}",
        status.name()
    );
}

/// `type=eviction`: `ttl` is the seconds it had left (-1: none), `la` the
/// seconds since its last access.
pub fn eviction(out: &mut Vec<u8>, stamp: &Stamp, e: &store::Evicted) {
    stamp.write(out);
    out.extend_from_slice(b"type=eviction key=");
    uri_encode(&e.key, out);
    let _ = writeln!(
        out,
        " fetch={} ttl={} la={} clsid={} size={}",
        if e.fetched { "yes" } else { "no" },
        e.ttl,
        e.last_access,
        e.class_id,
        e.value_len
    );
}

/// The address fields of a connection event: memcached prints `rip` and
/// `rport` of a TCP peer, and `transport=local` for a unix socket.
fn peer_fields(out: &mut Vec<u8>, peer: Option<SocketAddr>) {
    match peer {
        Some(a) => {
            let _ = write!(out, "rip={} rport={} transport=tcp", a.ip(), a.port());
        }
        None => out.extend_from_slice(b"rip= rport=0 transport=local"),
    }
}

/// `type=conn_new`.
pub fn conn_new(out: &mut Vec<u8>, stamp: &Stamp, peer: Option<SocketAddr>, cfd: i32) {
    stamp.write(out);
    out.extend_from_slice(b"type=conn_new ");
    peer_fields(out, peer);
    let _ = writeln!(out, " cfd={cfd}");
}

/// `type=conn_close`.
pub fn conn_close(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    peer: Option<SocketAddr>,
    reason: CloseReason,
    cfd: i32,
) {
    stamp.write(out);
    out.extend_from_slice(b"type=conn_close ");
    peer_fields(out, peer);
    let _ = writeln!(out, " reason={} cfd={cfd}", reason.name());
}

/// A watcher's output on the logger thread: bytes not yet taken by its
/// socket, never more than `cap`. A line that does not fit is not
/// written but counted; the count goes out as `skipped=N` before the next
/// line that fits with it (memcached's bipbuf and `skipped`).
#[derive(Debug)]
pub struct Outbuf {
    data: Vec<u8>,
    /// Bytes at the front of `data` already sent.
    sent: usize,
    cap: usize,
    skipped: u64,
}

/// What [`Outbuf::offer`] did with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    Written,
    Skipped,
}

impl Outbuf {
    pub fn new(cap: usize) -> Outbuf {
        Outbuf {
            data: Vec::new(),
            sent: 0,
            cap,
            skipped: 0,
        }
    }

    /// Bytes waiting for the socket.
    pub fn pending(&self) -> &[u8] {
        &self.data[self.sent..]
    }

    pub fn len(&self) -> usize {
        self.data.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a reply (`OK\r\n`) whatever the room: it is tiny and comes first.
    pub fn reply(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Appends `line` if it fits (with the `skipped=N` line owed before it).
    pub fn offer(&mut self, line: &[u8]) -> Offered {
        let mut note = [0u8; 32];
        let note_len = if self.skipped > 0 {
            let mut w = &mut note[..];
            let _ = writeln!(w, "skipped={}", self.skipped);
            32 - w.len()
        } else {
            0
        };
        if self.len() + note_len + line.len() > self.cap {
            self.skipped += 1;
            return Offered::Skipped;
        }
        if self.sent > 0 && self.sent >= self.data.len() / 2 {
            self.data.drain(..self.sent);
            self.sent = 0;
        }
        self.data.extend_from_slice(&note[..note_len]);
        self.data.extend_from_slice(line);
        self.skipped = 0;
        Offered::Written
    }

    /// `n` lines were lost before they reached this buffer (a shard's
    /// batch was full): they are owed in the next `skipped=N` too.
    pub fn skip(&mut self, n: u64) {
        self.skipped += n;
    }

    /// The socket took `n` more bytes.
    pub fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent >= self.data.len() {
            self.data.clear();
            self.sent = 0;
            if self.data.capacity() > self.cap.max(4096) {
                self.data = Vec::new();
            }
        }
    }

    /// Heap bytes held, at most about twice `cap` (before a compaction).
    pub fn held(&self) -> usize {
        self.data.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            secs: 1_700_000_000,
            micros: 1234,
            gid: 17,
        }
    }

    #[test]
    fn keys_are_uri_encoded_as_memcached_encodes_them() {
        let cases: &[(&[u8], &str)] = &[
            (b"foo", "foo"),
            (b"a-b.c_d~e", "a-b.c_d~e"),
            (b"n,foo1", "n%2Cfoo1"),
            (b"#", "%23"),
            (b"a b\n", "a%20b%0A"),
            (&[0x00, 0xff, b'Z'], "%00%FFZ"),
        ];
        for (key, want) in cases {
            let mut out = Vec::new();
            uri_encode(key, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), *want, "{key:?}");
        }
        // watcher.t's longest key: 250 '#' are 750 bytes after `key=`.
        let mut out = Vec::new();
        uri_encode(&[b'#'; 250], &mut out);
        assert_eq!(out.len(), 750);
    }

    #[test]
    fn lines_have_memcacheds_fields_in_its_order() {
        let mut out = Vec::new();
        item_get(&mut out, &stamp(), b"foo", FetchStatus::Found, 1, 22, 3);
        assert_eq!(
            out,
            b"ts=1700000000.001234 gid=17 type=item_get key=foo status=found clsid=1 cfd=22 size=3\n"
        );
        out.clear();
        item_store(
            &mut out,
            &stamp(),
            b"k y",
            StoreStatus::Stored,
            "set",
            0,
            1,
            22,
            9,
        );
        assert_eq!(
            out,
            b"ts=1700000000.001234 gid=17 type=item_store key=k%20y status=stored cmd=set ttl=0 clsid=1 cfd=22 size=9\n"
        );
        out.clear();
        let evicted = store::Evicted {
            key: b"n,foo1".to_vec(),
            fetched: false,
            ttl: -1,
            last_access: 3,
            class_id: 40,
            value_len: 11000,
        };
        eviction(&mut out, &stamp(), &evicted);
        assert_eq!(
            out,
            b"ts=1700000000.001234 gid=17 type=eviction key=n%2Cfoo1 fetch=no ttl=-1 la=3 clsid=40 size=11000\n"
        );
        out.clear();
        let peer = Some("127.0.0.1:4000".parse().unwrap());
        conn_close(&mut out, &stamp(), peer, CloseReason::Error, 5);
        assert_eq!(
            out,
            b"ts=1700000000.001234 gid=17 type=conn_close rip=127.0.0.1 rport=4000 transport=tcp reason=error cfd=5\n"
        );
        out.clear();
        conn_new(&mut out, &stamp(), None, 5);
        assert_eq!(
            out,
            b"ts=1700000000.001234 gid=17 type=conn_new rip= rport=0 transport=local cfd=5\n"
        );
    }

    #[test]
    fn a_full_buffer_skips_lines_and_says_so_once_there_is_room() {
        let mut b = Outbuf::new(20);
        b.reply(b"OK\r\n");
        assert_eq!(b.offer(b"0123456789\n"), Offered::Written); // 15 bytes
        assert_eq!(b.offer(b"abcdefghij\n"), Offered::Skipped);
        assert_eq!(b.offer(b"abcdefghij\n"), Offered::Skipped);
        assert_eq!(b.len(), 15, "never more than the cap");
        b.consume(15);
        assert!(b.is_empty());
        assert_eq!(b.offer(b"next\n"), Offered::Written);
        assert_eq!(b.pending(), b"skipped=2\nnext\n");
        assert_eq!(b.offer(b"more\n"), Offered::Written);
        assert_eq!(
            b.pending(),
            b"skipped=2\nnext\nmore\n",
            "the count is reset"
        );
    }

    #[test]
    fn the_buffer_stays_bounded_under_a_stream_it_cannot_send() {
        let mut b = Outbuf::new(1000);
        let mut skipped = 0;
        for i in 0..100_000 {
            if b.offer(format!("line {i}\n").as_bytes()) == Offered::Skipped {
                skipped += 1;
            }
            if i % 7 == 0 {
                b.consume(b.len().min(3));
            }
            assert!(b.len() <= 1000);
            assert!(b.held() <= 4096, "held {}", b.held());
        }
        assert!(skipped > 90_000);
    }
}
