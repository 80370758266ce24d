//! One client thread: a pinned io_uring loop over its connections.
//!
//! Each loop turn: flush what was encoded (one send per connection), one
//! `io_uring_enter` that submits and waits, dispatch the completions
//! (multishot receives into the provided buffer ring, send completions),
//! then issue new requests: closed loop tops every connection back up to its
//! depth, open loop takes every request that has fallen due on the schedule.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use runtime::{BufRing, Completion, Ring, RingConfig, Token};

use super::ctx::{Ctx, Loss, Pending, Phase};
use super::placement::{Placement, target_of};
use super::plan::Plan;
use super::report::{Interval, Report};
use super::transport::{CANCEL, RECV, SEND, Transport};
use crate::cpu::thread_cpu_time;
use crate::schedule::Schedule;
use crate::wire::{Protocol, encode};
use crate::workload::{Generator, OpKind};

const BUF_GROUP: u16 = 0;
const BUF_COUNT: u16 = 2048;
const BUF_SIZE: u32 = 8192;
/// Longest wait in one turn, so deadlines are checked even when idle.
const MAX_WAIT: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("io_uring: {0}")]
    Ring(#[from] runtime::RingError),
    #[error("connecting to {0}: {1}")]
    Connect(std::net::SocketAddr, io::Error),
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("every connection failed")]
    AllConnectionsFailed,
    #[error("prefill made no progress for 10 s")]
    PrefillStalled,
    #[error("the collector went away")]
    Collector,
}

pub struct Worker<T: Transport> {
    tid: usize,
    plan: Plan,
    // Drop order: connections (fds) first, then buffers, then the ring.
    conns: Vec<T>,
    alive: Vec<bool>,
    armed: Vec<bool>,
    bufs: BufRing,
    ring: Ring,
    ctx: Ctx,
    generator: Generator,
    keys: Vec<u64>,
    /// With placement: an operation drawn into `keys` that waits for room on
    /// a connection to its key's owner (the requests behind it wait too).
    parked: Option<(OpKind, usize)>,
    placement: Placement,
    scratch: encode::Scratch,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    touched: Vec<u32>,
    completions: Vec<Completion>,
    base: Instant,
    /// After the run: received data is dropped, not parsed.
    discard: bool,
}

impl<T: Transport> Worker<T> {
    pub fn new(
        tid: usize,
        plan: Plan,
        connect: impl Fn(SocketAddr) -> io::Result<T>,
    ) -> Result<Self, WorkerError> {
        let ring = Ring::new(RingConfig {
            sq_entries: 1024,
            cq_entries: 16384,
        })?;
        let bufs = BufRing::new(&ring, BUF_GROUP, BUF_COUNT, BUF_COUNT, BUF_SIZE)?;
        let n = plan.conns[tid];
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let target = plan.targets[target_of(i, plan.targets.len())];
            conns.push(connect(target).map_err(|e| WorkerError::Connect(target, e))?);
        }
        let placement = Placement::new(
            plan.ring.clone(),
            plan.targets.len(),
            n,
            plan.workload.key_size,
        );
        let ctx = Ctx::new(plan.protocol, plan.workload.verify);
        let generator = Generator::new(&plan.workload, tid as u64);
        let mut w = Worker {
            tid,
            conns,
            alive: vec![true; n],
            armed: vec![false; n],
            bufs,
            ring,
            ctx,
            generator,
            keys: Vec::with_capacity(plan.workload.mget),
            parked: None,
            placement,
            scratch: encode::Scratch::default(),
            dirty: Vec::with_capacity(n),
            is_dirty: vec![false; n],
            touched: (0..n as u32).collect(),
            completions: Vec::with_capacity(4096),
            base: Instant::now(),
            discard: false,
            plan,
        };
        for i in 0..n {
            w.arm_recv(i)?;
        }
        Ok(w)
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn arm_recv(&mut self, i: usize) -> io::Result<()> {
        self.armed[i] = true;
        let token = Token::new(RECV, i as u32, 0);
        // SAFETY: a multishot receive writes only into the provided buffers,
        // which the BufRing owns and which outlive the ring's operations.
        unsafe {
            self.ring
                .queue_recv_multi(self.conns[i].fd(), BUF_GROUP, token)
        }
    }

    fn mark_dirty(&mut self, i: usize) {
        if !self.is_dirty[i] {
            self.is_dirty[i] = true;
            self.dirty.push(i as u32);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.discard {
            self.dirty.clear();
            return Ok(());
        }
        for k in 0..self.dirty.len() {
            let i = self.dirty[k] as usize;
            self.is_dirty[i] = false;
            if self.alive[i] {
                self.conns[i].flush(&mut self.ring, i as u32)?;
            }
        }
        self.dirty.clear();
        Ok(())
    }

    fn break_conn(&mut self, i: usize) {
        if !self.alive[i] {
            return;
        }
        self.alive[i] = false;
        self.conns[i].fail_all(&mut self.ctx, Loss::Connection);
        let _ = self
            .ring
            .queue_cancel_fd(self.conns[i].fd(), Token::op(CANCEL));
    }

    /// One loop turn: flush, submit and wait, dispatch. Returns the time.
    fn turn(&mut self, timeout: Duration) -> io::Result<u64> {
        self.flush()?;
        // Spinning: never sleep in the kernel, so a reply is seen without a
        // wake-up (an idle core's wake-up costs tens of µs, more in a VM).
        let wait = if self.plan.spin && !self.discard {
            Duration::ZERO
        } else {
            timeout.min(MAX_WAIT)
        };
        self.ring.submit_and_wait(1, Some(wait))?;
        self.completions.clear();
        self.ring.drain(&mut self.completions);
        let now = self.now();
        for k in 0..self.completions.len() {
            let c = self.completions[k];
            self.dispatch(c, now)?;
        }
        self.bufs.publish();
        if self.plan.protocol == Protocol::Udp {
            for i in 0..self.conns.len() {
                self.conns[i].expire(now, self.plan.udp_timeout_ns, &mut self.ctx);
            }
        }
        Ok(now)
    }

    fn dispatch(&mut self, c: Completion, now: u64) -> io::Result<()> {
        let t = c.token();
        let i = t.slot as usize;
        match t.op {
            RECV => {
                if c.result > 0 {
                    let bid = c.buffer_id().expect("multishot receive selects a buffer");
                    if !self.discard && self.alive[i] {
                        let data = self.bufs.get(bid, c.result as usize);
                        if self.conns[i].on_data(data, &mut self.ctx, now).is_err() {
                            self.break_conn(i);
                        }
                        self.touched.push(i as u32);
                    }
                    self.bufs.recycle(bid);
                } else if c.result == -libc::ENOBUFS {
                    // The pool ran dry this turn; re-armed below once
                    // recycled buffers are published.
                } else if c.result == 0 && self.plan.protocol == Protocol::Udp {
                    // An empty datagram.
                } else if c.result == -libc::ECONNREFUSED && self.plan.protocol == Protocol::Udp {
                    // ICMP for an earlier datagram; its request will time out.
                } else if c.result <= 0 && c.result != -libc::ECANCELED {
                    // EOF or an error: the server closed or reset us.
                    self.break_conn(i);
                }
                if !c.more() {
                    self.armed[i] = false;
                    if self.alive[i] && !self.discard {
                        self.bufs.publish();
                        self.arm_recv(i)?;
                    }
                }
            }
            // Shutting down: a send completion is final, never continued.
            SEND if self.discard => {
                let _ = self.conns[i].on_send(-libc::ECANCELED, &mut self.ring, i as u32);
            }
            SEND => match self.conns[i].on_send(c.result, &mut self.ring, i as u32) {
                Ok(true) => self.mark_dirty(i),
                Ok(false) => {}
                Err(_) => self.break_conn(i),
            },
            _ => {}
        }
        Ok(())
    }

    /// Encodes the next request on connection `i`.
    fn issue(&mut self, i: usize, intended: u64, phase: Phase, now: u64) {
        let op = self.generator.next(&mut self.keys);
        self.send(i, op, intended, phase, now);
    }

    /// Placement: the next operation (the parked one first) and a connection
    /// with room under `depth` to its key's owner; None, the operation parked,
    /// when every connection to that owner is full.
    fn place_next(&mut self, depth: usize) -> Option<(usize, (OpKind, usize))> {
        let op = match self.parked.take() {
            Some(op) => op,
            None => self.generator.next(&mut self.keys),
        };
        let node = self.placement.owner(self.keys[0]);
        let (alive, conns) = (&self.alive, &self.conns);
        match self
            .placement
            .pick(node, |i| alive[i] && conns[i].outstanding() < depth)
        {
            Some(i) => Some((i, op)),
            None => {
                self.parked = Some(op);
                None
            }
        }
    }

    /// Encodes the operation drawn into `self.keys` on connection `i`.
    fn send(&mut self, i: usize, op: (OpKind, usize), intended: u64, phase: Phase, now: u64) {
        let protocol = self.plan.protocol;
        let key_size = self.generator.key_size();
        let (kind, len) = op;
        let conn = &mut self.conns[i];
        let buf = conn.begin();
        let width = match kind {
            OpKind::Get => {
                encode::get(buf, protocol, &self.keys, key_size, &mut self.scratch);
                self.keys.len() as u16
            }
            OpKind::Set => {
                encode::set(
                    buf,
                    protocol,
                    self.keys[0],
                    len,
                    &mut self.generator,
                    &mut self.scratch,
                );
                1
            }
        };
        conn.commit(
            Pending {
                kind,
                width,
                intended,
                phase,
            },
            &mut self.ctx,
            now,
        );
        self.mark_dirty(i);
    }

    fn outstanding(&self) -> usize {
        self.conns.iter().map(Transport::outstanding).sum()
    }

    fn check_alive(&self) -> Result<(), WorkerError> {
        if self.alive.iter().any(|&a| a) {
            Ok(())
        } else {
            Err(WorkerError::AllConnectionsFailed)
        }
    }

    /// Sets this thread's share of the key space (the keys at positions tid,
    /// tid+threads, ... of the generator's key space).
    pub fn prefill(&mut self) -> Result<(), WorkerError> {
        let step = self.plan.threads as u64;
        let mut next = self.tid as u64;
        let space = self.generator.key_space().clone();
        let keys = space.len();
        let depth = self.plan.depth.max(8);
        let protocol = self.plan.protocol;
        let mut last_progress = Instant::now();
        let mut replies = 0;
        loop {
            let now = self.now();
            if self.placement.is_active() {
                while next < keys {
                    let index = space.index(next);
                    let node = self.placement.owner(index);
                    let (alive, conns) = (&self.alive, &self.conns);
                    let Some(i) = self
                        .placement
                        .pick(node, |i| alive[i] && conns[i].outstanding() < depth)
                    else {
                        break;
                    };
                    self.prefill_one(i, index, protocol, now);
                    next += step;
                }
            } else {
                for i in 0..self.conns.len() {
                    while self.alive[i] && next < keys && self.conns[i].outstanding() < depth {
                        self.prefill_one(i, space.index(next), protocol, now);
                        next += step;
                    }
                }
            }
            if next >= keys && self.outstanding() == 0 {
                return Ok(());
            }
            self.check_alive()?;
            self.turn(MAX_WAIT)?;
            let r = self.ctx.counters[Phase::Prefill as usize].replies;
            if r != replies {
                replies = r;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > Duration::from_secs(10) {
                return Err(WorkerError::PrefillStalled);
            }
        }
    }

    /// Encodes the prefill set of key `index` on connection `i`.
    fn prefill_one(&mut self, i: usize, index: u64, protocol: Protocol, now: u64) {
        let len = self.generator.value_len();
        let conn = &mut self.conns[i];
        encode::set(
            conn.begin(),
            protocol,
            index,
            len,
            &mut self.generator,
            &mut self.scratch,
        );
        let p = Pending {
            kind: OpKind::Set,
            width: 1,
            intended: now,
            phase: Phase::Prefill,
        };
        conn.commit(p, &mut self.ctx, now);
        self.mark_dirty(i);
    }

    fn report(&mut self, tx: &Sender<Report>, index: usize) -> Result<(), WorkerError> {
        let interval = Interval {
            thread: self.tid,
            index,
            counters: std::mem::take(&mut self.ctx.counters),
            warmup: std::mem::take(&mut self.ctx.warmup),
            measured: std::mem::take(&mut self.ctx.measured),
            replies_any: std::mem::take(&mut self.ctx.replies_any),
            cpu_ns: thread_cpu_time().as_nanos() as u64,
        };
        tx.send(Report::Interval(Box::new(interval)))
            .map_err(|_| WorkerError::Collector)
    }

    /// The measured run, from `epoch`: warm-up, window, drain. Returns the
    /// open-loop backlog (requests due in the window but never sent).
    pub fn run(&mut self, epoch: Instant, tx: &Sender<Report>) -> Result<u64, WorkerError> {
        self.base = epoch;
        let ticks = self.plan.ticks();
        let warm_end = self.plan.warmup_ns;
        let end = self.plan.measure_end();
        let depth = self.plan.depth;
        let n = self.conns.len();
        let phase_at = |t: u64| {
            if t < warm_end {
                Phase::Warmup
            } else {
                Phase::Measured
            }
        };
        let mut schedule = self.plan.rate_per_thread.map(|rate| {
            // Threads interleave their schedules instead of firing together.
            Schedule::new(0, rate, self.tid as f64 / self.plan.threads as f64)
        });
        let mut rr = 0usize;
        let mut tick = 0usize;
        self.touched = (0..n as u32).collect();
        let mut now = self.now();
        loop {
            match &mut schedule {
                None if self.placement.is_active() => {
                    if now < end {
                        while let Some((i, op)) = self.place_next(depth) {
                            self.send(i, op, now, phase_at(now), now);
                        }
                    }
                }
                None => {
                    if now < end {
                        for k in 0..self.touched.len() {
                            let i = self.touched[k] as usize;
                            while self.alive[i] && self.conns[i].outstanding() < depth {
                                self.issue(i, now, phase_at(now), now);
                            }
                        }
                    }
                }
                // Open loop: everything due before the window's end is sent,
                // late if this thread was not running when it fell due (its
                // latency counts from the intended time either way).
                Some(s) => {
                    'due: while s.next_due() <= now && s.next_due() < end {
                        if self.placement.is_active() {
                            let Some((i, op)) = self.place_next(depth) else {
                                break 'due;
                            };
                            let due = s.take(now).expect("checked due");
                            self.send(i, op, due, phase_at(due), now);
                            continue;
                        }
                        // Round-robin over connections with room; when all
                        // are at depth the request waits, and its latency
                        // keeps counting from its intended time.
                        let mut tries = 0;
                        while !(self.alive[rr] && self.conns[rr].outstanding() < depth) {
                            rr = (rr + 1) % n;
                            tries += 1;
                            if tries == n {
                                break 'due;
                            }
                        }
                        let due = s.take(now).expect("checked due");
                        self.issue(rr, due, phase_at(due), now);
                        rr = (rr + 1) % n;
                    }
                }
            }
            self.touched.clear();
            while tick < ticks.len() && now >= ticks[tick].0 {
                self.report(tx, tick)?;
                tick += 1;
            }
            // Past the window's end, an open loop still owes what fell due
            // in it (and waits for replies to make room), within the drain time.
            let owed = schedule.as_ref().is_some_and(|s| s.next_due() < end);
            if now >= end && (!owed || now >= end + self.plan.drain_ns) {
                break;
            }
            self.check_alive()?;
            let wake = if now >= end {
                // Owed requests wait for replies to free a connection.
                now + 1_000_000
            } else {
                let tick_at = ticks.get(tick).map_or(end, |t| t.0);
                schedule
                    .as_ref()
                    .map_or(tick_at, |s| tick_at.min(s.next_due().max(now)))
            };
            now = self.turn(Duration::from_nanos(wake.saturating_sub(now)))?;
        }
        let backlog = schedule.map_or(0, |s| s.backlog(end.saturating_sub(1)));
        // Drain: replies to what was sent in the window.
        let drain_end = end + self.plan.drain_ns;
        while self.outstanding() > 0 && now < drain_end && self.alive.iter().any(|&a| a) {
            now = self.turn(Duration::from_nanos(drain_end - now))?;
        }
        for i in 0..n {
            self.conns[i].fail_all(&mut self.ctx, Loss::Unanswered);
        }
        self.report(tx, ticks.len())?;
        Ok(backlog)
    }

    /// Cancels every operation and waits (bounded) until the kernel holds
    /// no send buffer and no receive, so the connections can be dropped.
    /// Runs on drop, on every exit path (a failed prefill included).
    fn quiesce(&mut self) {
        self.discard = true;
        for i in 0..self.conns.len() {
            let _ = self
                .ring
                .queue_cancel_fd(self.conns[i].fd(), Token::op(CANCEL));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let busy = |w: &Self| w.armed.iter().any(|&a| a) || w.conns.iter().any(Transport::sending);
        while Instant::now() < deadline && busy(self) {
            if self.turn(Duration::from_millis(10)).is_err() {
                break;
            }
        }
        if busy(self) {
            // The kernel may still read a send buffer: leak the connections
            // (their buffers and fds) rather than free memory it can touch.
            std::mem::forget(std::mem::take(&mut self.conns));
        }
    }
}

impl<T: Transport> Drop for Worker<T> {
    fn drop(&mut self) {
        // Send buffers live in the connections: the kernel must be done
        // with them before the fields below are dropped.
        self.quiesce();
    }
}

/// Thread body: connect, prefill, report ready, wait for the start, run.
pub fn thread_main<T: Transport>(
    tid: usize,
    plan: Plan,
    connect: impl Fn(SocketAddr) -> io::Result<T>,
    tx: Sender<Report>,
    start: Receiver<Instant>,
) {
    if plan.pin
        && let Some(&core) = plan.cores.get(tid)
    {
        cpus::pin_current(core);
    }
    let result = (|| {
        let mut w = Worker::new(tid, plan.clone(), connect)?;
        if plan.prefill {
            w.prefill()?;
        }
        tx.send(Report::Ready {
            thread: tid,
            cpu_ns: thread_cpu_time().as_nanos() as u64,
        })
        .map_err(|_| WorkerError::Collector)?;
        let Ok(epoch) = start.recv() else {
            return Ok(None);
        };
        w.run(epoch, &tx).map(Some)
    })();
    let _ = match result {
        Ok(Some(backlog)) => tx.send(Report::Finished { backlog }),
        Ok(None) => Ok(()),
        Err(e) => tx.send(Report::Failed {
            thread: tid,
            error: e.to_string(),
        }),
    };
}
