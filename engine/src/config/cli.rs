//! The command line: memcached's flags where they mean the same thing, so that
//! scripts written for memcached start corecache unchanged, plus corecache's
//! own. Flags override the config file.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

use super::cluster::{AckMode, MembershipMode, ReadFrom, RingName, parse_resync_rate};
use super::{
    ByteSize, Config, ConfigError, CoreList, Eviction, HugePages, Numa, Protocol, UnixMask, VERSION,
};

#[derive(Debug, Default, Parser)]
#[command(
    name = "corecache",
    version = VERSION,
    about = "A memcached-compatible, thread-per-core cache server on io_uring",
    disable_version_flag = true
)]
pub struct Cli {
    /// Read settings from this TOML file; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Print the version and exit.
    #[arg(short = 'V', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    /// TCP port to listen on (default 11211; 0 picks a free port).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// UDP port to listen on (default 0: off).
    #[arg(short = 'U', long = "udp-port")]
    pub udp_port: Option<u16>,
    /// Interface(s) to listen on, comma separated or repeated (default 127.0.0.1).
    #[arg(short = 'l', long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Item memory in megabytes (default 64).
    #[arg(short = 'm', long = "memory-limit")]
    pub memory_mb: Option<u64>,
    /// Max simultaneous connections (default 1024).
    #[arg(short = 'c', long = "conn-limit")]
    pub max_connections: Option<usize>,
    /// Number of shards, one thread each (default: one per core we may run on).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Max item size, e.g. 1m, 512k (default 1m).
    #[arg(short = 'I', long = "max-item-size")]
    pub max_item_size: Option<ByteSize>,
    /// Verbose logging; repeat for more (-vv, -vvv).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Honour the `shutdown` command.
    #[arg(short = 'A', long = "enable-shutdown")]
    pub enable_shutdown: bool,
    /// Return errors instead of evicting when memory is full.
    #[arg(short = 'M', long = "disable-evictions")]
    pub disable_evictions: bool,
    /// Refuse the flush_all command.
    #[arg(short = 'F', long = "disable-flush-all")]
    pub disable_flush_all: bool,
    /// Size-class growth factor.
    #[arg(short = 'f', long = "slab-growth-factor")]
    pub growth_factor: Option<f64>,
    /// Listen backlog (default 1024).
    #[arg(short = 'b', long = "listen-backlog")]
    pub backlog: Option<i32>,
    /// Write the process id to this file.
    #[arg(short = 'P', long = "pidfile")]
    pub pidfile: Option<String>,
    /// Try to use large memory pages (same as --hugepages try).
    #[arg(short = 'L', long = "enable-largepages")]
    pub largepages: bool,
    /// Listen on this unix socket instead of TCP and UDP (-p, -U, -l are then unused).
    #[arg(short = 's', long = "unix-socket", value_name = "FILE")]
    pub unix_socket: Option<PathBuf>,
    /// Permissions of the unix socket file, in octal (default 0700).
    #[arg(short = 'a', long = "unix-mask", value_name = "MASK")]
    pub unix_mask: Option<UnixMask>,
    /// Requests a connection may run per loop turn while others wait (default 20).
    #[arg(short = 'R', long = "max-reqs-per-event", value_name = "N")]
    pub max_reqs_per_event: Option<u32>,
    /// memcached extended options, comma separated or repeated; idle_timeout=N
    /// (seconds, 0 = off) closes idle connections; the rest are ignored with a warning.
    #[arg(short = 'o', long = "extended", value_name = "OPT")]
    pub extended: Vec<String>,

    /// Cores to run shards on: "all", or a list such as 0-3,6.
    #[arg(long)]
    pub cores: Option<CoreList>,
    /// Hugepage backing of the item arena: off, try or on.
    #[arg(long, value_parser = parse_name::<HugePages>)]
    pub hugepages: Option<HugePages>,
    /// NUMA placement of the item arena: off or local.
    #[arg(long, value_parser = parse_name::<Numa>)]
    pub numa: Option<Numa>,
    /// Eviction policy when memory is full: lru, clock, s3fifo, lfu, fifo or random.
    #[arg(long, value_parser = parse_name::<Eviction>)]
    pub eviction: Option<Eviction>,

    /// This node's name in --cluster-peers (turns the cluster on).
    #[arg(long, value_name = "NAME")]
    pub cluster_node: Option<String>,
    /// Every node of the cluster, this one included: NAME=HOST:PORT[:WEIGHT],...
    #[arg(long, value_name = "LIST")]
    pub cluster_peers: Option<String>,
    /// Instead of --cluster-peers: a running member's memcached address, to take the
    /// member list, ring, replicas and membership mode from at start-up.
    #[arg(long, value_name = "HOST:PORT")]
    pub cluster_join: Option<String>,
    /// With --cluster-join, for a node the member's list does not name: this
    /// node's memcached address as clients write it, added to the list.
    #[arg(long, value_name = "HOST:PORT[:WEIGHT]")]
    pub cluster_advertise: Option<String>,
    /// Key placement: libketama (default) or libmemcached-ketama.
    #[arg(long, value_name = "KIND")]
    pub cluster_ring: Option<RingName>,
    /// Forward requests for other nodes' keys: on (default) or off.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub cluster_forward: Option<bool>,
    /// Peer links in TLS when -Z is on: on (default) or off.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub cluster_tls: Option<bool>,
    /// How members are known: gossip (default: SWIM over UDP, the ring
    /// follows the live members) or static (the list is the ring).
    #[arg(long, value_name = "gossip|static", value_parser = parse_name::<MembershipMode>)]
    pub cluster_membership: Option<MembershipMode>,
    /// This node's gossip UDP port (default the data port + 1000).
    #[arg(long, value_name = "PORT")]
    pub cluster_port: Option<u16>,
    /// Copies of every key: its owner and the next R-1 live nodes (default 1).
    #[arg(long, value_name = "R")]
    pub replicas: Option<usize>,
    /// When a replicated write is answered: all (default: every live
    /// replica applied it) or owner (the copies follow asynchronously).
    #[arg(long, value_name = "owner|all", value_parser = parse_name::<AckMode>)]
    pub replication_ack: Option<AckMode>,
    /// Where reads of a replicated key are served: owner (default) or any
    /// live replica.
    #[arg(long, value_name = "owner|any", value_parser = parse_name::<ReadFrom>)]
    pub cluster_read_from: Option<ReadFrom>,
    /// For this many seconds after start, a miss on a key this node owns
    /// reads through from its previous owner (default 120; 0 = off).
    #[arg(long, value_name = "SECS")]
    pub cluster_warmup: Option<u32>,
    /// Re-sync records per second this node ships to a member that comes
    /// back, all shards together (default 50000; 0 = no limit).
    #[arg(long, value_name = "RECORDS/S", allow_negative_numbers = true, value_parser = parse_resync_rate)]
    pub cluster_resync_rate: Option<u64>,

    /// Serve HTTP (REST, /metrics, /stats, status page) on this port (0 picks a free one).
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Address of the HTTP port (default: the first -l address).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<std::net::IpAddr>,
    /// Require `Authorization: Bearer TOKEN` on every HTTP path but /health.
    #[arg(long, value_name = "TOKEN")]
    pub http_token: Option<String>,
    /// Read the HTTP bearer token from FILE (one token; re-read on SIGHUP).
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,

    // memcached flags accepted for compatibility; each is explained in a warning.
    #[arg(short = 'd', long = "daemon", hide = true)]
    pub daemon: bool,
    #[arg(short = 'r', long = "enable-coredumps", hide = true)]
    pub coredumps: bool,
    #[arg(short = 'u', long = "user", hide = true)]
    pub user: Option<String>,
    #[arg(short = 'k', long = "lock-memory", hide = true)]
    pub lock_memory: bool,
    #[arg(short = 'i', long = "license", hide = true)]
    pub license: bool,
    #[arg(short = 'n', long = "slab-min-size", hide = true)]
    pub slab_min_size: Option<u64>,
    #[arg(short = 'D', hide = true)]
    pub prefix_delimiter: Option<String>,
    /// Disable CAS: items carry CAS 0 and flush_all cuts by whole seconds.
    #[arg(short = 'C', long = "disable-cas")]
    pub disable_cas: bool,
    /// Protocol clients speak: auto (binary or text by the first byte), ascii or binary.
    #[arg(short = 'B', long = "protocol", value_parser = parse_name::<Protocol>)]
    pub protocol: Option<Protocol>,
    #[arg(short = 'X', long = "disable-dumping", hide = true)]
    pub disable_dumping: bool,
    /// Refuse `watch` (log watchers).
    #[arg(short = 'W', long = "disable-watch")]
    pub disable_watch: bool,
    /// Keep item memory in this file (tmpfs or DAX) and restart warm from it (SIGUSR1).
    #[arg(short = 'e', long = "memory-file", value_name = "PATH")]
    pub memory_file: Option<String>,
    #[arg(short = 'N', long = "napi-ids", hide = true)]
    pub napi_ids: Option<String>,
    /// SASL PLAIN in the binary protocol, against MEMCACHED_SASL_PWDB (user:password lines).
    #[arg(short = 'S', long = "enable-sasl")]
    pub sasl: bool,
    /// ascii authentication: clients first send a set whose data is "user password" from FILE.
    #[arg(short = 'Y', long = "auth-file", value_name = "FILE")]
    pub auth_file: Option<String>,
    /// TLS is refused: ignoring it would silently drop security.
    /// TLS on the TCP listeners (memcached's enable-ssl; -o ssl_chain_cert=,
    /// ssl_key=, ssl_ca_cert=, ssl_verify_mode=, ssl_min_version=,
    /// ssl_session_cache, ssl_ciphers=; -l notls:ADDR:PORT for a plain one).
    #[arg(short = 'Z', long = "enable-ssl")]
    pub ssl: bool,
}

impl Cli {
    /// Builds the effective configuration: defaults, then the file, then the
    /// flags. Returns it with the warnings to log once logging is up.
    pub fn into_config(self) -> Result<(Config, Vec<String>), ConfigError> {
        self.build()
    }

    /// As [`Cli::into_config`], keeping the flags: SIGHUP builds the
    /// configuration again from a fresh read of the file and the same flags.
    pub fn build(&self) -> Result<(Config, Vec<String>), ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let mut warnings = Vec::new();
        self.apply(&mut config, &mut warnings)?;
        config.validate()?;
        Ok((config, warnings))
    }

    fn apply(&self, c: &mut Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        if let Some(p) = self.port {
            c.server.port = p;
        }
        if let Some(p) = self.udp_port {
            c.server.udp_port = p;
        }
        if self.ssl {
            c.tls.enabled = true;
        }
        if !self.listen.is_empty() {
            c.server.listen = parse_listen(&self.listen, c, warnings)?;
        }
        if let Some(m) = self.memory_mb {
            c.memory.limit_mb = m;
        }
        if let Some(f) = &self.memory_file {
            c.memory.file = Some(f.clone());
        }
        if let Some(n) = self.max_connections {
            c.server.max_connections = n;
        }
        if let Some(t) = self.threads {
            if t == 0 {
                return Err(ConfigError(
                    "invalid setting -t: must be at least 1 (use -t 4)".into(),
                ));
            }
            c.shards.count = t;
        }
        if let Some(i) = self.max_item_size {
            c.limits.max_item_size = i;
        }
        if self.verbose > 0 {
            c.server.verbosity = self.verbose;
        }
        c.server.enable_shutdown |= self.enable_shutdown;
        c.server.disable_evictions |= self.disable_evictions;
        c.server.disable_cas |= self.disable_cas;
        c.server.disable_flush_all |= self.disable_flush_all;
        if self.disable_watch {
            c.server.watch = false;
        }
        if let Some(f) = self.growth_factor {
            c.memory.growth_factor = f;
        }
        if let Some(b) = self.backlog {
            c.server.backlog = b;
        }
        if let Some(p) = &self.pidfile {
            c.server.pidfile = Some(p.clone());
        }
        if self.largepages {
            c.memory.hugepages = HugePages::Try;
        }
        if let Some(cores) = &self.cores {
            c.shards.cores = cores.clone();
        }
        if let Some(h) = self.hugepages {
            c.memory.hugepages = h;
        }
        if let Some(n) = self.numa {
            c.memory.numa = n;
        }
        if let Some(e) = self.eviction {
            c.memory.eviction = e;
        }
        if let Some(n) = &self.cluster_node {
            c.cluster.node = Some(n.clone());
        }
        if let Some(p) = &self.cluster_peers {
            c.cluster.peers = p.clone();
        }
        if let Some(j) = &self.cluster_join {
            c.cluster.join = Some(j.clone());
        }
        if let Some(a) = &self.cluster_advertise {
            c.cluster.advertise = Some(a.clone());
        }
        if let Some(r) = self.cluster_ring {
            c.cluster.ring = r;
        }
        if let Some(f) = self.cluster_forward {
            c.cluster.forward = f;
        }
        if let Some(t) = self.cluster_tls {
            c.cluster.tls = t;
        }
        if let Some(m) = self.cluster_membership {
            c.cluster.membership = m;
        }
        if let Some(p) = self.cluster_port {
            c.cluster.port = Some(p);
        }
        if let Some(r) = self.replicas {
            c.cluster.replicas = r;
        }
        if let Some(a) = self.replication_ack {
            c.cluster.replication_ack = a;
        }
        if let Some(r) = self.cluster_read_from {
            c.cluster.read_from = r;
        }
        if let Some(w) = self.cluster_warmup {
            c.cluster.warmup_secs = w;
        }
        if let Some(r) = self.cluster_resync_rate {
            c.cluster.resync_rate = r;
        }
        if let Some(p) = self.http_port {
            c.http.port = Some(p);
        }
        if let Some(a) = self.http_listen {
            c.http.listen = Some(a);
        }
        // A token given on the command line replaces the file's, in
        // either form (the two still exclude each other on one line).
        if self.http_token.is_some() || self.http_token_file.is_some() {
            c.http.token = self.http_token.clone();
            c.http.token_file = self.http_token_file.clone();
        }
        if let Some(p) = self.protocol {
            c.server.protocol = p;
        }
        if let Some(f) = &self.auth_file {
            c.server.auth_file = Some(f.clone());
        }
        if self.sasl {
            c.server.sasl = true;
            if c.server.sasl_pwdb.is_none() {
                c.server.sasl_pwdb = std::env::var("MEMCACHED_SASL_PWDB").ok();
            }
        }
        if let Some(path) = &self.unix_socket {
            c.server.unix_socket = Some(path.clone());
        }
        if let Some(mask) = self.unix_mask {
            c.server.unix_mask = mask;
        }
        if let Some(n) = self.max_reqs_per_event {
            if n == 0 {
                // memcached's own refusal.
                return Err(ConfigError(
                    "invalid setting -R: number of requests per event must be greater than 0"
                        .into(),
                ));
            }
            c.network.reqs_per_event = n;
        }
        if c.server.unix_socket.is_some() {
            // memcached serves nothing but the socket then, silently; say so.
            let unused = [
                (self.port.is_some(), "-p"),
                (self.udp_port.is_some_and(|p| p != 0), "-U"),
                (!self.listen.is_empty(), "-l"),
            ];
            for (given, flag) in unused {
                if given {
                    warnings.push(format!(
                        "{flag}: with -s only the unix socket is served (as memcached); ignored"
                    ));
                }
            }
        }
        self.warn_ignored(warnings);
        for opts in &self.extended {
            for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                apply_extended(opt, c, warnings)?;
            }
        }
        Ok(())
    }

    fn warn_ignored(&self, warnings: &mut Vec<String>) {
        let ignored: [(bool, &str); 9] = [
            (
                self.daemon,
                "-d: corecache runs in the foreground (use your service manager); ignored",
            ),
            (
                self.coredumps,
                "-r: core file limit left as the environment sets it; ignored",
            ),
            (
                self.user.is_some(),
                "-u: corecache does not change user (run it as the user you want); ignored",
            ),
            (
                self.lock_memory,
                "-k: memory locking is not supported; ignored",
            ),
            (
                self.license,
                "-i: corecache is Apache-2.0 licensed; ignored",
            ),
            (
                self.slab_min_size.is_some(),
                "-n: size classes are chosen by corecache's store; ignored",
            ),
            (
                self.prefix_delimiter.is_some(),
                "-D: per-prefix stats are not supported; ignored",
            ),
            (
                self.disable_dumping,
                "-X: cachedump and metadump are not served anyway; ignored",
            ),
            (
                self.napi_ids.is_some(),
                "-N: NAPI ids are not supported; ignored",
            ),
        ];
        warnings.extend(
            ignored
                .iter()
                .filter(|(given, _)| *given)
                .map(|(_, w)| w.to_string()),
        );
    }
}

/// One memcached `-o` option: those corecache implements set their setting,
/// the rest are named in a warning.
fn apply_extended(
    opt: &str,
    c: &mut Config,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
    match name {
        "ssl_chain_cert" => c.tls.chain_cert = Some(value.into()),
        "ssl_key" => c.tls.key = Some(value.into()),
        "ssl_ca_cert" => c.tls.ca_cert = Some(value.into()),
        "ssl_ciphers" => c.tls.ciphers = Some(value.into()),
        "ssl_session_cache" => c.tls.session_cache = true,
        "ssl_kernel_tls" => {
            c.tls.kernel_tls = true;
            warnings.push(format!(
                "-o ssl_kernel_tls: kernel TLS offload is not built (this kernel {} the tls ULP); connections use rustls on the shard loop",
                if crate::tls::kernel_tls_available() { "offers" } else { "lacks" }
            ));
        }
        "ssl_verify_mode" | "ssl_min_version" | "ssl_wbuf_size" => {
            let n: u32 = value.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "invalid setting -o {name}: {value:?} is not a number"
                ))
            })?;
            match name {
                "ssl_verify_mode" if n <= 3 => c.tls.verify_mode = n as u8,
                "ssl_min_version" if n <= 3 => {
                    if let Ok((_, Some(w))) = crate::tls::MinVersion::from_memcached(value.trim()) {
                        warnings.push(w);
                    }
                    c.tls.min_version = n as u8;
                }
                "ssl_wbuf_size" => c.tls.wbuf_size_kb = n,
                _ => {
                    return Err(ConfigError(format!(
                        "invalid setting -o {name}: must be 0..3, not {n}"
                    )));
                }
            }
        }
        "debug_time" if value.is_empty() => c.server.debug_time = true,
        "debug_time" => {
            return Err(ConfigError(format!(
                "invalid setting -o debug_time: takes no value, not {value:?} (use -o debug_time)"
            )));
        }
        "lru_crawler" => c.memory.lru_crawler = true,
        "no_lru_crawler" => c.memory.lru_crawler = false,
        "no_modern" => {
            c.memory.lru_crawler = false;
            warnings.push(
                "-o no_modern: turns the LRU crawler off; memcached's other pre-1.5 modes have no effect in corecache"
                    .to_string(),
            );
        }
        "watcher_logbuf_size" => {
            c.server.watcher_logbuf_kb = match value.trim().parse() {
                Ok(kb) if kb > 0 => kb,
                _ => {
                    return Err(ConfigError(format!(
                        "invalid setting -o watcher_logbuf_size: {value:?} is not a size in KiB (use -o watcher_logbuf_size=256)"
                    )));
                }
            };
        }
        "idle_timeout" => {
            c.server.idle_timeout = value.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "invalid setting -o idle_timeout: {value:?} is not a number of seconds (use -o idle_timeout=600, 0 = off)"
                ))
            })?;
        }
        _ => warnings.push(format!(
            "-o {opt}: memcached extended option has no effect in corecache; ignored"
        )),
    }
    Ok(())
}

/// A setting's value by its config-file name ("try", "s3fifo", ...).
fn parse_name<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    T::deserialize(s.into_deserializer()).map_err(|e: serde::de::value::Error| e.to_string())
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?} is neither on nor off")),
    }
}

/// memcached's -l: comma separated, repeatable, each `addr` or `addr:port`
/// (a port here sets the TCP port, as memcached does for a single listener).
fn parse_listen(
    values: &[String],
    c: &mut Config,
    warnings: &mut Vec<String>,
) -> Result<Vec<IpAddr>, ConfigError> {
    let mut addrs = Vec::new();
    for item in values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(plain) = item.strip_prefix("notls:") {
            // Its own port: on the TLS listeners' port it would share their
            // SO_REUSEPORT group and take a random share of their clients.
            let addr = plain
                .parse::<std::net::SocketAddr>()
                .ok()
                .filter(|a| a.port() != 0)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "invalid setting -l: {item:?} is not notls:ADDR:PORT (use -l notls:127.0.0.1:11212)"
                    ))
                })?;
            c.tls.plain.push(addr);
            continue;
        }
        let bad = || {
            ConfigError(format!(
                "invalid setting -l: {item:?} is not an IP address (use -l 127.0.0.1)"
            ))
        };
        let addr: IpAddr = if let Ok(a) = item.trim_matches(|ch| ch == '[' || ch == ']').parse() {
            a
        } else if let Ok(sa) = item.parse::<std::net::SocketAddr>() {
            if sa.port() != c.server.port && !addrs.is_empty() {
                warnings.push(format!(
                    "-l {item}: one TCP port serves every address; using {}",
                    sa.port()
                ));
            }
            c.server.port = sa.port();
            sa.ip()
        } else if item == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            return Err(bad());
        };
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(ConfigError(
            "invalid setting -l: no address given (use -l 127.0.0.1)".into(),
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<(Config, Vec<String>), ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("corecache").chain(args.iter().copied()))
            .map_err(|e| ConfigError(e.to_string()))?;
        cli.into_config()
    }

    #[test]
    fn memcached_flags_mean_the_same() {
        let (c, warnings) = config(&[
            "-p", "11311", "-U", "11312", "-m", "128", "-c", "4096", "-t", "2", "-I", "512k",
            "-vv", "-A",
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.server.port, 11311);
        assert_eq!(c.server.udp_port, 11312);
        assert_eq!(c.memory.limit_mb, 128);
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.shards.count, 2);
        assert_eq!(c.limits.max_item_size.0, 512 << 10);
        assert_eq!(c.server.verbosity, 2);
        assert!(c.server.enable_shutdown);
    }

    #[test]
    fn listen_takes_lists_and_host_port() {
        let (c, _) = config(&["-l", "127.0.0.1,127.0.0.2", "-l", "::1"]).unwrap();
        assert_eq!(c.server.listen.len(), 3);
        let (c, _) = config(&["-l", "127.0.0.1:7000"]).unwrap();
        assert_eq!(c.server.port, 7000);
        assert!(config(&["-l", "nowhere"]).is_err());
    }

    #[test]
    fn other_memcached_flags_start_with_warnings() {
        let (c, warnings) = config(&[
            "-d",
            "-u",
            "memcache",
            "-C",
            "-R",
            "20",
            "-o",
            "modern,hashpower=20",
            "-L",
        ])
        .unwrap();
        assert_eq!(c.memory.hugepages, HugePages::Try);
        // -C is served (server.disable_cas), so it warns no more.
        assert!(c.server.disable_cas);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("hashpower=20")));
    }

    #[test]
    fn debug_time_is_off_unless_asked_for() {
        assert!(!config(&[]).unwrap().0.server.debug_time);
        let (c, warnings) = config(&["-o", "debug_time"]).unwrap();
        assert!(c.server.debug_time);
        assert!(warnings.is_empty(), "{warnings:?}");
        let err = config(&["-o", "debug_time=no"]).unwrap_err();
        assert!(err.0.contains("takes no value"), "{err}");
    }

    #[test]
    fn protocol_flag_takes_memcacheds_names() {
        for (name, want) in [
            ("auto", Protocol::Auto),
            ("ascii", Protocol::Ascii),
            ("binary", Protocol::Binary),
        ] {
            assert_eq!(config(&["-B", name]).unwrap().0.server.protocol, want);
        }
        assert_eq!(config(&[]).unwrap().0.server.protocol, Protocol::Auto);
        assert!(config(&["-B", "both"]).is_err());
    }

    #[test]
    fn tls_takes_memcached_flags_and_authentication_settings_are_checked() {
        assert!(config(&["-Z"]).unwrap_err().0.contains("ssl_chain_cert"));
        let (c, w) = config(&[
            "-Z",
            "-o",
            "ssl_chain_cert=/c.pem",
            "-o",
            "ssl_key=/k.pem",
            "-o",
            "ssl_verify_mode=2",
            "-o",
            "ssl_ca_cert=/ca.pem",
            "-o",
            "ssl_min_version=1",
            "-o",
            "ssl_session_cache",
            "-o",
            "ssl_wbuf_size=64",
            "-l",
            "notls:127.0.0.1:7001,127.0.0.1:7002",
        ])
        .unwrap();
        assert!(c.tls.enabled && c.tls.session_cache);
        assert_eq!(c.tls.verify_mode, 2);
        assert_eq!(c.tls.min_version, 1);
        assert_eq!(c.tls.wbuf_size_kb, 64);
        assert_eq!(c.tls.plain, vec!["127.0.0.1:7001".parse().unwrap()]);
        assert_eq!(c.server.port, 7002);
        assert!(
            w.iter().any(|w| w.contains("TLS 1.2 is the minimum")),
            "{w:?}"
        );
        assert!(config(&["-o", "ssl_verify_mode=4"]).is_err());
        assert!(config(&["-l", "notls:127.0.0.1"]).is_err());
        assert!(
            config(&[
                "-Z",
                "-o",
                "ssl_chain_cert=/c",
                "-o",
                "ssl_key=/k",
                "-o",
                "ssl_ciphers=RC4-MD5"
            ])
            .unwrap_err()
            .0
            .contains("unknown cipher")
        );
        let (c, _) = config(&["-Y", "/etc/pw"]).unwrap();
        assert_eq!(c.server.auth_file.as_deref(), Some("/etc/pw"));
        assert_eq!(c.wire_protocol(), Protocol::Ascii);
        for (args, says) in [
            (&["-Y", "f", "-B", "binary"][..], "binary protocol"),
            (&["-Y", "f", "-U", "11211"][..], "UDP"),
            (&["-Y", "f", "-S"][..], "exclude each other"),
            (&["-S", "-B", "ascii"][..], "ascii protocol"),
        ] {
            let err = config(args).unwrap_err();
            assert!(err.0.contains(says), "{args:?}: {err}");
        }
        let mut c = Config::default();
        c.server.sasl = true;
        assert!(c.validate().unwrap_err().0.contains("MEMCACHED_SASL_PWDB"));
        c.server.sasl_pwdb = Some("/etc/sasl".into());
        c.validate().unwrap();
        assert_eq!(c.wire_protocol(), Protocol::Binary);
    }

    #[test]
    fn the_lru_crawler_is_turned_off_as_in_memcached() {
        assert!(config(&[]).unwrap().0.memory.lru_crawler);
        let (c, warnings) = config(&["-o", "no_lru_crawler"]).unwrap();
        assert!(!c.memory.lru_crawler && warnings.is_empty(), "{warnings:?}");
        let (c, warnings) = config(&["-o", "no_modern"]).unwrap();
        assert!(!c.memory.lru_crawler);
        assert!(warnings[0].contains("no_modern"), "{warnings:?}");
        let (c, _) = config(&["-o", "no_lru_crawler,lru_crawler"]).unwrap();
        assert!(c.memory.lru_crawler);
    }

    #[test]
    fn watcher_buffer_and_disable_watch() {
        let (c, _) = config(&["-o", "watcher_logbuf_size=8"]).unwrap();
        assert_eq!((c.server.watcher_logbuf_kb, c.server.watch), (8, true));
        let (c, _) = config(&["-W"]).unwrap();
        assert_eq!((c.server.watcher_logbuf_kb, c.server.watch), (256, false));
        for bad in ["watcher_logbuf_size=0", "watcher_logbuf_size=lots"] {
            let err = config(&["-o", bad]).unwrap_err();
            assert!(err.0.contains("watcher_logbuf_size"), "{err}");
        }
    }

    #[test]
    fn unix_socket_idle_timeout_and_requests_per_event() {
        let (c, warnings) = config(&[
            "-s",
            "/tmp/cc.sock",
            "-a",
            "0755",
            "-R",
            "3",
            "-o",
            "modern,idle_timeout=7",
        ])
        .unwrap();
        assert_eq!(c.server.unix_socket, Some(PathBuf::from("/tmp/cc.sock")));
        assert_eq!(c.server.unix_mask, UnixMask(0o755));
        assert_eq!(c.network.reqs_per_event, 3);
        assert_eq!(c.server.idle_timeout, 7);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let (c, _) = config(&[]).unwrap();
        assert_eq!(c.server.unix_socket, None);
        assert_eq!(c.server.unix_mask, UnixMask(0o700));
        assert_eq!((c.network.reqs_per_event, c.server.idle_timeout), (20, 0));
        // memcached ignores -p, -U and -l next to -s; we say so.
        let (_, warnings) = config(&["-s", "/tmp/cc.sock", "-p", "7000", "-l", "::1"]).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(config(&["-R", "0"]).unwrap_err().0.contains("-R"));
        assert!(config(&["-a", "9"]).is_err());
        let err = config(&["-o", "idle_timeout=soon"]).unwrap_err();
        assert!(err.0.contains("idle_timeout"), "{err}");
    }

    #[test]
    fn help_names_unix_socket_only_because_it_is_served() {
        // memcached's test suite reads `-h` for this word to test over unix sockets.
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("--unix-socket"), "{help}");
    }

    #[test]
    fn own_flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("corecache-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[server]\nport = 5000\n[memory]\nlimit_mb = 32\neviction = \"lru\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let (c, _) = config(&[
            "--config",
            path,
            "-p",
            "6000",
            "--cores",
            "0",
            "--eviction",
            "clock",
        ])
        .unwrap();
        assert_eq!(c.server.port, 6000);
        assert_eq!(c.memory.limit_mb, 32);
        assert_eq!(c.memory.eviction, Eviction::Clock);
        assert_eq!(c.shards.cores, CoreList::List(vec![0]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cluster_flags_fill_the_section() {
        let (c, _) = config(&[
            "--cluster-node",
            "b",
            "--cluster-peers",
            "a=127.0.0.1:7001,b=127.0.0.1:7002",
            "--cluster-ring",
            "libmemcached-ketama",
            "--cluster-forward",
            "off",
            "--cluster-resync-rate",
            "0",
        ])
        .unwrap();
        assert_eq!(c.cluster.resync_rate, 0);
        assert_eq!(c.cluster.node.as_deref(), Some("b"));
        assert!(!c.cluster.forward);
        assert_eq!(c.cluster.ring.0, cluster::RingKind::LibmemcachedKetama);
        assert!(config(&["--cluster-forward", "maybe"]).is_err());
        let err = config(&["--cluster-resync-rate", "-3"]).unwrap_err();
        assert!(err.0.contains("cluster.resync_rate is -3"), "{err}");
        let err = config(&["--cluster-node", "x", "--cluster-peers", "a=127.0.0.1:1"]).unwrap_err();
        assert!(err.0.contains("no entry for this node `x`"), "{err}");
    }

    #[test]
    fn bad_values_fail_with_the_setting_named() {
        assert!(
            config(&["-m", "0"])
                .unwrap_err()
                .0
                .contains("memory.limit_mb")
        );
        assert!(config(&["-t", "0"]).unwrap_err().0.contains("-t"));
        assert!(config(&["-I", "2k", "-m", "0"]).is_err());
        assert!(config(&["--hugepages", "sometimes"]).is_err());
    }
}
