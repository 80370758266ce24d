//! The command line: `run`, `compare`, `plot`, `null-server`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cluster::RingKind;

use crate::client::RunConfig;
use crate::compare::Target;
use crate::spec::{self, KeyDist, ValueSizes};
use crate::wire::Protocol;
use crate::workload::{KeyOwner, Workload};

#[derive(Parser, Debug)]
#[command(
    name = "corecache-loadgen",
    version,
    about = "Open-loop memcached load generator with HDR histograms"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a workload against one server and print the latency summary.
    Run(RunArgs),
    /// Run the same workload against several servers in alternation, then
    /// print medians and ratios.
    Compare(CompareArgs),
    /// Render latency-by-percentile curves of result files (SVG, PNG).
    Plot(PlotArgs),
    /// Serve a memcached that does no storage work: the network path's ceiling.
    NullServer(NullArgs),
}

fn duration(s: &str) -> Result<Duration, String> {
    spec::parse_duration(s).map_err(|e| e.to_string())
}
/// A core list as one argument (clap would treat a bare Vec as repeated).
#[derive(Clone, Debug)]
pub struct Cores(pub Vec<usize>);

fn cores(s: &str) -> Result<Cores, String> {
    spec::parse_cores(s).map(Cores).map_err(|e| e.to_string())
}
fn sizes(s: &str) -> Result<ValueSizes, String> {
    ValueSizes::parse(s).map_err(|e| e.to_string())
}
fn ratio(s: &str) -> Result<(u32, u32), String> {
    spec::parse_ratio(s).map_err(|e| e.to_string())
}
fn key_dist(s: &str) -> Result<KeyDist, String> {
    KeyDist::parse(s).map_err(|e| e.to_string())
}
fn addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))
}
fn target(s: &str) -> Result<Target, String> {
    let (name, a) = s.split_once('=').unwrap_or((s, s));
    Ok(Target {
        name: name.to_string(),
        addr: addr(a)?,
    })
}

/// The workload and how to drive it (shared by `run` and `compare`).
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// text, meta, binary, or udp (text protocol over UDP).
    #[arg(long, value_enum, default_value = "text")]
    pub protocol: Protocol,
    /// CPUs for the client threads, one pinned thread each: 1, 2-5, 0,2.
    #[arg(long, value_parser = cores, default_value = "0")]
    pub cores: Cores,
    /// Do not pin client threads to their cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Connections in total (UDP: sockets), spread evenly over the threads.
    #[arg(long, default_value_t = 32)]
    pub conns: usize,
    /// Requests in flight per connection (pipeline depth).
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Open loop at this total rate (requests/s), latency from intended send
    /// times. Without it: closed loop, as fast as replies come back.
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub duration: Duration,
    /// Run this long before measuring; excluded from the results.
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub warmup: Duration,
    /// Key space size.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Bytes per key (at least enough digits for --keys).
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value bytes: N, MIN-MAX (uniform), or SIZE:WEIGHT,SIZE:WEIGHT.
    #[arg(long, value_parser = sizes, default_value = "100")]
    pub value_size: ValueSizes,
    /// get:set ratio.
    #[arg(long, value_parser = ratio, default_value = "9:1")]
    pub ratio: (u32, u32),
    /// Keys per get (multi-get width).
    #[arg(long, default_value_t = 1)]
    pub mget: usize,
    /// Key popularity: uniform, or zipf[:SKEW] (default skew 0.99).
    #[arg(long, value_parser = key_dist, default_value = "uniform")]
    pub key_dist: KeyDist,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Set every key once before measuring.
    #[arg(long)]
    pub prefill: bool,
    /// Values carry a checksum of key and version; every hit is checked.
    #[arg(long)]
    pub verify: bool,
    /// Reporting interval (progress line, --hdr-log).
    #[arg(long, value_parser = duration, default_value = "1s")]
    pub interval: Duration,
    /// After the window, wait this long for replies still in flight.
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub drain: Duration,
    /// UDP: a request without its whole reply after this is a timeout error.
    #[arg(long, value_parser = duration, default_value = "1s")]
    pub udp_timeout: Duration,
    /// No progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// Client threads poll for completions instead of sleeping: each keeps
    /// its core busy, and replies are seen without a wake-up's latency.
    #[arg(long)]
    pub spin: bool,
    /// Read the server's own `stats` (cmd_get, cmd_set) at the start and end
    /// of the measured window and show them beside the loadgen's count
    /// (TCP; with --protocol udp, give the TCP address with --stats-addr).
    #[arg(long)]
    pub server_stats: bool,
    /// Where to read `stats` for --server-stats (default: the target).
    #[arg(long, value_parser = addr)]
    pub stats_addr: Option<SocketAddr>,
    /// Only keys the cluster's ring places on this node (by its name in
    /// --cluster-peers): its local keys, or, sent to another node, keys one
    /// hop away.
    #[arg(long, requires = "cluster_peers")]
    pub key_owner: Option<String>,
    /// The cluster for --key-owner, as the nodes' --cluster-peers:
    /// NAME=HOST:PORT[:WEIGHT],...
    #[arg(long, requires = "key_owner")]
    pub cluster_peers: Option<String>,
    /// The nodes' --cluster-ring: libketama or libmemcached-ketama.
    #[arg(long, default_value = "libketama")]
    pub cluster_ring: String,
}

impl LoadArgs {
    /// `--cluster-ring` as a ring kind.
    pub fn ring_kind(&self) -> Result<RingKind, String> {
        RingKind::from_name(&self.cluster_ring).ok_or_else(|| {
            format!(
                "--cluster-ring `{}`: give libketama or libmemcached-ketama",
                self.cluster_ring
            )
        })
    }

    pub fn config(&self, name: String, targets: Vec<SocketAddr>) -> RunConfig {
        RunConfig {
            name,
            targets,
            cluster: None,
            protocol: self.protocol,
            workload: Workload {
                keys: self.keys,
                key_size: self.key_size,
                value_sizes: self.value_size.clone(),
                get_weight: self.ratio.0,
                set_weight: self.ratio.1,
                mget: self.mget,
                key_dist: self.key_dist,
                seed: self.seed,
                verify: self.verify,
                key_owner: self.key_owner.as_ref().map(|node| KeyOwner {
                    node: node.clone(),
                    peers: self.cluster_peers.clone().unwrap_or_default(),
                    ring: self.cluster_ring.clone(),
                }),
            },
            cores: self.cores.0.clone(),
            pin: !self.no_pin,
            conns: self.conns,
            depth: self.depth,
            rate: self.rate,
            duration: self.duration,
            warmup: self.warmup,
            prefill: self.prefill,
            interval: self.interval,
            drain: self.drain,
            udp_timeout: self.udp_timeout,
            progress: !self.no_progress,
            spin: self.spin,
            server_stats: self.server_stats || self.stats_addr.is_some(),
            stats_addr: self.stats_addr,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Server address, HOST:PORT; several with --cluster.
    #[arg(long = "target", value_parser = addr, required = true, num_args = 1)]
    pub targets: Vec<SocketAddr>,
    /// Place keys over the --targets as a ketama client does (the ring of
    /// --cluster-ring over the targets in order, weight 1 each, labelled IP:PORT).
    #[arg(long, value_enum)]
    pub cluster: Option<ClusterMode>,
    /// Label for the results (default: the address).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Write the result as JSON (read by `plot`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HdrHistogram interval log of the measured window.
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,
}

/// `--cluster`: how keys are placed over several targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterMode {
    Ketama,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// NAME=HOST:PORT, once per server (the first is the baseline of the ratios).
    #[arg(long = "target", value_parser = target, required = true, num_args = 1)]
    pub targets: Vec<Target>,
    /// Rounds; each runs every target once, alternating the order.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Write every round and the medians as JSON (read by `plot`).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Result files written by `run --json` or `compare --json`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(short, long, default_value = "latency.svg")]
    pub output: PathBuf,
    /// Also write a PNG.
    #[arg(long)]
    pub png: Option<PathBuf>,
    #[arg(long, default_value = "Latency by percentile")]
    pub title: String,
    /// Which operation's curve: all, get or set.
    #[arg(long, default_value = "all")]
    pub op: String,
}

#[derive(Args, Debug)]
pub struct NullArgs {
    /// Address to listen on (port 0: any free port, printed on start).
    #[arg(long, value_parser = addr, default_value = "127.0.0.1:11311")]
    pub listen: SocketAddr,
    /// CPUs for the server threads, one pinned thread each.
    #[arg(long, value_parser = cores, default_value = "0")]
    pub cores: Cores,
    #[arg(long)]
    pub no_pin: bool,
    /// Bytes of the value every get returns.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Test aid: stop each server thread once per this period...
    #[arg(long, value_parser = duration)]
    pub stall_every: Option<Duration>,
    /// ...for this long.
    #[arg(long, value_parser = duration, default_value = "200ms")]
    pub stall_for: Duration,
}
