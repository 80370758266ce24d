//! Log watchers (memcached's `watch`): a connection that sent `watch …` is
//! handed by its shard to the `logger` thread, which from then on writes it
//! one line per event of the kinds it asked for, from every shard.
//!
//! ```text
//!  shard 0 ──┐ mask? (one relaxed load)        ┌──► watcher socket A (its Outbuf, ≤ watcher_logbuf_size)
//!  shard 1 ──┤ line into this turn's batch     │
//!   …        │ end of turn: batch → SPSC ring ─┤ logger thread: rings → filter by kind
//!  shard N ──┘ (bounded: full → dropped)       └──► watcher socket B      and gid → write, nonblocking
//!  `watch` on a shard: reserve a place; once the connection is flushed and
//!  its receive ended, its fd (and TLS session) ──► intake ──► logger:
//!  register, set mask, write OK
//! ```
//! - Nobody watching costs a shard one relaxed load and a branch per event.
//! - Each shard's lines go through its own bounded ring of batches; a batch
//!   over `WORKER_BATCH_BYTES` or a full ring drops lines (`log_worker_dropped`),
//!   and the next batch says how many, so that watchers count them as skipped.
//! - Each watcher has a bounded buffer; a line that does not fit is skipped
//!   and counted, and `skipped=N` precedes the next line that fits.
//! - A watcher's input is read and thrown away; its EOF or an error removes it.
//! - A watcher from a TLS listener comes with its TLS session: its lines are
//!   encrypted here, a record at a time, once the socket took the last one.
//! - At a graceful stop the thread closes every watcher and exits.

pub mod line;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use line::{Offered, Outbuf};

use crate::tls::TlsConn;

/// Event kinds, in the bit order of `proto::cmd::admin::WATCH_EVENTS`.
pub const EV_EVICTIONS: u16 = 1 << 1;
pub const EV_FETCHERS: u16 = 1 << 2;
pub const EV_MUTATIONS: u16 = 1 << 3;
pub const EV_CONNEVENTS: u16 = 1 << 5;
/// The kinds corecache emits; asking for others is accepted (as memcached
/// accepts `sysevents` without emitting any) but brings no lines.
pub const EV_SUPPORTED: u16 = EV_EVICTIONS | EV_FETCHERS | EV_MUTATIONS | EV_CONNEVENTS;

/// memcached's `WATCHER_LIMIT`.
pub const MAX_WATCHERS: usize = 20;
/// The most a shard buffers in one turn before dropping lines (memcached's
/// `worker_logbuf_size`, 64 KiB).
pub const WORKER_BATCH_BYTES: usize = 64 << 10;
/// Batches a shard's ring holds before it drops lines.
const RING_BATCHES: usize = 16;
/// How often the logger thread looks at the rings while someone watches.
const POLL_MS: i32 = 5;

/// memcached's names for [`Logger::counts`].
pub const COUNT_NAMES: [&str; 5] = [
    "log_worker_dropped",
    "log_worker_written",
    "log_watcher_skipped",
    "log_watcher_sent",
    "log_watchers",
];

/// The state shards and the logger thread share.
#[derive(Default)]
pub struct State {
    /// The kinds some watcher asked for.
    mask: AtomicU16,
    gid: AtomicU64,
    watchers: AtomicUsize,
    stop: AtomicBool,
    pub worker_dropped: AtomicU64,
    pub worker_written: AtomicU64,
    pub watcher_skipped: AtomicU64,
    pub watcher_sent: AtomicU64,
}

impl State {
    /// Whether some watcher wants `kind`: the only cost of logging when nobody does.
    #[inline]
    pub fn wants(&self, kind: u16) -> bool {
        self.mask.load(Ordering::Relaxed) & kind != 0
    }

    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }
}

/// A connection turned watcher, on its way to the logger thread.
struct NewWatcher {
    fd: OwnedFd,
    /// The connection's TLS session, when it came through a TLS listener:
    /// lines are encrypted with it.
    tls: Option<Box<TlsConn>>,
    kinds: u16,
}

/// Why a `watch` was refused (memcached's replies).
#[derive(Debug, PartialEq, Eq)]
pub enum WatchError {
    TooMany,
    Failed,
}

/// The logger as every shard sees it (in `Shared`).
pub struct Logger {
    state: Arc<State>,
    intake: Mutex<mpsc::Sender<NewWatcher>>,
    /// Each shard takes its ring's producer at start.
    producers: Mutex<Vec<Option<rtrb::Producer<Vec<u8>>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Logger {
    /// Starts the `logger` thread for `shards` shards, each watcher with a
    /// buffer of `watcher_buf` bytes.
    pub fn start(shards: usize, watcher_buf: usize) -> std::io::Result<Logger> {
        let state = Arc::new(State::default());
        let (tx, rx) = mpsc::channel();
        let mut producers = Vec::new();
        let mut consumers = Vec::new();
        for _ in 0..shards {
            let (p, c) = rtrb::RingBuffer::new(RING_BATCHES);
            producers.push(Some(p));
            consumers.push(c);
        }
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("logger".into())
            .spawn(move || {
                Thread {
                    state: thread_state,
                    intake: rx,
                    rings: consumers,
                    watchers: Vec::new(),
                    watcher_buf,
                }
                .run()
            })?;
        Ok(Logger {
            state,
            intake: Mutex::new(tx),
            producers: Mutex::new(producers),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The counters `stats` prints, in [`COUNT_NAMES`] order.
    pub fn counts(&self) -> [u64; 5] {
        let s = &self.state;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            get(&s.worker_dropped),
            get(&s.worker_written),
            get(&s.watcher_skipped),
            get(&s.watcher_sent),
            s.watchers() as u64,
        ]
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Shard `id`'s side of its ring (once).
    pub fn shard_log(&self, id: usize) -> ShardLog {
        let producer = self
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
            .and_then(Option::take);
        ShardLog {
            state: self.state.clone(),
            producer,
            batch: Vec::new(),
            scratch: Vec::new(),
            dropped: 0,
            dropped_kinds: 0,
        }
    }

    /// Takes one of the `MAX_WATCHERS` places for a connection about to
    /// become a watcher ([`Logger::hand_over`] fills it).
    pub fn reserve(&self) -> Result<(), WatchError> {
        self.state
            .watchers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WATCHERS).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| WatchError::TooMany)
    }

    /// Hands a connection's socket (and its TLS session) to the logger
    /// thread, which answers `OK` on it once it is registered; the place
    /// was taken with [`Logger::reserve`].
    pub fn hand_over(&self, fd: OwnedFd, tls: Option<Box<TlsConn>>, kinds: u16) {
        let sent = self
            .intake
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(NewWatcher { fd, tls, kinds });
        if sent.is_err() {
            // The thread is gone (the process is stopping): the socket closes.
            self.state.watchers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// [`Logger::reserve`] and [`Logger::hand_over`] at once.
    pub fn add_watcher(&self, fd: OwnedFd, kinds: u16) -> Result<(), WatchError> {
        self.reserve()?;
        self.hand_over(fd, None, kinds);
        Ok(())
    }

    /// Closes every watcher and ends the thread (graceful stop).
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// A shard's side of the log: this turn's lines, moved to its ring at the
/// end of the turn. Owned by the shard.
pub struct ShardLog {
    state: Arc<State>,
    producer: Option<rtrb::Producer<Vec<u8>>>,
    /// Records: | kind u16 | gid u64 | len u16 | line (len bytes) |; a
    /// record of kind `DROPPED | kinds` has no line and carries, in place
    /// of the gid, how many lines of those kinds this shard dropped.
    batch: Vec<u8>,
    scratch: Vec<u8>,
    /// Lines dropped since the last batch went out, and their kinds: the
    /// next batch tells the watchers, whose `skipped=N` then counts them.
    dropped: u64,
    dropped_kinds: u16,
}

/// The flag of a record that counts dropped lines.
const DROPPED: u16 = 1 << 15;

const RECORD_HEADER: usize = 12;

impl ShardLog {
    /// Whether some watcher wants `kind` (one relaxed load).
    #[inline]
    pub fn wants(&self, kind: u16) -> bool {
        self.state.wants(kind)
    }

    /// The next event's stamp.
    pub fn stamp(&self) -> line::Stamp {
        line::Stamp::now(self.state.gid.fetch_add(1, Ordering::Relaxed))
    }

    /// Logs one line of `kind`, written by `write` (after [`ShardLog::wants`]).
    pub fn log(&mut self, kind: u16, write: impl FnOnce(&mut Vec<u8>, &line::Stamp)) {
        let stamp = self.stamp();
        self.scratch.clear();
        write(&mut self.scratch, &stamp);
        let len = self.scratch.len().min(u16::MAX as usize);
        if self.batch.is_empty() && self.dropped > 0 {
            self.push_record(DROPPED | self.dropped_kinds, self.dropped, 0);
            (self.dropped, self.dropped_kinds) = (0, 0);
        }
        if self.producer.is_none() || self.batch.len() + RECORD_HEADER + len > WORKER_BATCH_BYTES {
            self.state.worker_dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped += 1;
            self.dropped_kinds |= kind;
            return;
        }
        self.push_record(kind, stamp.gid, len);
        self.state.worker_written.fetch_add(1, Ordering::Relaxed);
    }

    fn push_record(&mut self, kind: u16, gid: u64, len: usize) {
        self.batch.extend_from_slice(&kind.to_le_bytes());
        self.batch.extend_from_slice(&gid.to_le_bytes());
        self.batch.extend_from_slice(&(len as u16).to_le_bytes());
        self.batch.extend_from_slice(&self.scratch[..len]);
    }

    /// End of the loop turn: this turn's lines go to the logger thread. A
    /// full ring keeps them for the next turn (bounded by the batch limit).
    pub fn flush(&mut self) {
        if self.batch.is_empty() && self.dropped > 0 {
            self.push_record(DROPPED | self.dropped_kinds, self.dropped, 0);
            (self.dropped, self.dropped_kinds) = (0, 0);
        }
        if self.batch.is_empty() {
            return;
        }
        let Some(p) = self.producer.as_mut() else {
            return;
        };
        if !p.is_full() {
            let batch = std::mem::take(&mut self.batch);
            let _ = p.push(batch);
        }
    }
}

/// The records of a shard's batch: (kind, gid, line).
fn records(mut batch: &[u8]) -> impl Iterator<Item = (u16, u64, &[u8])> {
    std::iter::from_fn(move || {
        if batch.len() < RECORD_HEADER {
            return None;
        }
        let kind = u16::from_le_bytes([batch[0], batch[1]]);
        let gid = u64::from_le_bytes(batch[2..10].try_into().expect("8 bytes"));
        let len = u16::from_le_bytes([batch[10], batch[11]]) as usize;
        let end = (RECORD_HEADER + len).min(batch.len());
        let line = &batch[RECORD_HEADER..end];
        batch = &batch[end..];
        Some((kind, gid, line))
    })
}

struct Watcher {
    fd: OwnedFd,
    tls: Option<Box<TlsConn>>,
    /// How much of the TLS session's `outgoing` the socket has taken.
    tls_sent: usize,
    kinds: u16,
    /// Lines of events before the watch are not its business.
    min_gid: u64,
    out: Outbuf,
}

/// The logger thread's own state.
struct Thread {
    state: Arc<State>,
    intake: mpsc::Receiver<NewWatcher>,
    rings: Vec<rtrb::Consumer<Vec<u8>>>,
    watchers: Vec<Watcher>,
    watcher_buf: usize,
}

impl Thread {
    fn run(mut self) {
        while !self.state.stop.load(Ordering::SeqCst) {
            if self.watchers.is_empty() {
                // Nobody watches: sleep until somebody does (or the stop).
                match self.intake.recv_timeout(Duration::from_millis(100)) {
                    Ok(w) => self.register(w),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            while let Ok(w) = self.intake.try_recv() {
                self.register(w);
            }
            self.drain_rings();
            self.write_all();
            self.poll();
        }
        // Graceful stop: watchers are closed (their descriptors dropped),
        // those still on their way too.
        while let Ok(w) = self.intake.try_recv() {
            drop(w);
            self.state.watchers.fetch_sub(1, Ordering::AcqRel);
        }
        let n = self.watchers.len();
        self.watchers.clear();
        self.state.watchers.fetch_sub(n, Ordering::AcqRel);
        self.state.mask.store(0, Ordering::SeqCst);
    }

    fn register(&mut self, w: NewWatcher) {
        let _ = set_nonblocking(&w.fd);
        let mut out = Outbuf::new(self.watcher_buf);
        out.reply(b"OK\r\n");
        self.watchers.push(Watcher {
            fd: w.fd,
            tls: w.tls,
            tls_sent: 0,
            kinds: w.kinds,
            min_gid: self.state.gid.load(Ordering::SeqCst),
            out,
        });
        // The mask before the OK: whatever the client sends after reading
        // it is logged.
        self.update_mask();
        self.write_all();
    }

    fn update_mask(&self) {
        let mask = self.watchers.iter().fold(0, |m, w| m | w.kinds);
        self.state.mask.store(mask, Ordering::SeqCst);
    }

    /// Takes every batch the shards left and hands their lines to the
    /// watchers in gid order (within what arrived by now: a shard's batch
    /// pushed a moment later can still bring an older line).
    fn drain_rings(&mut self) {
        let mut batches = Vec::new();
        for ring in &mut self.rings {
            while let Ok(batch) = ring.pop() {
                batches.push(batch);
            }
        }
        if batches.is_empty() {
            return;
        }
        let mut lines: Vec<(u64, u16, &[u8])> = Vec::new();
        for batch in &batches {
            for (kind, gid, line) in records(batch) {
                if kind & DROPPED != 0 {
                    for w in self.watchers.iter_mut().filter(|w| w.kinds & kind != 0) {
                        w.out.skip(gid);
                    }
                } else {
                    lines.push((gid, kind, line));
                }
            }
        }
        lines.sort_by_key(|&(gid, _, _)| gid);
        for (gid, kind, line) in lines {
            for w in &mut self.watchers {
                if w.kinds & kind == 0 || gid < w.min_gid {
                    continue;
                }
                let counter = match w.out.offer(line) {
                    Offered::Written => &self.state.watcher_sent,
                    Offered::Skipped => &self.state.watcher_skipped,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes what each watcher's socket takes now; drops the ones whose
    /// socket failed.
    fn write_all(&mut self) {
        let before = self.watchers.len();
        self.watchers.retain_mut(Watcher::write);
        self.removed(before);
    }

    fn removed(&mut self, before: usize) {
        let gone = before - self.watchers.len();
        if gone > 0 {
            self.state.watchers.fetch_sub(gone, Ordering::AcqRel);
            self.update_mask();
        }
    }

    /// Waits up to `POLL_MS` for a watcher to be writable again or to send
    /// something (its EOF, mostly); input is thrown away.
    fn poll(&mut self) {
        if self.watchers.is_empty() {
            return;
        }
        let mut fds: Vec<libc::pollfd> = self
            .watchers
            .iter()
            .map(|w| libc::pollfd {
                fd: w.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLRDHUP | if w.owes() { libc::POLLOUT } else { 0 },
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a live array of `fds.len()` pollfd entries.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
        if n <= 0 {
            return;
        }
        let mut dead = vec![false; fds.len()];
        for (i, p) in fds.iter().enumerate() {
            if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                dead[i] = true;
            } else if p.revents & (libc::POLLIN | libc::POLLRDHUP) != 0 {
                dead[i] = !discard_input(p.fd);
            }
        }
        let before = self.watchers.len();
        let mut i = 0;
        self.watchers.retain(|_| {
            i += 1;
            !dead[i - 1]
        });
        self.removed(before);
    }
}

impl Watcher {
    /// Bytes owed to the socket, in plaintext or ciphertext.
    fn owes(&self) -> bool {
        !self.out.is_empty()
            || self
                .tls
                .as_ref()
                .is_some_and(|t| t.outgoing.len() > self.tls_sent)
    }

    /// Sends what the socket takes now; false when the watcher is dead.
    fn write(&mut self) -> bool {
        let Some(tls) = self.tls.as_deref_mut() else {
            while !self.out.is_empty() {
                match send_some(&self.fd, self.out.pending()) {
                    Some(0) => return true,
                    Some(n) => self.out.consume(n),
                    None => return false,
                }
            }
            return true;
        };
        // TLS: a record's worth of lines is encrypted only once the socket
        // has taken the ciphertext before it, so the session holds little.
        loop {
            if tls.outgoing.len() > self.tls_sent {
                match send_some(&self.fd, &tls.outgoing[self.tls_sent..]) {
                    Some(0) => return true,
                    Some(n) => self.tls_sent += n,
                    None => return false,
                }
                continue;
            }
            tls.outgoing.clear();
            self.tls_sent = 0;
            if self.out.is_empty() {
                return true;
            }
            let n = self.out.len().min(16 << 10);
            if tls.encrypt(&self.out.pending()[..n]).is_err() {
                return false;
            }
            self.out.consume(n);
        }
    }
}

/// One nonblocking send: the bytes taken (0: the socket is full), `None`
/// when the peer is gone.
fn send_some(fd: &OwnedFd, bytes: &[u8]) -> Option<usize> {
    // SAFETY: send from a live slice on a descriptor we own.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n >= 0 {
        return Some(n as usize);
    }
    let e = std::io::Error::last_os_error().raw_os_error();
    matches!(e, Some(libc::EAGAIN) | Some(libc::EINTR)).then_some(0)
}

/// Reads and drops what a watcher sent; false at its EOF or an error.
fn discard_input(fd: i32) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a live stack buffer from an open descriptor.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n > 0 {
            continue;
        }
        let e = std::io::Error::last_os_error().raw_os_error();
        return n < 0 && matches!(e, Some(libc::EAGAIN) | Some(libc::EINTR));
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_batch_round_trips_and_is_bounded() {
        let logger = Logger::start(1, 1024).unwrap();
        let mut log = logger.shard_log(0);
        // Keep the thread out of it: take the batch before flushing.
        log.log(EV_FETCHERS, |out, _| out.extend_from_slice(b"one\n"));
        log.log(EV_MUTATIONS, |out, _| out.extend_from_slice(b"two\n"));
        let got: Vec<(u16, Vec<u8>)> = records(&log.batch)
            .map(|(k, _, l)| (k, l.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (EV_FETCHERS, b"one\n".to_vec()),
                (EV_MUTATIONS, b"two\n".to_vec())
            ]
        );
        let line = vec![b'x'; 1000];
        for _ in 0..1000 {
            log.log(EV_FETCHERS, |out, _| out.extend_from_slice(&line));
        }
        assert!(log.batch.len() <= WORKER_BATCH_BYTES);
        assert!(logger.state().worker_dropped.load(Ordering::Relaxed) > 900);
        logger.stop();
    }

    #[test]
    fn the_watcher_limit_is_memcacheds() {
        let logger = Logger::start(1, 1024).unwrap();
        let mut keep = Vec::new();
        for _ in 0..MAX_WATCHERS {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            logger.add_watcher(OwnedFd::from(a), EV_FETCHERS).unwrap();
            keep.push(b);
        }
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(
            logger.add_watcher(OwnedFd::from(a), EV_FETCHERS),
            Err(WatchError::TooMany)
        );
        logger.stop();
        assert_eq!(logger.state().watchers(), 0, "closed at the stop");
    }
}
