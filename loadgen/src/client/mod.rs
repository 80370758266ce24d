//! Running a workload against a target: spawn one pinned client thread per
//! core, start them together, merge their interval reports, show progress,
//! and produce the [`RunResult`].

mod collect;
mod ctx;
mod fold;
mod placement;
mod plan;
mod report;
mod tcp;
mod transport;
mod udp;
mod worker;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

pub use collect::RunOutput;
pub use plan::{Plan, TickKind, split};

use cluster::{Member, RingKind};

use crate::wire::Protocol;
use crate::wire::udp::MAX_REQUEST_PAYLOAD;
use crate::workload::{Workload, WorkloadError};

/// A run, as configured on the command line.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub name: String,
    /// One server, or (with `cluster`) the nodes the ring places keys on, in order.
    pub targets: Vec<SocketAddr>,
    /// `--cluster ketama`: send each key to the target the ring places it on.
    pub cluster: Option<RingKind>,
    pub protocol: Protocol,
    pub workload: Workload,
    pub cores: Vec<usize>,
    /// Pin each client thread to its core.
    pub pin: bool,
    /// Total connections, spread over the threads.
    pub conns: usize,
    pub depth: usize,
    /// Total requests per second (open loop); None = closed loop.
    pub rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub prefill: bool,
    pub interval: Duration,
    pub drain: Duration,
    pub udp_timeout: Duration,
    /// Client threads poll their rings instead of sleeping.
    pub spin: bool,
    pub progress: bool,
    /// Read the server's `stats` at the start and end of the window.
    pub server_stats: bool,
    pub stats_addr: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("--conns ({conns}) must be at least the number of cores ({cores})")]
    TooFewConns { conns: usize, cores: usize },
    #[error("--depth must be at least 1")]
    Depth,
    #[error("--rate must be positive")]
    Rate,
    #[error("--cores is empty")]
    NoCores,
    #[error(
        "UDP requests must fit one datagram: a set of {0} bytes does not (use --value-size <= {max})",
        max = MAX_REQUEST_PAYLOAD - 100
    )]
    UdpTooLarge(usize),
    #[error("several --target need --cluster ketama (client-side placement)")]
    SeveralTargets,
    #[error("--mget above 1 with --cluster: a multi-get would span nodes, which is not supported")]
    ClusterMget,
    #[error(
        "--server-stats with several targets: give --stats-addr (the node whose stats to read)"
    )]
    ClusterStats,
    #[error(
        "--conns gives {per_thread} connections to a thread; with --cluster each thread needs one per target ({targets})"
    )]
    TooFewConnsForTargets { per_thread: usize, targets: usize },
    #[error("--cluster: {0}")]
    Ring(#[from] cluster::RingError),
    #[error("client thread {thread}: {error}")]
    Thread { thread: usize, error: String },
    #[error("spawning a client thread: {0}")]
    Spawn(std::io::Error),
}

impl RunConfig {
    pub fn plan(&self) -> Result<Plan, RunError> {
        self.workload.validate()?;
        let threads = self.cores.len();
        if threads == 0 {
            return Err(RunError::NoCores);
        }
        if self.conns < threads {
            return Err(RunError::TooFewConns {
                conns: self.conns,
                cores: threads,
            });
        }
        if self.depth == 0 {
            return Err(RunError::Depth);
        }
        if let Some(r) = self.rate
            && !(r > 0.0 && r.is_finite())
        {
            return Err(RunError::Rate);
        }
        if self.protocol == Protocol::Udp && self.workload.set_weight > 0 {
            let biggest = self.workload.value_sizes.max() + self.workload.key_size + 40;
            if biggest > MAX_REQUEST_PAYLOAD {
                return Err(RunError::UdpTooLarge(self.workload.value_sizes.max()));
            }
        }
        let ring = self.ring()?;
        let conns = split(self.conns, threads);
        if ring.is_some() {
            if self.workload.mget > 1 {
                return Err(RunError::ClusterMget);
            }
            if self.server_stats && self.stats_addr.is_none() {
                return Err(RunError::ClusterStats);
            }
            let fewest = conns.iter().copied().min().unwrap_or(0);
            if fewest < self.targets.len() {
                return Err(RunError::TooFewConnsForTargets {
                    per_thread: fewest,
                    targets: self.targets.len(),
                });
            }
        }
        let ns = plan::ns;
        Ok(Plan {
            targets: self.targets.clone(),
            ring,
            protocol: self.protocol,
            workload: self.workload.clone(),
            threads,
            cores: self.cores.clone(),
            pin: self.pin,
            conns,
            depth: self.depth,
            rate_per_thread: self.rate.map(|r| r / threads as f64),
            prefill: self.prefill,
            warmup_ns: ns(self.warmup),
            measure_ns: ns(self.duration),
            interval_ns: ns(self.interval),
            drain_ns: ns(self.drain),
            udp_timeout_ns: ns(self.udp_timeout),
            spin: self.spin,
        })
    }
}

/// The ring members `--cluster` places keys over: the targets in order,
/// weight 1 each, each named `IP:PORT` as ketama clients name servers.
pub fn ring_members(targets: &[SocketAddr]) -> Vec<Member> {
    targets
        .iter()
        .map(|a| Member {
            name: a.to_string(),
            host: a.ip().to_string(),
            port: a.port(),
            weight: 1,
        })
        .collect()
}

impl RunConfig {
    /// The ring over the targets for `--cluster`: weight 1 each, in order,
    /// labelled as ketama clients label `IP:PORT` servers.
    fn ring(&self) -> Result<Option<cluster::Ring>, RunError> {
        match self.cluster {
            None if self.targets.len() > 1 => Err(RunError::SeveralTargets),
            None => Ok(None),
            Some(kind) => Ok(Some(cluster::Ring::new(
                &ring_members(&self.targets),
                kind,
            )?)),
        }
    }
}

/// Runs the workload and returns its result (and merged histograms).
pub fn run(cfg: &RunConfig) -> Result<RunOutput, RunError> {
    let plan = cfg.plan()?;
    let (tx, rx) = mpsc::channel();
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    for tid in 0..plan.threads {
        let (start_tx, start_rx) = mpsc::channel();
        starts.push(start_tx);
        let plan = plan.clone();
        let tx = tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{tid}"))
            .spawn(move || match plan.protocol {
                Protocol::Udp => worker::thread_main(
                    tid,
                    plan,
                    |target| udp::connect(target).map(udp::UdpConn::new),
                    tx,
                    start_rx,
                ),
                Protocol::Text | Protocol::Meta | Protocol::Binary => worker::thread_main(
                    tid,
                    plan,
                    |target| runtime::socket::tcp_connect(target).map(tcp::TcpConn::new),
                    tx,
                    start_rx,
                ),
            })
            .map_err(RunError::Spawn)?;
        handles.push(handle);
    }
    drop(tx);
    let out = collect::collect(cfg, &plan, rx, starts);
    for h in handles {
        let _ = h.join();
    }
    out
}
