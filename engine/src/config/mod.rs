//! The server's configuration: one serde struct per TOML section, every
//! default in its `Default` impl, validation that names the setting and the
//! fix. The command line (see [`cli`]) overrides the file; `--print-config`
//! prints the result as TOML.

pub mod cli;
pub mod cluster;
mod cores;
mod derived;
mod http;
mod size;
mod tls;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cluster::{
    AckMode, ClusterConfig, ClusterPlan, GossipPlan, MembershipMode, ReadFrom, RingName,
};
pub use cores::{CoreList, allowed_cores};
pub use derived::{CLOCK_START, VERSION};
pub use http::HttpConfig;
pub use size::ByteSize;
pub use tls::TlsConfig;

/// The store's own setting types, embedded in `[memory]`.
pub use store::{HugePages, Numa, Policy as Eviction};

/// A configuration error: one line naming the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    fn setting(name: &str, problem: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("invalid setting {name}: {problem}"))
    }
}

/// The whole configuration, as in a TOML file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub shards: ShardsConfig,
    pub memory: MemoryConfig,
    pub limits: LimitsConfig,
    pub network: NetworkConfig,
    pub cluster: ClusterConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
}

/// `[server]`: listeners and what clients may do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Addresses to listen on (memcached's -l; it takes several, comma separated).
    pub listen: Vec<IpAddr>,
    /// TCP port (-p); 0 picks a free port, reported in the log.
    pub port: u16,
    /// UDP port (-U); 0 turns UDP off, the default: UDP is a reflection-amplification vector.
    pub udp_port: u16,
    /// Simultaneous connections across all shards (-c).
    pub max_connections: usize,
    /// The listen backlog (-b).
    pub backlog: i32,
    /// Whether the `shutdown` command is honoured (-A).
    pub enable_shutdown: bool,
    /// Refuse `flush_all` (-F).
    pub disable_flush_all: bool,
    /// Return an error instead of evicting when memory is full (-M).
    pub disable_evictions: bool,
    /// Items carry no CAS (-C, memcached's "disable use of CAS"): `gets`,
    /// `mg … c` and binary replies show CAS 0, `cas` never matches, and
    /// `flush_all` cuts by whole seconds. Refused with cluster.replicas > 1,
    /// whose copies are ordered by CAS.
    pub disable_cas: bool,
    /// Log verbosity: 0 warnings, 1 info, 2 debug, 3 trace (-v, -vv, -vvv).
    pub verbosity: u8,
    /// Write the process id to this file (-P).
    pub pidfile: Option<String>,
    /// Which protocol clients speak (-B): `auto` tells binary from text by
    /// a connection's first byte, as memcached does.
    pub protocol: Protocol,
    /// memcached's -Y: connections must first authenticate with a
    /// `user password` set against this file of `user:password` lines
    /// (text protocol only, no UDP).
    pub auth_file: Option<String>,
    /// memcached's -S: SASL PLAIN in the binary protocol (binary only, no UDP).
    pub sasl: bool,
    /// The `user:password` file SASL checks against (memcached's
    /// `MEMCACHED_SASL_PWDB`, which -S reads when this is not set).
    pub sasl_pwdb: Option<String>,
    /// Listen on this unix stream socket instead of TCP and UDP (-s), as
    /// memcached does: with a socket path, `port`, `udp_port` and `listen`
    /// are not used.
    pub unix_socket: Option<PathBuf>,
    /// Permissions of the socket file (-a), octal as in chmod.
    pub unix_mask: UnixMask,
    /// Close connections that have sent no request for longer than this many
    /// seconds (memcached's `-o idle_timeout`); 0 turns it off.
    pub idle_timeout: u32,
    /// Whether `watch` turns a connection into a log watcher (memcached's
    /// -W turns it off).
    pub watch: bool,
    /// Each log watcher's output buffer, in KiB (memcached's
    /// `-o watcher_logbuf_size`); lines that do not fit are skipped and counted.
    pub watcher_logbuf_kb: u32,
    /// Serve `debugtime N|p|r`, which moves or stops the clock every item's
    /// expiry and the flush times are read against (`-o debug_time`). A
    /// command of memcached's debug builds, for tests only (memcached's
    /// expirations.t); off, `debugtime` answers `ERROR` as a release
    /// memcached does.
    pub debug_time: bool,
}

/// The log level a verbosity stands for (-v and below: info; -vv debug;
/// -vvv trace), when RUST_LOG does not decide it.
pub fn log_level(verbosity: u8) -> &'static str {
    match verbosity {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// memcached's -B: the protocol a connection is read in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Binary when the first byte is the binary request magic (0x80), else text.
    #[default]
    Auto,
    /// Text and meta only: a 0x80 first byte is read as text (and refused).
    Ascii,
    /// Binary only: anything else is a bad magic byte, and the connection closes.
    Binary,
}

impl Protocol {
    /// The name `stats settings` shows as `binding_protocol`, memcached's words.
    pub fn binding_name(self) -> &'static str {
        match self {
            Protocol::Auto => "auto-negotiate",
            Protocol::Ascii => "ascii",
            Protocol::Binary => "binary",
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![IpAddr::from([127, 0, 0, 1])],
            port: 11211,
            udp_port: 0,
            max_connections: 1024,
            backlog: 1024,
            enable_shutdown: false,
            disable_flush_all: false,
            disable_evictions: false,
            disable_cas: false,
            verbosity: 0,
            pidfile: None,
            protocol: Protocol::Auto,
            auth_file: None,
            sasl: false,
            sasl_pwdb: None,
            unix_socket: None,
            unix_mask: UnixMask::default(),
            idle_timeout: 0,
            watch: true,
            watcher_logbuf_kb: 256,
            debug_time: false,
        }
    }
}

/// The permission bits of the unix socket file, written and read as octal
/// text ("0700") so that a config file means what chmod would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnixMask(pub u32);

impl Default for UnixMask {
    /// memcached's default: only the server's user may connect.
    fn default() -> Self {
        UnixMask(0o700)
    }
}

impl std::str::FromStr for UnixMask {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match u32::from_str_radix(s.trim(), 8) {
            Ok(mask) if mask <= 0o777 => Ok(UnixMask(mask)),
            _ => Err(ConfigError::setting(
                "server.unix_mask",
                format!("{s:?} is not octal permission bits (use -a 0700)"),
            )),
        }
    }
}

impl TryFrom<String> for UnixMask {
    type Error = ConfigError;

    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

impl From<UnixMask> for String {
    fn from(m: UnixMask) -> String {
        format!("{:04o}", m.0)
    }
}

/// `[shards]`: one shard per pinned core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardsConfig {
    /// Number of shards (-t); 0 means one per core in `cores`.
    pub count: usize,
    /// Cores to run on ("all" = every core this process may run on, or a list like "0-3,6").
    pub cores: CoreList,
    /// Pin each shard's thread to its core.
    pub pin: bool,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        ShardsConfig {
            count: 0,
            cores: CoreList::All,
            pin: true,
        }
    }
}

/// `[memory]`: the item arena.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Item memory for the whole server in MiB (-m), split evenly over the shards.
    pub limit_mb: u64,
    /// Back the arena with hugepages: "off", "try" or "on".
    pub hugepages: HugePages,
    /// Bind each shard's arena to its core's NUMA node: "off" or "local".
    pub numa: Numa,
    /// Eviction policy when memory is full.
    pub eviction: Eviction,
    /// Size of the slab pages the arena is carved into.
    pub slab_page_size: ByteSize,
    /// Growth factor between size classes (-f).
    pub growth_factor: f64,
    /// The memory file (-e): item memory lives in a shared mapping of it, and a
    /// graceful stop leaves `<file>.meta` so the next start is warm (docs/restart.md).
    pub file: Option<String>,
    /// The background crawler that unlinks expired and flushed items between
    /// requests (memcached's LRU crawler; `-o no_lru_crawler` and `-o
    /// no_modern` turn it off, as in memcached). Off, such items are
    /// reclaimed only when a request meets them or eviction takes them.
    pub lru_crawler: bool,
    /// Items carry their 8-byte CAS only once a client can know it (gets, gats,
    /// mg/ms/ma `c`, every binary reply): a cache read with `get` pays nothing for
    /// CAS. `false` gives every item the word when stored, which saves the move a
    /// first `gets` makes (for clients that read everything with CAS, such as the
    /// binary protocol's). Always on the word in a cluster and under -M.
    pub cas_on_demand: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            limit_mb: 64,
            hugepages: HugePages::default(),
            numa: Numa::default(),
            eviction: Eviction::default(),
            slab_page_size: ByteSize(1 << 20),
            growth_factor: 1.08,
            file: None,
            lru_crawler: true,
            cas_on_demand: true,
        }
    }
}

/// `[limits]`: protocol bounds, memcached's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest item (key + value) accepted (-I).
    pub max_item_size: ByteSize,
    /// Longest key, in bytes (memcached: 250).
    pub max_key_length: usize,
    /// Longest request line other than a multi-key get.
    pub max_line_length: usize,
    /// Longest multi-key get line (memcached lets these grow without bound; we do not).
    pub max_get_line_length: ByteSize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_item_size: ByteSize(1 << 20),
            max_key_length: 250,
            max_line_length: 16 << 10,
            max_get_line_length: ByteSize(64 << 10),
        }
    }
}

/// `[network]`: the io_uring loop's sizes and per-connection bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Submission queue entries per shard ring.
    pub ring_entries: u32,
    /// Provided receive buffers per shard (a power of two). They are recycled in
    /// the loop turn that fills them, so a few hundred serve thousands of
    /// connections; running out only ends a multishot receive, which is re-armed.
    /// Each buffer is touched as the ring rotates, so this is resident memory.
    pub recv_buffers: u16,
    /// Size of each provided receive buffer.
    pub recv_buffer_size: ByteSize,
    /// Replies a connection may have waiting to be sent before it stops being read.
    pub max_pending_output: ByteSize,
    /// Capacity, in batches, of each shard-to-shard channel.
    pub channel_batches: usize,
    /// A batch of cross-shard requests is sent when it reaches this size (or at the end of a loop turn).
    pub batch_bytes: ByteSize,
    /// UDP: the most reply bytes one request datagram may cause (frame headers
    /// included); a larger reply is dropped (`udp_replies_too_large`). Bounds
    /// the reflection amplification; see docs/security.md.
    pub udp_max_reply: ByteSize,
    /// UDP: reply bytes per second each source address may receive from one
    /// shard (a token bucket whose burst is the larger of 4 x `udp_max_reply`
    /// and one second of the rate); 0 = unlimited.
    /// Replies over it are dropped (`udp_replies_rate_limited`).
    pub udp_reply_rate: ByteSize,
    /// Requests one connection may have handled in a loop turn while more
    /// are buffered (memcached's -R): then it yields so that others progress.
    pub reqs_per_event: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            ring_entries: 1024,
            recv_buffers: 512,
            recv_buffer_size: ByteSize(4096),
            max_pending_output: ByteSize(4 << 20),
            channel_batches: 256,
            batch_bytes: ByteSize(64 << 10),
            udp_max_reply: ByteSize(64 << 10),
            udp_reply_rate: ByteSize(1 << 20),
            reqs_per_event: 20,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys and bad values are errors.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Config::from_toml(&text)
            .map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.0)))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            let message = e.message().replace('\n', " ");
            match line {
                Some(line) => ConfigError(format!("line {line}: {message}")),
                None => ConfigError(message),
            }
        })
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("the config always serialises")
    }

    /// Checks every value; the error names the setting and the fix.
    /// The protocol connections are read in: authentication decides it when
    /// on (ascii auth is text only, SASL binary only, as in memcached).
    pub fn wire_protocol(&self) -> Protocol {
        let s = &self.server;
        if s.auth_file.is_some() {
            Protocol::Ascii
        } else if s.sasl {
            Protocol::Binary
        } else {
            s.protocol
        }
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.auth_file.is_some() && s.sasl {
            return Err(ConfigError::setting(
                "server.auth_file",
                "-Y (ascii authentication) and -S (SASL, binary protocol) exclude each other; use one",
            ));
        }
        if s.auth_file.is_some() {
            if s.protocol == Protocol::Binary {
                return Err(ConfigError::setting(
                    "server.protocol",
                    "you cannot allow the binary protocol while using ascii authentication tokens (-Y); drop -B binary",
                ));
            }
            if s.udp_port != 0 {
                return Err(ConfigError::setting(
                    "server.udp_port",
                    "UDP requests cannot be authenticated; with -Y leave UDP off (-U 0)",
                ));
            }
        }
        if s.sasl {
            if s.protocol == Protocol::Ascii {
                return Err(ConfigError::setting(
                    "server.protocol",
                    "you cannot allow the ascii protocol while using SASL (-S); drop -B ascii",
                ));
            }
            if s.udp_port != 0 {
                return Err(ConfigError::setting(
                    "server.udp_port",
                    "cannot enable UDP while using binary SASL authentication; leave UDP off (-U 0)",
                ));
            }
            if s.sasl_pwdb.is_none() {
                return Err(ConfigError::setting(
                    "server.sasl_pwdb",
                    "-S needs a password file of user:password lines: set MEMCACHED_SASL_PWDB (or server.sasl_pwdb); corecache speaks SASL PLAIN only",
                ));
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_auth()?;
        self.validate_http()?;
        self.validate_tls()?;
        let s = &self.server;
        if s.listen.is_empty() {
            return Err(ConfigError::setting(
                "server.listen",
                "no address given (use -l 127.0.0.1)",
            ));
        }
        if s.watcher_logbuf_kb == 0 || s.watcher_logbuf_kb > 1 << 20 {
            return Err(ConfigError(format!(
                "invalid setting server.watcher_logbuf_kb: {} is outside 1..1048576 KiB",
                s.watcher_logbuf_kb
            )));
        }
        if s.max_connections == 0 {
            return Err(ConfigError::setting(
                "server.max_connections",
                "must be at least 1 (use -c 1024)",
            ));
        }
        if s.backlog <= 0 {
            return Err(ConfigError::setting(
                "server.backlog",
                "must be positive (use -b 1024)",
            ));
        }
        if let Some(path) = &s.unix_socket {
            // sun_path holds 108 bytes with the terminating NUL.
            let len = path.as_os_str().len();
            if len == 0 || len > 107 {
                return Err(ConfigError::setting(
                    "server.unix_socket",
                    format!(
                        "{} must be 1..=107 bytes long, the most a unix socket address holds",
                        path.display()
                    ),
                ));
            }
        }
        let m = &self.memory;
        if m.limit_mb == 0 {
            return Err(ConfigError::setting(
                "memory.limit_mb",
                "must be at least 1 (use -m 64)",
            ));
        }
        if !(m.growth_factor > 1.0 && m.growth_factor <= 2.0) {
            return Err(ConfigError::setting(
                "memory.growth_factor",
                format!("{} is outside (1.0, 2.0] (use -f 1.08)", m.growth_factor),
            ));
        }
        let page = m.slab_page_size.0;
        if !(64 << 10..=64 << 20).contains(&page) || !page.is_power_of_two() {
            return Err(ConfigError::setting(
                "memory.slab_page_size",
                format!("{page} must be a power of two between 64k and 64m (use \"1m\")"),
            ));
        }
        let l = &self.limits;
        let item = l.max_item_size.0;
        // memcached's bounds and messages (memcached.c): at least 1k, at most 1024m,
        // and at most half of -m.
        if item < 1 << 10 {
            return Err(ConfigError::setting(
                "limits.max_item_size",
                format!("{item}: item max size cannot be less than 1024 bytes"),
            ));
        }
        if item > 1 << 30 {
            return Err(ConfigError::setting(
                "limits.max_item_size",
                format!("{item}: cannot set item size limit higher than 1024 mb"),
            ));
        }
        if item > (m.limit_mb << 20) / 2 {
            return Err(ConfigError::setting(
                "limits.max_item_size",
                format!(
                    "{item}: cannot set item size limit higher than 1/2 of memory max ({} MiB; \
                     raise -m or lower -I)",
                    m.limit_mb
                ),
            ));
        }
        if !(1..=250).contains(&l.max_key_length) {
            return Err(ConfigError::setting(
                "limits.max_key_length",
                "must be 1..=250 (memcached's limit is 250)",
            ));
        }
        if l.max_line_length < 256 {
            return Err(ConfigError::setting(
                "limits.max_line_length",
                "must be at least 256 (default 16384)",
            ));
        }
        if (l.max_get_line_length.0 as usize) < l.max_line_length {
            return Err(ConfigError::setting(
                "limits.max_get_line_length",
                "must be at least limits.max_line_length (default 64k)",
            ));
        }
        let n = &self.network;
        if !n.recv_buffers.is_power_of_two() {
            return Err(ConfigError::setting(
                "network.recv_buffers",
                format!("{} is not a power of two (use 512)", n.recv_buffers),
            ));
        }
        if !(512..=1 << 20).contains(&n.recv_buffer_size.0) {
            return Err(ConfigError::setting(
                "network.recv_buffer_size",
                "must be 512..=1m (default 4k)",
            ));
        }
        if !(8..=32768).contains(&n.ring_entries) {
            return Err(ConfigError::setting(
                "network.ring_entries",
                "must be 8..=32768 (default 1024)",
            ));
        }
        if n.channel_batches < 2 {
            return Err(ConfigError::setting(
                "network.channel_batches",
                "must be at least 2 (default 256)",
            ));
        }
        if n.max_pending_output.0 < 64 << 10 {
            return Err(ConfigError::setting(
                "network.max_pending_output",
                "must be at least 64k (default 4m)",
            ));
        }
        if n.reqs_per_event == 0 {
            return Err(ConfigError::setting(
                "network.reqs_per_event",
                "must be at least 1 (memcached's -R; default 20)",
            ));
        }
        if n.batch_bytes.0 < 4 << 10 {
            return Err(ConfigError::setting(
                "network.batch_bytes",
                "must be at least 4k (default 64k)",
            ));
        }
        if n.udp_max_reply.0 < 1400 {
            return Err(ConfigError::setting(
                "network.udp_max_reply",
                "must be at least one datagram, 1400 bytes (default 64k)",
            ));
        }
        if self.cluster.advertise.is_some() && self.cluster.join.is_none() {
            return Err(ConfigError(
                "--cluster-advertise is given without --cluster-join; it names this node's address for a running cluster that does not list it (cluster.advertise, cluster.join)".into(),
            ));
        }
        match (&self.cluster.join, &self.cluster.node) {
            // The list comes from the member at start-up (membership::join).
            (Some(_), Some(_)) if self.cluster.peers.trim().is_empty() => {}
            (Some(_), None) => {
                return Err(ConfigError(
                    "--cluster-join needs --cluster-node NAME, this node's name in the member's list (cluster.node)".into(),
                ));
            }
            _ => {
                self.cluster_plan()?;
            }
        }
        Ok(())
    }

    /// The cores the shards run on, one entry per shard.
    pub fn shard_cores(&self) -> Result<Vec<usize>, ConfigError> {
        let available = match &self.shards.cores {
            CoreList::All => allowed_cores(),
            CoreList::List(list) => list.clone(),
        };
        if available.is_empty() {
            return Err(ConfigError::setting(
                "shards.cores",
                "names no core this process may run on",
            ));
        }
        let plan = self.cluster_plan()?;
        // A cluster node's CAS values hold fewer bits of shard id than one
        // node's (cluster::CAS_SHARD_BITS).
        let max = if plan.is_some() {
            cluster::MAX_CLUSTER_SHARDS
        } else {
            1024
        };
        let count = if self.shards.count == 0 {
            // One shard per core, but no more than the memory limit can give
            // two slab pages each (the least a store runs with): `-m 3` on a
            // many-core host runs one shard rather than refusing to start or
            // holding more than `-m`. An explicit count is honoured or refused.
            let page = self.slab_page() as u64;
            let fits = ((self.memory.limit_mb << 20) / (2 * page)).max(1) as usize;
            available.len().min(fits).min(max)
        } else {
            self.shards.count
        };
        if count > 1024 {
            return Err(ConfigError::setting(
                "shards.count",
                format!("{count} is more than 1024 (use -t <= cores)"),
            ));
        }
        if count > max {
            return Err(ConfigError::setting(
                "shards.count",
                format!(
                    "{count} is more than a cluster node runs ({max}: CAS values carry {} bits of shard id; use -t <= {max})",
                    cluster::CAS_SHARD_BITS
                ),
            ));
        }
        // Several nodes of one cluster on one host (tests, small set-ups) would
        // otherwise all pin their shards to the first allowed cores: with
        // "all", node k starts k * count cores further on, so `-t 1` nodes
        // spread over the allowed set (`taskset` narrows it).
        let offset = match (&self.shards.cores, plan) {
            (CoreList::All, Some(plan)) => plan.peers.this_node * count,
            _ => 0,
        };
        // More shards than cores share cores round-robin, as memcached's -t may exceed the core count.
        Ok((0..count)
            .map(|i| available[(offset + i) % available.len()])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_count_a_small_memory_limit_runs_fewer_shards() {
        let mut c = Config::default();
        c.shards.cores = CoreList::List(vec![0, 1, 2, 3]);
        c.memory.limit_mb = 64;
        assert_eq!(c.shard_cores().unwrap().len(), 4);
        // Two 1 MiB pages per shard: 3 MiB is room for one shard.
        c.memory.limit_mb = 3;
        assert_eq!(c.shard_cores().unwrap(), vec![0]);
        c.memory.limit_mb = 5;
        assert_eq!(c.shard_cores().unwrap(), vec![0, 1]);
        // An explicit count is not second-guessed here (the store refuses it).
        c.shards.count = 4;
        assert_eq!(c.shard_cores().unwrap().len(), 4);
    }

    #[test]
    fn defaults_are_memcached_like_and_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.server.port, 11211);
        assert_eq!(c.server.udp_port, 0);
        assert_eq!(c.server.listen, vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!(c.memory.limit_mb, 64);
        assert_eq!(c.limits.max_item_size.0, 1 << 20);
        assert_eq!(c.limits.max_key_length, 250);
    }

    #[test]
    fn printed_config_reads_back_identical() {
        let mut c = Config::default();
        c.server.port = 1234;
        c.memory.hugepages = HugePages::Try;
        c.shards.cores = CoreList::List(vec![0, 2, 3]);
        c.server.unix_socket = Some("/run/corecache.sock".into());
        c.server.unix_mask = UnixMask(0o755);
        c.server.idle_timeout = 30;
        c.network.reqs_per_event = 5;
        let text = c.to_toml();
        assert!(text.contains("unix_mask = \"0755\""), "{text}");
        assert_eq!(Config::from_toml(&text).unwrap(), c);
    }

    #[test]
    fn unix_masks_are_octal_permission_bits() {
        assert_eq!("700".parse::<UnixMask>().unwrap(), UnixMask(0o700));
        assert_eq!("0660".parse::<UnixMask>().unwrap(), UnixMask(0o660));
        assert_eq!("0".parse::<UnixMask>().unwrap(), UnixMask(0));
        for bad in ["8", "0x700", "1000", "", "rw"] {
            let err = bad.parse::<UnixMask>().unwrap_err();
            assert!(err.0.contains("server.unix_mask"), "{bad}: {err}");
        }
        let err = Config::from_toml("[server]\nunix_mask = \"999\"\n").unwrap_err();
        assert!(err.0.contains("unix_mask"), "{err}");
    }

    #[test]
    fn socket_paths_and_request_budgets_are_bounded() {
        let mut c = Config::default();
        c.server.unix_socket = Some("/tmp/x".repeat(20).into());
        assert!(c.validate().unwrap_err().0.contains("server.unix_socket"));
        let mut c = Config::default();
        c.network.reqs_per_event = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .0
                .contains("network.reqs_per_event")
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = Config::from_toml("[server]\nport = 1\nprot = 2\n").unwrap_err();
        assert!(err.0.contains("line 3"), "{err}");
        assert!(err.0.contains("prot"), "{err}");
        assert!(!err.0.contains('\n'));
        let err = Config::from_toml("[sever]\n").unwrap_err();
        assert!(err.0.contains("sever"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_setting_name() {
        let err = Config::from_toml("[memory]\nhugepages = \"maybe\"\n").unwrap_err();
        assert!(err.0.contains("maybe"), "{err}");
        let mut c = Config::default();
        c.memory.growth_factor = 0.9;
        assert!(c.validate().unwrap_err().0.contains("memory.growth_factor"));
        let mut c = Config::default();
        c.limits.max_item_size = ByteSize(128 << 20);
        assert!(c.validate().unwrap_err().0.contains("limits.max_item_size"));
        let mut c = Config::default();
        c.network.recv_buffers = 1000;
        assert!(c.validate().unwrap_err().0.contains("network.recv_buffers"));
    }

    #[test]
    fn every_shipped_tuning_profile_loads_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c =
                    Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                c.validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 4, "profiles missing from {}", dir.display());
        // default.toml is exactly the embedded defaults.
        assert_eq!(
            Config::from_file(&dir.join("default.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn cluster_nodes_with_all_cores_spread_their_shards() {
        let mut c = Config::default();
        c.shards.count = 1;
        c.cluster.node = Some("b".into());
        c.cluster.peers = "a=127.0.0.1:7001,b=127.0.0.1:7002,c=127.0.0.1:7003".into();
        let allowed = allowed_cores();
        assert_eq!(c.shard_cores().unwrap(), vec![allowed[1 % allowed.len()]]);
        // An explicit list is the operator's choice: used as given.
        c.shards.cores = CoreList::List(vec![5]);
        assert_eq!(c.shard_cores().unwrap(), vec![5]);
    }

    #[test]
    fn shard_cores_wrap_when_shards_exceed_cores() {
        let mut c = Config::default();
        c.shards.cores = CoreList::List(vec![4, 5]);
        c.shards.count = 3;
        assert_eq!(c.shard_cores().unwrap(), vec![4, 5, 4]);
        c.shards.count = 0;
        assert_eq!(c.shard_cores().unwrap(), vec![4, 5]);
    }
}
