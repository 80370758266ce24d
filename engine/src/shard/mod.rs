//! A shard: one pinned thread, its io_uring loop, its connections and its store.
//!
//! ```text
//!  loop turn
//!  ─────────
//!  1. submit queued SQEs and wait (one io_uring_enter)
//!  2. set the store's clock; drain completions and dispatch by token:
//!       accept → new connection, arm multishot receive
//!       recv   → parse as far as the bytes allow; own keys run on the store
//!                inline, other shards' keys become records in a batch
//!       send   → advance, send the rest or the next replies
//!       wake   → another shard left batches for us
//!  3. drain batches from peers: execute their requests, place their replies
//!  4. queue one send per connection with new replies; move batches into the
//!     channels and wake their shards; publish recycled receive buffers
//! ```
//! Everything here is `!Send` and owned by the thread: no locks.

mod admin;
mod auth;
mod binary;
pub mod client;
mod deletes;
mod exec;
mod http;
mod long_get;
pub mod mesh;
mod net;
mod ops;
pub mod order;
mod peer;
mod prefetch;
mod remote;
mod replicate;
mod request;
mod resync;
pub mod route;
pub mod slots;
pub mod stats;
mod warmup;
mod watch;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runtime::{BufRing, Completion, Ring, WakeTarget};
use store::Store;

use crate::config::CLOCK_START;
use crate::membership::view::{Published, View};
use crate::shared::Shared;
use admin::Gather;
use mesh::Mesh;
use net::conn::Wire;
pub use net::udp::Guard as UdpGuard;
use net::{Net, Received};
use peer::Links;
use prefetch::Prefetch;
use slots::Slots;

use ops::*;
pub use ops::{OP_WAKE, OP_WAKE_FAILED};

/// What the main thread hands a shard thread.
pub struct ShardParams {
    pub id: usize,
    pub core: usize,
    pub tcp: Vec<std::os::fd::OwnedFd>,
    /// Per entry of `tcp`: whether it speaks TLS.
    pub tcp_tls: Vec<bool>,
    pub udp: Option<std::os::fd::OwnedFd>,
    /// This shard's listener on the HTTP port, when it is on.
    pub http: Option<std::os::fd::OwnedFd>,
    pub shared: Arc<Shared>,
    pub wake_tx: mpsc::Sender<(usize, WakeTarget)>,
    pub mesh_rx: mpsc::Receiver<Mesh>,
    pub ready_tx: mpsc::Sender<(usize, Result<ShardReady, ShardError>)>,
    /// With `-e`: this shard's region of the memory file, and where its state goes
    /// at a graceful stop.
    pub memory: Option<ShardMemory>,
}

/// A shard's share of the memory file (`-e`, crate::restart).
pub struct ShardMemory {
    pub region: crate::restart::Region,
    pub saved_tx: mpsc::Sender<(usize, std::io::Result<Vec<u8>>)>,
}

/// What a shard reports once it serves, for the start-up log.
#[derive(Debug)]
pub struct ShardReady {
    pub core: usize,
    pub pinned: bool,
    pub memory_bytes: u64,
    pub backing: &'static str,
    pub numa: String,
    pub ring_mode: &'static str,
}

/// Why a shard could not start: one line naming the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("cannot create the io_uring: {0}")]
    Ring(#[from] runtime::RingError),
    #[error(
        "cannot register network.recv_buffers = {count}: the locked-memory limit \
         (ulimit -l = {limit_kib} KiB) is too low; raise it (ulimit -l, or \
         LimitMEMLOCK= in a systemd unit) or lower network.recv_buffers"
    )]
    MemlockTooLow { count: u16, limit_kib: u64 },
    #[error("cannot register network.recv_buffers = {count}: {source}")]
    RecvBuffers { count: u16, source: std::io::Error },
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("cannot set up UDP: {0}")]
    Udp(std::io::Error),
    #[error("cannot arm the listeners: {0}")]
    Listeners(std::io::Error),
}

/// The shard thread's body.
pub fn run(params: ShardParams) {
    let ShardParams {
        id,
        core,
        tcp,
        tcp_tls,
        udp,
        http,
        shared,
        wake_tx,
        mesh_rx,
        ready_tx,
        memory,
    } = params;
    // The HTTP port speaks HTTPS when TLS is on, unless `[http] tls = false`.
    let https = shared.tls.is_some() && shared.config.http.tls;
    let fail = |e: ShardError| {
        let _ = ready_tx.send((id, Err(e)));
    };
    let pinned = shared.config.shards.pin && cpus::pin_current(core);
    let net = &shared.config.network;
    let ring = match Ring::new(shared.config.ring_config()) {
        Ok(r) => r,
        Err(e) => return fail(e.into()),
    };
    let count = net.recv_buffers;
    let size = net.recv_buffer_size.0 as u32;
    let bufs = match BufRing::new(&ring, TCP_GROUP, count, FIRST_RECV_BUFFERS, size) {
        Ok(b) => b,
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
            let limit_kib = runtime::memlock_limit().0 / 1024;
            return fail(ShardError::MemlockTooLow { count, limit_kib });
        }
        Err(source) => return fail(ShardError::RecvBuffers { count, source }),
    };
    let wake = WakeTarget::new(ring.fd());
    if wake_tx.send((id, wake.clone())).is_err() {
        return;
    }
    drop(wake_tx);
    let Ok(mesh) = mesh_rx.recv() else { return };
    let store_config = shared.config.store_config(
        id,
        shared.shards,
        core,
        shared.started_unix,
        shared.cluster.as_ref(),
    );
    let (store, saved_tx) = match memory {
        None => match Store::new(store_config) {
            Ok(s) => (s, None),
            Err(e) => return fail(e.into()),
        },
        Some(ShardMemory { region, saved_tx }) => {
            let r = &region;
            match Store::with_memory_file(
                store_config,
                &r.file,
                r.offset,
                r.len,
                r.saved.as_deref(),
            ) {
                Ok((store, outcome)) => {
                    log_restore(id, outcome);
                    (store, Some(saved_tx))
                }
                Err(e) => return fail(e.into()),
            }
        }
    };
    let udp = match udp {
        Some(fd) => match net::udp::Udp::new(&ring, UDP_GROUP, fd, shared.config.udp_guard()) {
            Ok(u) => Some(u),
            Err(e) => return fail(ShardError::Udp(e)),
        },
        None => None,
    };
    let ready = ShardReady {
        core,
        pinned,
        memory_bytes: shared.config.memory.limit_mb * (1 << 20) / shared.shards as u64,
        backing: store.backing().name(),
        numa: store.numa_binding().to_string(),
        ring_mode: ring.mode().as_str(),
    };
    let mut shard = Shard {
        bufs,
        core: Core::new(
            id,
            shared,
            Net::new(ring, tcp, tcp_tls, http.map(|fd| (fd, https)), udp),
            store,
            mesh,
            wake,
        ),
    };
    if let Err(e) = shard.core.net.arm_listeners() {
        return fail(ShardError::Listeners(e));
    }
    let _ = ready_tx.send((id, Ok(ready)));
    drop(ready_tx);
    shard.run_loop();
    if let Some(tx) = saved_tx {
        let _ = tx.send((id, shard.core.store.save_state()));
    }
}

/// One line per shard on what the warm restart brought back, or why it did not.
fn log_restore(id: usize, outcome: Option<Result<store::Restored, String>>) {
    match outcome {
        Some(Ok(r)) => tracing::info!(
            shard = id,
            items = r.items,
            dropped_expired_or_flushed = r.dropped,
            ms = r.micros as f64 / 1000.0,
            "warm restart: items recovered from the memory file"
        ),
        Some(Err(why)) => tracing::warn!(
            shard = id,
            "warm restart refused, the shard starts empty: {why}"
        ),
        None => {}
    }
}

/// The receive buffers, kept apart from the rest so that a received buffer
/// can be read while everything else is mutated.
struct Shard {
    bufs: BufRing,
    core: Core,
}

/// A shard's state, one field per concern: each type owns its fields, so a
/// method's receiver says what it may touch.
pub(crate) struct Core {
    id: usize,
    shared: Arc<Shared>,
    limits: proto::Limits,
    /// Requests a connection may run per loop turn while more are buffered (-R).
    reqs_per_event: u32,
    /// Ring, listeners, connections, UDP socket.
    net: Net,
    store: Store,
    stats: stats::ShardStats,
    /// The channels to the other shards.
    mesh: Mesh,
    /// This shard's links to the other nodes of the cluster (none for one node).
    links: Links,
    /// The membership view this shard routes with, and the published
    /// version it came from (checked once per turn).
    view: Option<Arc<View>>,
    view_version: u64,
    /// The HTTP port's bearer token, as of this shard's last HTTP request.
    http_token: crate::shared::Current<Option<String>>,
    /// Replies held for their replicas (`replication_ack = "all"`), by key.
    acks: std::collections::HashMap<u64, replicate::Held>,
    next_ack: u64,
    /// Walks of the store for members that came back, the delete log
    /// (resync.rs).
    resync: resync::Resyncs,
    /// Misses read through from a key's previous owner after start (warmup.rs).
    warm: warmup::WarmUp,
    wake: WakeTarget,
    /// `stats` requests waiting for other shards' snapshots.
    gathers: Slots<Gather>,
    /// The keys of the receive being handled (hashes, prefetches). Boxed:
    /// each receive swaps it with the next one's, a pointer and not 2 KiB.
    prefetch: Box<Prefetch>,
    /// Reused scratch space for replies to other shards' requests.
    scratch: Vec<u8>,
    /// This shard's lines for log watchers (crate::logger).
    log: crate::logger::ShardLog,
    /// The descriptor of the connection whose request runs, for log lines
    /// (-1 for a request another shard forwarded, or a UDP one).
    log_cfd: i32,
    life: Life,
}

/// The clock, the background work and the stop of a shard.
struct Life {
    /// Seconds since the server started, as the store sees it.
    now: u32,
    /// The time since the server started, read once at the start of the
    /// turn (`now` comes from it): the re-sync pace's clock.
    elapsed: Duration,
    last_tick: Instant,
    /// The crawler has more to do than one tick's budget (or the index is
    /// growing): run it every turn instead of once a second.
    crawl_busy: bool,
    stopping: bool,
    drained: bool,
}

/// Items the crawler checks once a second, and every turn while it is busy.
const CRAWL_BUDGET_TICK: usize = 4096;
const CRAWL_BUDGET_BUSY: usize = 256;

/// Receive buffers the kernel gets at start (of `network.recv_buffers`): the
/// pool doubles when reading connections take half of it in a turn or one
/// finds none (a paused connection's receives do not count, see
/// [`net::Net::is_reading`]), so a shard with few busy connections keeps
/// ~128 KiB of buffers resident instead of all of them (the kernel cycles
/// through every buffer in the ring).
const FIRST_RECV_BUFFERS: u16 = 32;

/// How long a stopping server waits for clients to take their replies.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

impl Shard {
    fn run_loop(&mut self) {
        let mut completions: Vec<Completion> = Vec::with_capacity(1024);
        let mut prefetch = [Box::new(Prefetch::new()), Box::new(Prefetch::new())];
        let mut stop_started: Option<Instant> = None;
        loop {
            // Forwarded requests and connects in flight have deadlines: wake
            // often enough that a dead peer is noticed within ~10 ms of one.
            let mut timeout = if self.core.life.stopping
                || self.core.life.crawl_busy
                || self.core.links.has_deadlines()
            {
                Duration::from_millis(10)
            } else {
                Duration::from_secs(1)
            };
            // A re-sync walk's next turn: soon, or when its pace has tokens.
            if let Some(wait) = self.core.resync_wait() {
                timeout = timeout.min(wait);
            }
            // Connections that yielded last turn go on now: do not wait.
            let entered = if self.core.net.has_yielded() {
                self.core.net.ring.submit()
            } else {
                self.core.net.ring.submit_and_wait(1, Some(timeout))
            };
            if let Err(e) = entered {
                tracing::error!(shard = self.core.id, "io_uring_enter failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            let yielded = self.core.net.take_yielded();
            self.core.update_clock();
            self.core.check_membership();
            completions.clear();
            self.core.net.ring.drain(&mut completions);
            // Index slots of a receive's keys are prefetched while the
            // completion before it runs; its items, a few requests ahead of
            // each request (see prefetch.rs).
            let n = completions.len();
            for j in 0..=n {
                if j < n {
                    self.scan_keys(&completions[j], &mut prefetch[j % 2]);
                }
                if j >= 1 {
                    self.core.begin_receive(&mut prefetch[(j - 1) % 2]);
                    self.dispatch(&completions[j - 1]);
                }
            }
            self.core.resume_yielded(yielded);
            self.core.drain_mesh();
            self.core.check_links();
            self.core.resync_step();
            self.core.retry_stalled();
            self.core.end_of_turn();
            self.bufs.publish();
            self.core.stats.recv_buffers = self.bufs.active().into();
            if let Some(udp) = self.core.net.udp.as_mut() {
                udp.publish();
            }
            self.core.tick();

            if self.core.shared.stopping.load(Ordering::Relaxed) && !self.core.life.stopping {
                self.core.begin_stop();
                stop_started = Some(Instant::now());
            }
            if let Some(t) = stop_started
                && self.core.stop_progress(t.elapsed() > DRAIN_DEADLINE)
            {
                break;
            }
        }
        tracing::debug!(shard = self.core.id, "shard stopped");
    }

    /// The first prefetch stage for one completion: a receive's keys.
    fn scan_keys(&self, c: &Completion, prefetch: &mut Prefetch) {
        prefetch.clear();
        if c.token().op == OP_RECV
            && c.result > 0
            && let Some(bid) = c.buffer_id()
        {
            let core = &self.core;
            // Binary and HTTP requests are not memcached lines, TLS records
            // are ciphertext: nothing to scan for.
            let not_text = core.net.conns.slot(c.token().slot).is_some_and(|conn| {
                matches!(conn.wire, Wire::Binary | Wire::Http) || conn.tls.is_some()
            });
            if not_text {
                return;
            }
            let input = self.bufs.get(bid, c.result as usize);
            prefetch.scan(input, &core.store, core.id, core.mesh.shards());
        }
    }

    fn dispatch(&mut self, c: &Completion) {
        let t = c.token();
        match t.op {
            OP_RECV => {
                // Asked before the bytes are parsed: parsing them may pause it.
                let reading = self.core.net.is_reading(t);
                if c.result == -libc::ENOBUFS && reading {
                    self.bufs.starved();
                }
                let core = &mut self.core;
                match core.net.on_recv(t, c.result, c.more(), &mut core.stats) {
                    Received::Data(slot) => {
                        let bid = c.buffer_id().expect("data comes in a provided buffer");
                        let tls = core
                            .net
                            .conns
                            .slot_mut(slot)
                            .and_then(|conn| conn.tls.take());
                        match tls {
                            None => core.on_data(slot, self.bufs.get(bid, c.result as usize)),
                            Some(tls) => core.on_tls_data(
                                slot,
                                tls,
                                self.bufs.get_mut(bid, c.result as usize),
                            ),
                        }
                        core.net.mark_dirty(slot);
                    }
                    Received::Nothing(slot) => core.net.mark_dirty(slot),
                    Received::Stale => {}
                }
                if let Some(bid) = c.buffer_id() {
                    if reading {
                        self.bufs.recycle(bid);
                    } else {
                        self.bufs.recycle_surplus(bid);
                    }
                }
            }
            OP_UDP_RECV => self.core.on_udp_recv(c),
            _ => self.core.dispatch(c),
        }
    }
}

impl Core {
    fn new(
        id: usize,
        shared: Arc<Shared>,
        net: Net,
        store: Store,
        mesh: Mesh,
        wake: WakeTarget,
    ) -> Core {
        let limits = shared.config.proto_limits();
        let links = match &shared.cluster {
            Some(plan) => Links::new(
                plan,
                &shared.cluster_addrs,
                shared.tls.clone().filter(|_| shared.config.peer_tls()),
            ),
            None => Links::none(),
        };
        let reqs_per_event = shared.config.network.reqs_per_event;
        let view = shared.membership.as_ref().map(Published::load);
        let view_version = shared.membership.as_ref().map_or(0, Published::version);
        let latency = shared.config.latency_histograms().then(|| {
            Box::new(stats::latency::Latency::new(
                shared.config.http.latency_sample,
            ))
        });
        if latency.is_some() {
            stats::latency::calibrate();
        }
        let http_token = shared.http_token.current();
        let log = shared.logger.shard_log(id);
        let resync = resync::Resyncs::new(shared.cluster.as_ref(), shared.shards);
        let warm = warmup::WarmUp::new(shared.cluster.as_ref());
        let mut core = Core {
            id,
            shared,
            limits,
            reqs_per_event,
            net,
            store,
            stats: stats::ShardStats {
                latency,
                ..Default::default()
            },
            mesh,
            links,
            view,
            view_version,
            http_token,
            acks: std::collections::HashMap::new(),
            next_ack: 0,
            resync,
            warm,
            wake,
            gathers: Slots::default(),
            prefetch: Box::new(Prefetch::new()),
            scratch: Vec::new(),
            log,
            log_cfd: -1,
            life: Life {
                now: CLOCK_START,
                elapsed: Duration::ZERO,
                last_tick: Instant::now(),
                crawl_busy: false,
                stopping: false,
                drained: false,
            },
        };
        core.update_clock();
        core.start_cas_clock();
        core
    }

    /// The store's clock, once per turn: unix time derived from the monotonic
    /// clock since start (a wall-clock step does not expire items early), the
    /// same on every shard; with `-o debug_time`, shifted by `debugtime`.
    fn update_clock(&mut self) {
        self.life.elapsed = self.shared.started.elapsed();
        let mut secs = self.life.elapsed.as_secs();
        if let Some(d) = &self.shared.debug_clock {
            secs = d.seconds(secs);
        }
        self.life.now = CLOCK_START + secs as u32;
        self.store.set_time(self.life.now);
        self.update_warmup();
        // Once a turn: whether the store records evictions for watchers.
        self.store
            .record_evictions(self.log.wants(crate::logger::EV_EVICTIONS));
    }

    fn dispatch(&mut self, c: &Completion) {
        let t = c.token();
        match t.op {
            OP_ACCEPT => {
                let now = self.life.now;
                let (shared, stats) = (&*self.shared, &mut self.stats);
                self.net
                    .on_accept(t.slot, c.result, c.more(), shared, stats, now);
            }
            OP_SEND => self.net.on_send(t, c.result, &mut self.stats),
            OP_WAKE => self.wake.clear(),
            OP_WAKE_FAILED => self.mesh.wake_failed(t.slot as usize, c.result),
            OP_UDP_SEND => {
                if let Some(udp) = self.net.udp.as_mut() {
                    udp.on_send(t.slot, t.generation);
                }
            }
            OP_PEER_CONNECT | OP_PEER_SEND | OP_PEER_RECV => self.on_peer_completion(c),
            OP_CANCEL => {
                // A cancel that found nothing to cancel: the operation had
                // already completed. Nothing to do.
            }
            other => debug_assert!(false, "unknown completion op {other}"),
        }
    }

    /// A receive is about to be handled: `keys` are its requests' keys, whose
    /// index slots were prefetched one receive ago. Takes them over (leaving
    /// the caller an empty list) and prefetches the first items.
    fn begin_receive(&mut self, keys: &mut Box<Prefetch>) {
        std::mem::swap(&mut self.prefetch, keys);
        keys.clear();
        self.prefetch
            .items_until(&self.store, prefetch::ITEMS_AHEAD);
    }

    /// A datagram (or the end of the multishot receive) on the UDP socket.
    fn on_udp_recv(&mut self, c: &Completion) {
        let Some(udp) = self.net.udp.as_mut() else {
            return;
        };
        if let Some(bid) = c.buffer_id() {
            // Copy out: the datagram is small and the UDP pool must be recycled.
            let buffer = udp.buffer(bid, c.result.max(0) as usize).to_vec();
            udp.recycle(bid);
            if let Some(d) = udp.accept_datagram(&buffer) {
                self.on_datagram(d.slot, d.generation, &buffer[d.body]);
            }
        }
        if let Some(udp) = self.net.udp.as_mut() {
            udp.on_recv_done(c.result, c.more());
        }
    }

    /// Once a second (or sooner when stopping): background work that needs no
    /// client to trigger it.
    fn tick(&mut self) {
        if self.life.last_tick.elapsed() < Duration::from_secs(1) {
            if self.life.crawl_busy {
                self.crawl(CRAWL_BUDGET_BUSY);
            }
            return;
        }
        self.life.last_tick = Instant::now();
        self.crawl(CRAWL_BUDGET_TICK);
        self.net.tick();
        self.net.release_idle_buffers(self.life.now);
        let timeout = self.shared.config.server.idle_timeout;
        // memcached's idle kicker looks at TCP connections only.
        if timeout > 0 && self.shared.unix_path.is_none() {
            let (shared, stats) = (&*self.shared, &mut self.stats);
            self.net.kick_idle(self.life.now, timeout, shared, stats);
        }
    }

    /// The connections that yielded last turn (-R) run their next requests;
    /// whatever arrived for them meanwhile waited behind their backlog.
    fn resume_yielded(&mut self, yielded: Vec<u32>) {
        for slot in yielded {
            if self.net.unyield(slot) {
                self.run_backlog(slot);
                self.net.mark_dirty(slot);
            }
        }
    }

    /// A turn's worth of a yielded connection's input. It is parsed from an
    /// offset into `backlog`, not from `rbuf`: taking a few requests off the
    /// front of a megabyte each turn would move the rest down every time.
    fn run_backlog(&mut self, slot: u32) {
        let Some(conn) = self.net.conns.slot_mut(slot) else {
            return;
        };
        let mut backlog = std::mem::take(&mut conn.backlog);
        let mut done = conn.backlog_done;
        let off = std::mem::take(&mut conn.rbuf_off);
        // Bytes that arrived while it waited come after the backlog.
        if done == backlog.len() {
            backlog = std::mem::take(&mut conn.rbuf);
            done = off;
        } else {
            backlog.extend_from_slice(&conn.rbuf[off..]);
            conn.rbuf.clear();
        }
        done += self.process(slot, &backlog[done..]);
        let Some(conn) = self.net.conns.slot_mut(slot) else {
            return;
        };
        if conn.pause == net::conn::Pause::Yield {
            conn.backlog = backlog;
            conn.backlog_done = done;
            return;
        }
        // Through the backlog, or paused for another reason: the rest (an
        // unfinished request at most, unless paused) is ordinary input again.
        conn.backlog_done = 0;
        if !conn.closing {
            if conn.rbuf.is_empty() && conn.pause != net::conn::Pause::No {
                // Paused for another reason: the rest is resumed from its offset.
                conn.rbuf = backlog;
                conn.rbuf_off = done;
            } else {
                conn.rbuf.extend_from_slice(&backlog[done..]);
            }
        }
        if conn.eof {
            conn.closing = true;
        }
    }

    /// One step of the expired-item crawler (and of the index's incremental
    /// growth, which the crawler also advances); the regions of a THP arena carved
    /// since the last step go to the collapse thread.
    fn crawl(&mut self, budget: usize) {
        let report = if self.shared.config.memory.lru_crawler {
            self.store.crawl(budget)
        } else {
            self.store.maintain_index(budget)
        };
        if let Some(collapse) = &self.shared.collapse {
            while let Some(region) = self.store.take_carved() {
                // A send fails only once the thread is gone, at exit.
                let _ = collapse.send(region);
            }
        }
        self.life.crawl_busy = report.index_migrating || (report.reclaimed > 0 && !report.wrapped);
    }

    /// Stop accepting; connections close once they have nothing owed.
    fn begin_stop(&mut self) {
        self.life.stopping = true;
        self.net.begin_stop();
        let slots: Vec<u32> = self.net.conns.slots().collect();
        for slot in slots {
            self.net.maybe_close(slot, &self.shared, &mut self.stats);
        }
    }

    /// Called every turn while stopping; returns true when the thread may exit.
    fn stop_progress(&mut self, deadline_passed: bool) -> bool {
        if deadline_passed {
            // Clients that would not take their replies: close them now.
            let slots: Vec<u32> = self.net.conns.slots().collect();
            for slot in slots {
                self.net.force_close(slot, &self.shared, &mut self.stats);
            }
        }
        if !self.life.drained && (self.net.conns.is_empty() || deadline_passed) {
            self.life.drained = true;
            self.shared.drained.fetch_add(1, Ordering::SeqCst);
        }
        // Keep answering peers until every shard has drained: their clients
        // may still wait on our keys.
        let all_drained = self.shared.drained.load(Ordering::SeqCst) >= self.shared.shards;
        all_drained && self.net.conns.is_empty() && !self.mesh.has_outgoing()
    }

    /// End of a loop turn: hand every connection's ready replies to the kernel
    /// and move batches to the other shards.
    fn end_of_turn(&mut self) {
        let max_output = self.shared.config.network.max_pending_output.0 as usize;
        let dirty = self.net.take_dirty();
        for &slot in &dirty {
            // A connection read again may answer at once: flush again to
            // send that too, or it would wait for the next event on the ring.
            let mut rounds = 0;
            while self.net.flush_conn(slot, max_output) {
                self.resume_input(slot);
                rounds += 1;
                if rounds == 4 {
                    self.net.mark_dirty(slot);
                    break;
                }
            }
            self.net.after_flush(slot, &self.shared, &mut self.stats);
        }
        self.net.restore_dirty(dirty);
        // Log lines go before the replies to other shards: a line is with
        // the logger before any client can have seen what it logs, so lines
        // reach watchers in the order of the events they log.
        if self.net.has_conn_events() {
            self.log_conn_events();
        }
        if self.log.wants(crate::logger::EV_EVICTIONS) {
            self.log_evictions();
        }
        self.log.flush();
        self.net.flush_udp(&mut self.stats);
        self.mesh.flush(&mut self.net.ring);
        self.links.flush(&mut self.net.ring);
    }
}
