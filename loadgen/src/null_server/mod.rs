//! `corecache-loadgen null-server`: a memcached that does no storage work.
//! It answers every get with a fixed value and every store with STORED, on
//! the same io_uring loop as the clients and the corecache server (multishot
//! accept, multishot receive into a provided buffer ring, replies batched
//! and sent once per loop turn), so its throughput is the ceiling of this
//! machine's network path: no server can be measured faster than it.
//!
//! For tests it can also stall: `--stall-every 1s --stall-for 200ms` stops
//! a thread for 200 ms once a second (counted from its first request), as a
//! server stuck in a long pause would.

mod answer;
mod conn;
mod stats;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use runtime::{
    BufRing, Completion, Ring, RingConfig, Token, next_generation, opcode, socket, types,
};

use conn::ServerConn;
pub use stats::Stats;

const ACCEPT: u8 = 1;
const RECV: u8 = 2;
const SEND: u8 = 3;
const BUF_GROUP: u16 = 0;

#[derive(Clone, Debug)]
pub struct NullConfig {
    pub listen: SocketAddr,
    pub cores: Vec<usize>,
    pub pin: bool,
    pub value_size: usize,
    /// Stop a thread for `stall_for` once per `stall_every`.
    pub stall_every: Option<Duration>,
    pub stall_for: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NullError {
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, io::Error),
    #[error("io_uring: {0}")]
    Ring(#[from] runtime::RingError),
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

/// Binds every thread's listener (SO_REUSEPORT on one port), starts the
/// threads, and returns the bound address. Threads serve until the process exits.
pub fn start(cfg: &NullConfig) -> Result<SocketAddr, NullError> {
    let threads = cfg.cores.len().max(1);
    let first =
        socket::tcp_listener(cfg.listen, 1024).map_err(|e| NullError::Bind(cfg.listen, e))?;
    let addr = socket::local_addr(&first)?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(socket::tcp_listener(addr, 1024).map_err(|e| NullError::Bind(addr, e))?);
    }
    let stats = Arc::new(Stats::new(threads));
    let (tx, rx) = std::sync::mpsc::channel();
    for (tid, listener) in listeners.into_iter().enumerate() {
        let cfg = cfg.clone();
        let stats = stats.clone();
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("null-{tid}"))
            .spawn(move || {
                if cfg.pin
                    && let Some(&core) = cfg.cores.get(tid)
                {
                    cpus::pin_current(core);
                }
                let served = Server::new(tid, listener, &cfg, stats);
                match served {
                    Ok(mut s) => {
                        let _ = tx.send(Ok(()));
                        if let Err(e) = s.run() {
                            eprintln!("null-server thread {tid}: {e}");
                            std::process::exit(1);
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
    }
    drop(tx);
    for _ in 0..threads {
        rx.recv()
            .map_err(|_| io::Error::other("server thread died"))??;
    }
    Ok(addr)
}

struct Server {
    tid: usize,
    listener: OwnedFd,
    // Drop order: connections, then buffers, then the ring.
    conns: Vec<Option<ServerConn>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    dirty: Vec<u32>,
    bufs: BufRing,
    ring: Ring,
    stats: Arc<Stats>,
    value: Vec<u8>,
    stall_every: Option<Duration>,
    stall_for: Duration,
    last_stall: Option<std::time::Instant>,
}

impl Server {
    fn new(
        tid: usize,
        listener: OwnedFd,
        cfg: &NullConfig,
        stats: Arc<Stats>,
    ) -> Result<Server, NullError> {
        let ring = Ring::new(RingConfig {
            sq_entries: 1024,
            cq_entries: 16384,
        })?;
        let bufs = BufRing::new(&ring, BUF_GROUP, 2048, 2048, 8192)?;
        let mut s = Server {
            tid,
            listener,
            conns: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            bufs,
            ring,
            stats,
            value: vec![b'x'; cfg.value_size],
            stall_every: cfg.stall_every.filter(|d| !d.is_zero()),
            stall_for: cfg.stall_for,
            last_stall: None,
        };
        s.arm_accept()?;
        Ok(s)
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let entry = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .build()
            .user_data(Token::op(ACCEPT).to_user_data());
        // SAFETY: accept references only the listener, which outlives the ring's use.
        unsafe { self.ring.push(&entry) }
    }

    fn arm_recv(&mut self, slot: u32) -> io::Result<()> {
        let fd = self.conns[slot as usize]
            .as_ref()
            .expect("live slot")
            .fd
            .as_raw_fd();
        let token = Token::new(RECV, slot, self.generations[slot as usize]);
        // SAFETY: a multishot receive writes only into the provided buffers,
        // which the server's BufRing keeps registered while the ring runs.
        unsafe { self.ring.queue_recv_multi(fd, BUF_GROUP, token) }
    }

    fn run(&mut self) -> io::Result<()> {
        let mut completions = Vec::with_capacity(4096);
        loop {
            for k in 0..self.dirty.len() {
                let slot = self.dirty[k];
                let generation = self.generations[slot as usize];
                if let Some(c) = self.conns[slot as usize].as_mut() {
                    c.dirty = false;
                    c.flush(&mut self.ring, Token::new(SEND, slot, generation))?;
                }
            }
            self.dirty.clear();
            self.ring.submit_and_wait(1, Some(Duration::from_secs(1)))?;
            completions.clear();
            self.ring.drain(&mut completions);
            for c in &completions {
                self.dispatch(*c)?;
            }
            self.bufs.publish();
        }
    }

    fn dispatch(&mut self, c: Completion) -> io::Result<()> {
        let t = c.token();
        match t.op {
            ACCEPT => {
                if c.result >= 0 {
                    // SAFETY: a successful accept returns a new fd that we now own.
                    let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
                    let _ = socket::set_nodelay(&fd);
                    let slot = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.generations.push(0);
                        (self.conns.len() - 1) as u32
                    });
                    self.conns[slot as usize] = Some(ServerConn::new(fd));
                    let mine = &self.stats.threads[self.tid];
                    stats::ThreadStats::add(&mine.curr_connections, 1);
                    stats::ThreadStats::add(&mine.total_connections, 1);
                    self.arm_recv(slot)?;
                }
                if !c.more() {
                    self.arm_accept()?;
                }
            }
            RECV | SEND => {
                let slot = t.slot as usize;
                if self.generations.get(slot) != Some(&t.generation) || self.conns[slot].is_none() {
                    // A completion for a connection already closed.
                    if let Some(bid) = c.buffer_id() {
                        self.bufs.recycle(bid);
                    }
                    return Ok(());
                }
                if t.op == RECV {
                    self.on_recv(slot, c)?;
                } else {
                    let conn = self.conns[slot].as_mut().expect("checked");
                    let token = Token::new(SEND, slot as u32, t.generation);
                    if conn.on_send(c.result, &mut self.ring, token)? {
                        self.mark_dirty(slot);
                    }
                    self.maybe_close(slot);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(c) = self.conns[slot].as_mut()
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(slot as u32);
        }
    }

    fn on_recv(&mut self, slot: usize, c: Completion) -> io::Result<()> {
        if c.result > 0 {
            let bid = c.buffer_id().expect("multishot receive selects a buffer");
            let data = self.bufs.get(bid, c.result as usize);
            let conn = self.conns[slot].as_mut().expect("checked");
            let mine = &self.stats.threads[self.tid];
            conn.on_data(data, &self.value, mine, &self.stats);
            self.bufs.recycle(bid);
            self.mark_dirty(slot);
            if let Some(every) = self.stall_every {
                let last = *self.last_stall.get_or_insert_with(std::time::Instant::now);
                if last.elapsed() >= every {
                    // The injected stall: the whole thread stops, as a
                    // server stuck in a long pause or a page-fault storm.
                    std::thread::sleep(self.stall_for);
                    self.last_stall = Some(std::time::Instant::now());
                }
            }
        } else if c.result != -libc::ENOBUFS {
            self.conns[slot].as_mut().expect("checked").closing = true;
        }
        if !c.more() {
            let conn = self.conns[slot].as_mut().expect("checked");
            if conn.closing {
                conn.recv_armed = false;
            } else {
                self.bufs.publish();
                self.arm_recv(slot as u32)?;
            }
        }
        self.maybe_close(slot);
        Ok(())
    }

    /// Frees a closing connection once the kernel holds none of its
    /// buffers, cancelling its receive first if it is still armed.
    fn maybe_close(&mut self, slot: usize) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        if !c.closing {
            return;
        }
        if c.recv_armed {
            if !c.cancelled {
                c.cancelled = true;
                let fd = c.fd.as_raw_fd();
                let _ = self.ring.queue_cancel_fd(fd, Token::op(0));
            }
            return;
        }
        if !c.idle() {
            return; // a reply (e.g. to `quit` or a refused value) still goes out
        }
        self.conns[slot] = None;
        self.generations[slot] = next_generation(self.generations[slot]);
        self.free.push(slot as u32);
        let mine = &self.stats.threads[self.tid];
        mine.curr_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
