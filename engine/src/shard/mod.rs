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
pub mod conn;
mod exec;
mod input;
mod io;
pub mod mesh;
pub mod order;
mod remote;
pub mod route;
pub mod stats;
mod udp;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::server::Shared;
use runtime::{BufRing, Completion, Ring, RingConfig, Token, WakeTarget, opcode, types};
use store::Store;

use conn::Conns;
use mesh::Mesh;

pub const OP_ACCEPT: u8 = 1;
pub const OP_RECV: u8 = 2;
pub const OP_SEND: u8 = 3;
pub const OP_WAKE: u8 = 4;
pub const OP_WAKE_FAILED: u8 = 5;
pub const OP_CANCEL: u8 = 6;
pub const OP_UDP_RECV: u8 = 7;
pub const OP_UDP_SEND: u8 = 8;

/// Buffer groups of a shard's ring.
const TCP_GROUP: u16 = 0;
const UDP_GROUP: u16 = 1;

/// What the main thread hands a shard thread.
pub struct ShardParams {
    pub id: usize,
    pub core: usize,
    pub tcp: Vec<OwnedFd>,
    pub udp: Option<OwnedFd>,
    pub shared: Arc<Shared>,
    pub wake_tx: mpsc::Sender<(usize, WakeTarget)>,
    pub mesh_rx: mpsc::Receiver<Mesh>,
    pub ready_tx: mpsc::Sender<(usize, Result<ShardReady, String>)>,
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

/// The shard thread's body.
pub fn run(params: ShardParams) {
    let ShardParams {
        id,
        core,
        tcp,
        udp,
        shared,
        wake_tx,
        mesh_rx,
        ready_tx,
    } = params;
    let fail = |e: String| {
        let _ = ready_tx.send((id, Err(e)));
    };
    let pinned = shared.config.shards.pin && cpus::pin_current(core);
    let net = &shared.config.network;
    let ring = match Ring::new(RingConfig {
        sq_entries: net.ring_entries,
        cq_entries: net.ring_entries * 8,
    }) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let bufs = match BufRing::new(
        &ring,
        TCP_GROUP,
        net.recv_buffers,
        net.recv_buffer_size.0 as u32,
    ) {
        Ok(b) => b,
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
            let limit_kib = runtime::memlock_limit().0 / 1024;
            return fail(format!(
                "cannot register network.recv_buffers = {}: the locked-memory limit \
                 (ulimit -l = {limit_kib} KiB) is too low; raise it (ulimit -l, or \
                 LimitMEMLOCK= in a systemd unit) or lower network.recv_buffers",
                net.recv_buffers
            ));
        }
        Err(e) => {
            return fail(format!(
                "cannot register network.recv_buffers = {}: {e}",
                net.recv_buffers
            ));
        }
    };
    let wake = WakeTarget::new(ring.fd());
    if wake_tx.send((id, wake.clone())).is_err() {
        return;
    }
    drop(wake_tx);
    let Ok(mesh) = mesh_rx.recv() else { return };
    let store = match Store::new(exec::store_config(&shared, id, core)) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let udp = match udp {
        Some(fd) => match udp::Udp::new(&ring, UDP_GROUP, fd) {
            Ok(u) => Some(u),
            Err(e) => return fail(format!("cannot set up UDP: {e}")),
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
        core: Core::new(id, ring, shared, tcp, udp, store, mesh, wake),
    };
    if let Err(e) = shard.core.arm_listeners() {
        return fail(format!("cannot arm the listeners: {e}"));
    }
    let _ = ready_tx.send((id, Ok(ready)));
    drop(ready_tx);
    shard.run_loop();
}

/// The receive buffers, kept apart from the rest so that a received buffer
/// can be read while everything else is mutated.
struct Shard {
    bufs: BufRing,
    core: Core,
}

pub(crate) struct Core {
    id: usize,
    ring: Ring,
    shared: Arc<Shared>,
    listeners: Vec<OwnedFd>,
    accept_armed: Vec<bool>,
    /// When accepting failed for lack of file descriptors: retry at the next tick.
    accept_backoff: bool,
    udp: Option<udp::Udp>,
    conns: Conns,
    store: Store,
    mesh: Mesh,
    wake: WakeTarget,
    stats: stats::ShardStats,
    gathers: stats::Gathers,
    limits: proto::Limits,
    /// Connections with replies to send at the end of this turn.
    dirty: Vec<u32>,
    /// Connections paused because a channel to another shard was full.
    stalled: Vec<u32>,
    /// Reused scratch space for replies to other shards' requests.
    scratch: Vec<u8>,
    /// Keys of the receive being handled, for item prefetches, and how many
    /// of them have been prefetched.
    prefetch: input::Prefetch,
    prefetched: usize,
    /// Seconds since the server started, as the store sees it.
    now: u32,
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

/// The store's clock at start-up, in seconds. As memcached's `current_time`,
/// it starts past 0: time 1 means "already expired", and an immediate
/// `flush_all` marks everything up to the second before now, so a clock at 0
/// would make both lie in the future during the first second of uptime.
pub(super) const CLOCK_START: u32 = 2;

/// How long a stopping server waits for clients to take their replies.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

impl Shard {
    fn run_loop(&mut self) {
        let mut completions: Vec<Completion> = Vec::with_capacity(1024);
        let mut prefetch = [input::Prefetch::new(), input::Prefetch::new()];
        let mut stop_started: Option<Instant> = None;
        loop {
            let timeout = if self.core.stopping || self.core.store_has_background_work() {
                Duration::from_millis(10)
            } else {
                Duration::from_secs(1)
            };
            if let Err(e) = self.core.ring.submit_and_wait(1, Some(timeout)) {
                tracing::error!(shard = self.core.id, "io_uring_enter failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            self.core.update_clock();
            completions.clear();
            self.core.ring.drain(&mut completions);
            // Index slots of a receive's keys are prefetched while the
            // completion before it runs; its items, a few requests ahead of
            // each request (see input::Prefetch).
            let n = completions.len();
            for j in 0..=n {
                if j < n {
                    self.prefetch_index(&completions[j], &mut prefetch[j % 2]);
                }
                if j >= 1 {
                    self.core.begin_receive(&mut prefetch[(j - 1) % 2]);
                    self.dispatch(&completions[j - 1]);
                }
            }
            self.core.drain_mesh();
            self.core.retry_stalled();
            self.core.end_of_turn();
            self.bufs.publish();
            self.core.tick();

            if self.core.shared.stopping.load(Ordering::Relaxed) && !self.core.stopping {
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
    fn prefetch_index(&self, c: &Completion, prefetch: &mut input::Prefetch) {
        prefetch.clear();
        if c.token().op == OP_RECV
            && c.result > 0
            && let Some(bid) = c.buffer_id()
        {
            self.core
                .prefetch_index(self.bufs.get(bid, c.result as usize), prefetch);
        }
    }

    fn dispatch(&mut self, c: &Completion) {
        let t = c.token();
        match t.op {
            OP_RECV => {
                let data = c
                    .buffer_id()
                    .map(|bid| (bid, self.bufs.get(bid, c.result.max(0) as usize)));
                match data {
                    Some((bid, bytes)) => {
                        self.core.on_recv(t, c.result, c.more(), bytes);
                        self.bufs.recycle(bid);
                    }
                    None => self.core.on_recv(t, c.result, c.more(), &[]),
                }
            }
            OP_UDP_RECV => {
                if let Some(bid) = c.buffer_id() {
                    let group_bufs = self
                        .core
                        .udp
                        .as_ref()
                        .map(|u| u.buffer(bid, c.result.max(0) as usize));
                    if let Some(datagram) = group_bufs {
                        // Copy out: the datagram is small and the UDP pool must be recycled.
                        let datagram = datagram.to_vec();
                        self.core.on_udp_datagram(&datagram);
                    }
                    if let Some(u) = self.core.udp.as_mut() {
                        u.recycle(bid);
                    }
                }
                self.core.on_udp_recv_done(c.result, c.more());
            }
            _ => self.core.dispatch(c),
        }
    }
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: usize,
        ring: Ring,
        shared: Arc<Shared>,
        listeners: Vec<OwnedFd>,
        udp: Option<udp::Udp>,
        store: Store,
        mesh: Mesh,
        wake: WakeTarget,
    ) -> Core {
        let l = &shared.config.limits;
        let limits = proto::Limits {
            max_key_len: l.max_key_length,
            max_item_size: l.max_item_size.0 as usize,
            max_line_len: l.max_line_length,
            max_get_line_len: l.max_get_line_length.0 as usize,
            ..proto::Limits::default()
        };
        let accept_armed = vec![false; listeners.len()];
        let mut core = Core {
            id,
            ring,
            shared,
            listeners,
            accept_armed,
            accept_backoff: false,
            udp,
            conns: Conns::default(),
            store,
            mesh,
            wake,
            stats: stats::ShardStats::default(),
            gathers: stats::Gathers::default(),
            limits,
            dirty: Vec::new(),
            stalled: Vec::new(),
            scratch: Vec::new(),
            prefetch: input::Prefetch::new(),
            prefetched: 0,
            now: CLOCK_START,
            last_tick: Instant::now(),
            crawl_busy: false,
            stopping: false,
            drained: false,
        };
        core.update_clock();
        core
    }

    /// The store's clock, once per turn: unix time derived from the monotonic
    /// clock since start (a wall-clock step does not expire items early), the
    /// same on every shard.
    fn update_clock(&mut self) {
        let now = CLOCK_START + self.shared.started.elapsed().as_secs() as u32;
        if now != self.now {
            self.now = now;
        }
        self.store.set_time(self.now);
    }

    fn dispatch(&mut self, c: &Completion) {
        let t = c.token();
        match t.op {
            OP_ACCEPT => self.on_accept(t.slot, c.result, c.more()),
            OP_SEND => self.on_send(t, c.result),
            OP_WAKE => self.wake.clear(),
            OP_WAKE_FAILED => self.mesh.wake_failed(t.slot as usize, c.result),
            OP_UDP_SEND => self.on_udp_send(t, c.result),
            OP_CANCEL => {
                // A cancel that found nothing to cancel: the operation had
                // already completed. Nothing to do.
            }
            other => debug_assert!(false, "unknown completion op {other}"),
        }
    }

    /// Once a second (or sooner when stopping): background work that needs no
    /// client to trigger it.
    fn tick(&mut self) {
        if self.last_tick.elapsed() < Duration::from_secs(1) {
            if self.crawl_busy {
                self.crawl(CRAWL_BUDGET_BUSY);
            }
            return;
        }
        self.last_tick = Instant::now();
        self.crawl(CRAWL_BUDGET_TICK);
        if self.accept_backoff && !self.stopping {
            self.accept_backoff = false;
            let _ = self.arm_listeners();
        }
    }

    /// One step of the expired-item crawler (and of the index's incremental
    /// growth, which the crawler also advances).
    fn crawl(&mut self, budget: usize) {
        let report = self.store.crawl(budget);
        self.crawl_busy = report.index_migrating || (report.reclaimed > 0 && !report.wrapped);
    }

    fn store_has_background_work(&self) -> bool {
        self.crawl_busy
    }

    /// Stop accepting; connections close once they have nothing owed.
    fn begin_stop(&mut self) {
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
            }
            self.maybe_close(slot);
        }
        if let Some(u) = self.udp.as_mut() {
            u.stop(&mut self.ring);
        }
    }

    /// Called every turn while stopping; returns true when the thread may exit.
    fn stop_progress(&mut self, deadline_passed: bool) -> bool {
        if deadline_passed {
            // Clients that would not take their replies: close them now.
            let slots: Vec<u32> = self.conns.slots().collect();
            for slot in slots {
                self.force_close(slot);
            }
        }
        if !self.drained && (self.conns.is_empty() || deadline_passed) {
            self.drained = true;
            self.shared.drained.fetch_add(1, Ordering::SeqCst);
        }
        // Keep answering peers until every shard has drained: their clients
        // may still wait on our keys.
        let all_drained = self.shared.drained.load(Ordering::SeqCst) >= self.shared.shards;
        all_drained && self.conns.is_empty() && !self.mesh.has_outgoing()
    }

    /// End of a loop turn: hand every connection's ready replies to the kernel
    /// and move batches to the other shards.
    fn end_of_turn(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            self.flush_conn(slot);
        }
        self.dirty = dirty;
        self.dirty.clear();
        if let Some(u) = self.udp.as_mut() {
            u.flush(&mut self.ring);
        }
        self.mesh.flush(&mut self.ring);
    }
}

/// Builds the multishot accept for listener `i`.
fn accept_entry(fd: &OwnedFd, i: usize) -> runtime::squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(fd.as_raw_fd()))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(Token::new(OP_ACCEPT, i as u32, 0).to_user_data())
}
