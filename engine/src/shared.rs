//! What every shard thread sees of the process: the configuration, the
//! addresses bound, and the few atomics that are the only shared mutable state
//! (the connection count that enforces `-c` across shards, the stop flag and
//! its drain count, the verbosity the `verbosity` command sets).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};
use std::time::Instant;

use crate::auth::Auth;
use crate::config::{ClusterPlan, Config};
use crate::membership::view::Published;

/// Read-mostly state every shard sees.
pub struct Shared {
    pub config: Config,
    pub shards: usize,
    pub started: Instant,
    pub started_unix: u64,
    pub connections: AtomicUsize,
    pub stopping: AtomicBool,
    /// Shards that have closed all their connections while stopping; a shard
    /// keeps answering its peers until every shard has drained.
    pub drained: AtomicUsize,
    pub verbosity: AtomicU8,
    pub tcp_addrs: Vec<SocketAddr>,
    pub udp_addrs: Vec<SocketAddr>,
    /// The HTTP port's address, when it is on.
    pub http_addr: Option<SocketAddr>,
    /// The cluster this node is part of, `None` for a single node.
    pub cluster: Option<ClusterPlan>,
    /// Every member's address (resolved at start), by ring index.
    pub cluster_addrs: Vec<SocketAddr>,
    /// The live members and the ring over them, published by the gossip
    /// thread (`None` for one node; never changes with static membership).
    pub membership: Option<Published>,
    /// -Y: the ascii authentication file.
    pub ascii_auth: Option<Auth>,
    /// -S: the SASL PLAIN password file.
    pub sasl_auth: Option<Auth>,
    /// The unix socket served instead of TCP and UDP (-s).
    pub unix_path: Option<std::path::PathBuf>,
    /// -Z: the certificates TLS listeners hand out.
    pub tls: Option<Arc<crate::tls::Certs>>,
    /// Where shards send the carved regions of their THP arenas (crate::collapse).
    pub collapse: Option<std::sync::mpsc::Sender<store::HugeRegion>>,
}

impl Shared {
    /// Whether a new connection must authenticate before anything else.
    pub fn auth_required(&self) -> bool {
        self.ascii_auth.is_some() || self.sasl_auth.is_some()
    }
}

/// Asks the process to stop as if it had received SIGTERM (the `shutdown`
/// command): the main thread's signal wait sees it and drains every shard.
pub fn request_stop() {
    // SAFETY: kill with our own pid and a standard signal.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}
