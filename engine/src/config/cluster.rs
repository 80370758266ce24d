//! `[cluster]`: the nodes that form one cache, and how this one forwards.
//!
//! Without `node` and `peers` the server is one node, as before. With them,
//! [`Config::cluster_plan`] validates the member list (the cluster crate's
//! `Peers::parse` words every refusal as one line naming the entry and the
//! fix) and builds the ring every shard routes with.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use cluster::{Peers, Ring, RingKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ByteSize, Config, ConfigError};

/// CAS values in a cluster carry the node's index in the member list (7 bits)
/// above the shard id (7 bits), so no two shards of the cluster make one
/// value. The layout is fixed, not derived from a node's own `-t` or member
/// count: every node reads the counter out of values the others made
/// (`Store::observe_cas`), so all must agree on it.
///
/// ```text
///   63                           14 13       7 6        0
///   +------------------------------+----------+----------+
///   | counter (50 bits)            | node     | shard    |
///   +------------------------------+----------+----------+
/// ```
///
/// One node (no cluster) keeps the store's default, the shard id in 10 bits.
pub const CAS_NODE_BITS: u32 = 7;
pub const CAS_SHARD_BITS: u32 = 7;
/// The most members a cluster holds, and shards a cluster node runs.
pub const MAX_MEMBERS: usize = 1 << CAS_NODE_BITS;
pub const MAX_CLUSTER_SHARDS: usize = 1 << CAS_SHARD_BITS;

/// Unix time of 2026-01-01T00:00:00Z: with replicas, a shard's CAS counter
/// starts at the microseconds since then (`Core::start_cas_clock`). The 50
/// counter bits hold 2^50 µs, 35.7 years: the start value reaches the top in
/// September 2061, where it saturates (`CasLayout::cas`) and CAS values stop
/// being unique. Microseconds since 1970 (2^50.7) would not fit.
pub const CAS_CLOCK_EPOCH_UNIX: u64 = 1_767_225_600;

/// `[cluster]`, and the `--cluster-*` flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name in `peers` (--cluster-node).
    pub node: Option<String>,
    /// Every member, this node included: `NAME=HOST:PORT[:WEIGHT],...`, each
    /// address the memcached address clients use for that node (--cluster-peers).
    pub peers: String,
    /// Instead of `peers`: the memcached address (HOST:PORT, a plain-text
    /// listener) of a running member, whose member list, ring convention,
    /// replica count and membership mode this node takes at start-up
    /// (--cluster-join; crate::membership::join).
    pub join: Option<String>,
    /// With `join`: this node's memcached address as clients write it,
    /// `HOST:PORT[:WEIGHT]`, for a node the member's list does not name: it
    /// is added to that list at the lowest free index and the members add it
    /// from gossip (--cluster-advertise; crate::membership::join).
    pub advertise: Option<String>,
    /// Set by the join, never read from a file: the last entry of `peers`
    /// is this node's own, added to the list the member gave.
    #[serde(skip)]
    pub added: bool,
    /// The ketama convention: "libketama" (libmemcached's ketama_weighted,
    /// php-memcached's LIBKETAMA_COMPATIBLE, twemproxy's ketama/md5) or
    /// "libmemcached-ketama" (pylibmc's {"ketama": True}) (--cluster-ring).
    pub ring: RingName,
    /// Forward requests for keys another node owns (--cluster-forward on|off).
    /// Off: answer for every key sent here, for clients or proxies that place keys.
    pub forward: bool,
    /// Peer links in TLS when the memcached port is (-Z): the linking node
    /// is a TLS client of the peer's listener, verifies it against
    /// `tls.ca_cert` and presents its own certificate (--cluster-tls on|off).
    /// No effect without -Z. Off: peers must be reached at `-l notls:`
    /// listeners.
    pub tls: bool,
    /// How long a peer link may take to connect before its requests fail.
    pub connect_timeout_ms: u64,
    /// How long a forwarded request may wait for its reply before the link
    /// is dropped and its requests fail.
    pub request_timeout_ms: u64,
    /// First wait before reconnecting a failed link; doubles per failure.
    pub reconnect_backoff_ms: u64,
    /// Longest wait between reconnects.
    pub reconnect_backoff_max_ms: u64,
    /// Forwarded requests one shard may have in flight on one link.
    pub max_in_flight: usize,
    /// Request bytes one shard may have queued on one link, not yet taken by
    /// the kernel; past either bound the link is full (backpressure).
    pub max_link_output: ByteSize,
    /// How members are known: "gossip" (SWIM over UDP with foca: members are
    /// found alive or down and the ring follows) or "static" (the list is the
    /// ring, a dead member's keys fail) (--cluster-membership).
    pub membership: MembershipMode,
    /// This node's gossip UDP port (--cluster-port); by default its data
    /// port plus 1000. Every node's gossip port is its data port in `peers`
    /// plus the same offset (this node's gossip port minus its data port).
    pub port: Option<u16>,
    /// Gossip: how often a member is probed (SWIM's protocol period).
    pub probe_period_ms: u64,
    /// Gossip: how long a direct probe waits for its ack before indirect
    /// probes are sent through other members.
    pub probe_rtt_ms: u64,
    /// Gossip: how long a suspected member has to refute before it is down.
    pub suspect_to_down_ms: u64,
    /// Copies of every key: its ring owner and the next `replicas - 1` live
    /// members clockwise (--replicas; 1 = no copies).
    pub replicas: usize,
    /// When a replicated write is answered: "all" (default: after every live
    /// copy applied it) or "owner" (after the owner applied it; the copies
    /// follow asynchronously) (--replication-ack).
    pub replication_ack: AckMode,
    /// Where reads of a replicated key are served: "owner" (its acting owner)
    /// or "any" (any live replica: a node in the key's replica set answers
    /// from its own copy instead of forwarding) (--cluster-read-from).
    pub read_from: ReadFrom,
    /// Warm-up: for this many seconds after the node starts, a key it owns
    /// but does not hold is read through from the key's previous owner (the
    /// next live member clockwise) and stored here before the request runs;
    /// 0 = off (--cluster-warmup; shard/warmup.rs).
    pub warmup_secs: u32,
    /// Records per second (items and deletes) this node ships to members
    /// that come back, all its shards together; 0 = unlimited
    /// (--cluster-resync-rate; shard/resync.rs).
    #[serde(deserialize_with = "de_resync_rate")]
    pub resync_rate: u64,
}

/// `cluster.resync_rate` by default (docs/benchmarks.md, "re-sync").
pub const DEFAULT_RESYNC_RATE: u64 = 50_000;

/// The highest `cluster.resync_rate`: far above what a walk ships (a shard
/// of the 2-core bench machine ships about 450,000 records/s unlimited); a
/// larger value is a typo, and 0 already means unlimited.
pub const MAX_RESYNC_RATE: u64 = 100_000_000;

/// `cluster.resync_rate` as the flag gives it: a negative number is
/// named as such (instead of "invalid digit").
pub fn parse_resync_rate(s: &str) -> Result<u64, String> {
    let v: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of records per second (0 = no limit)"))?;
    resync_rate_of(v)
}

fn resync_rate_of(v: i64) -> Result<u64, String> {
    u64::try_from(v)
        .map_err(|_| format!("cluster.resync_rate is {v}: give records per second, 0 for no limit"))
}

fn de_resync_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    resync_rate_of(i64::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// `cluster.read_from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    Owner,
    Any,
}

/// `cluster.membership`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipMode {
    Gossip,
    Static,
}

/// `cluster.replication_ack`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// Reply once the owner has applied the write; ship it to the copies after.
    Owner,
    /// Reply once every live copy has applied it (or its link failed).
    All,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: None,
            peers: String::new(),
            join: None,
            advertise: None,
            added: false,
            ring: RingName(RingKind::Libketama),
            forward: true,
            tls: true,
            connect_timeout_ms: 1000,
            request_timeout_ms: 2000,
            reconnect_backoff_ms: 100,
            reconnect_backoff_max_ms: 5000,
            max_in_flight: 4096,
            max_link_output: ByteSize(4 << 20),
            membership: MembershipMode::Gossip,
            port: None,
            probe_period_ms: 200,
            probe_rtt_ms: 100,
            suspect_to_down_ms: 800,
            replicas: 1,
            replication_ack: AckMode::All,
            read_from: ReadFrom::Owner,
            warmup_secs: 120,
            resync_rate: DEFAULT_RESYNC_RATE,
        }
    }
}

/// A [`RingKind`] as the config file and the flag spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingName(pub RingKind);

impl std::str::FromStr for RingName {
    type Err = String;

    fn from_str(s: &str) -> Result<RingName, String> {
        RingKind::from_name(s).map(RingName).ok_or_else(|| {
            format!("{s:?} is not a ring kind (use \"libketama\" or \"libmemcached-ketama\")")
        })
    }
}

impl Serialize for RingName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for RingName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RingName, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A validated cluster: what the shards route and forward with.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub peers: Peers,
    pub ring: Ring,
    pub forward: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_in_flight: usize,
    pub max_link_output: usize,
    /// Gossip membership, `None` with `membership = "static"`.
    pub gossip: Option<GossipPlan>,
    /// Copies of every key (1: none).
    pub replicas: usize,
    /// Reads of a key served by any of its live replicas.
    pub read_any: bool,
    /// Replies to replicated writes wait for every live replica.
    pub ack_all: bool,
    /// Seconds after start during which misses read through (0 = off).
    pub warmup_secs: u32,
    /// Re-sync records per second this node ships, 0 = unlimited.
    pub resync_rate: u64,
    /// This node is not in the list it joined with: its entry (the last)
    /// was added to it (`cluster.advertise`).
    pub added: bool,
}

/// How this node gossips: its UDP port's offset from the data port (the same
/// on every node) and the SWIM timings.
#[derive(Clone, Debug)]
pub struct GossipPlan {
    /// A member's gossip port minus its data port.
    pub port_offset: i32,
    pub probe_period: Duration,
    pub probe_rtt: Duration,
    pub suspect_to_down: Duration,
}

impl ClusterPlan {
    /// The CAS layout of this node's shard `shard` (see [`CAS_NODE_BITS`]).
    pub fn cas_layout(&self, shard: usize) -> store::CasLayout {
        debug_assert!(self.peers.this_node < MAX_MEMBERS && shard < MAX_CLUSTER_SHARDS);
        store::CasLayout {
            tag: ((self.peers.this_node << CAS_SHARD_BITS) | shard) as u64,
            tag_bits: CAS_NODE_BITS + CAS_SHARD_BITS,
        }
    }

    /// The socket address of every member, by ring index, resolved once at
    /// start (a name that does not resolve is a start-up error: the ring
    /// would otherwise place keys on a node nobody can reach).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.peers
            .members
            .iter()
            .map(|m| {
                (m.host.as_str(), m.port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "--cluster-peers entry `{}` names host `{}`, which does not resolve; give an address or a name this host resolves",
                            m.name, m.host
                        ))
                    })
            })
            .collect()
    }
}

impl ClusterPlan {
    /// Every member's gossip address, by ring index, from its data address
    /// (`addrs`, as [`ClusterPlan::resolve`] gives them) and the port offset.
    pub fn gossip_addrs(&self, addrs: &[SocketAddr]) -> Result<Vec<SocketAddr>, ConfigError> {
        let Some(g) = &self.gossip else {
            return Ok(Vec::new());
        };
        addrs
            .iter()
            .zip(&self.peers.members)
            .map(|(a, m)| {
                let port = u16::try_from(i32::from(a.port()) + g.port_offset).map_err(|_| {
                    ConfigError::setting(
                        "cluster.port",
                        format!(
                            "member `{}`'s gossip port would be {} + {}, outside 1..65535; every node gossips on its data port plus the same offset",
                            m.name,
                            a.port(),
                            g.port_offset
                        ),
                    )
                })?;
                Ok(SocketAddr::new(a.ip(), port))
            })
            .collect()
    }
}

impl Config {
    /// The cluster this node belongs to, `None` for a single node; refuses a
    /// half-given or bad member list with one line.
    pub fn cluster_plan(&self) -> Result<Option<ClusterPlan>, ConfigError> {
        let c = &self.cluster;
        let node = c.node.as_deref();
        let peers = c.peers.trim();
        if c.join.is_some() {
            return Err(ConfigError(if peers.is_empty() {
                "--cluster-join is resolved when the server starts, from the running member it names".into()
            } else {
                "--cluster-peers and --cluster-join are both given; give one: the member list, or a running member to take it from (cluster.peers, cluster.join)".into()
            }));
        }
        let node = match (node, peers.is_empty()) {
            (None, true) => return Ok(None),
            (None, false) => {
                return Err(ConfigError(
                    "--cluster-peers is given without --cluster-node; name this node with --cluster-node NAME (cluster.node)".into(),
                ));
            }
            (Some(_), true) => {
                return Err(ConfigError(
                    "--cluster-node is given without --cluster-peers; list every node with --cluster-peers NAME=HOST:PORT,... (cluster.peers), or name a running member with --cluster-join HOST:PORT (cluster.join)".into(),
                ));
            }
            (Some(n), false) => n,
        };
        let parsed = Peers::parse(node, peers).map_err(|e| ConfigError(e.to_string()))?;
        if parsed.members.len() > MAX_MEMBERS {
            return Err(ConfigError::setting(
                "cluster.peers",
                format!(
                    "{} members are more than a cluster holds ({MAX_MEMBERS}: CAS values carry {CAS_NODE_BITS} bits of node index)",
                    parsed.members.len()
                ),
            ));
        }
        let ring = Ring::new(&parsed.members, c.ring.0)
            .map_err(|e| ConfigError(format!("invalid setting cluster.peers: {e}")))?;
        let ms = |name: &str, v: u64, fix: &str| {
            if v == 0 {
                Err(ConfigError::setting(
                    name,
                    format!("must be at least 1 ({fix})"),
                ))
            } else {
                Ok(Duration::from_millis(v))
            }
        };
        let gossip = match c.membership {
            MembershipMode::Static => None,
            MembershipMode::Gossip => {
                let data = i32::from(parsed.this().port);
                let port = c.port.map_or(data + 1000, i32::from);
                if port == 0 || port > 65535 {
                    return Err(ConfigError::setting(
                        "cluster.port",
                        format!(
                            "{port} is not a port; give --cluster-port 1..65535 (default the data port + 1000)"
                        ),
                    ));
                }
                Some(GossipPlan {
                    port_offset: port - data,
                    probe_period: ms("cluster.probe_period_ms", c.probe_period_ms, "default 200")?,
                    probe_rtt: ms("cluster.probe_rtt_ms", c.probe_rtt_ms, "default 100")?,
                    suspect_to_down: ms(
                        "cluster.suspect_to_down_ms",
                        c.suspect_to_down_ms,
                        "default 800",
                    )?,
                })
            }
        };
        if let Some(g) = &gossip
            && g.probe_rtt >= g.probe_period
        {
            return Err(ConfigError::setting(
                "cluster.probe_rtt_ms",
                "must be less than cluster.probe_period_ms",
            ));
        }
        if c.replicas == 0 || c.replicas > cluster::MAX_REPLICAS {
            return Err(ConfigError::setting(
                "cluster.replicas",
                format!(
                    "{} is not 1..{} (1 = no copies)",
                    c.replicas,
                    cluster::MAX_REPLICAS
                ),
            ));
        }
        if c.replicas > 1 && self.server.disable_cas {
            // A replica applies a copy only if its CAS is newer (`Y`); with
            // every CAS 0 no copy would order after another.
            return Err(ConfigError::setting(
                "server.disable_cas",
                format!(
                    "-C cannot be used with cluster.replicas = {} (replicas are ordered by CAS; drop -C or use --replicas 1)",
                    c.replicas
                ),
            ));
        }
        if c.added && gossip.is_none() {
            return Err(ConfigError::setting(
                "cluster.advertise",
                "a node outside the member list joins by gossip; the running member has static membership (its list is fixed: add this node to every member's --cluster-peers)",
            ));
        }
        let plan = ClusterPlan {
            added: c.added,
            gossip,
            replicas: c.replicas,
            read_any: c.read_from == ReadFrom::Any,
            ack_all: c.replication_ack == AckMode::All,
            warmup_secs: c.warmup_secs,
            resync_rate: c.resync_rate,
            connect_timeout: ms(
                "cluster.connect_timeout_ms",
                c.connect_timeout_ms,
                "default 1000",
            )?,
            request_timeout: ms(
                "cluster.request_timeout_ms",
                c.request_timeout_ms,
                "default 2000",
            )?,
            backoff: ms(
                "cluster.reconnect_backoff_ms",
                c.reconnect_backoff_ms,
                "default 100",
            )?,
            backoff_max: ms(
                "cluster.reconnect_backoff_max_ms",
                c.reconnect_backoff_max_ms,
                "default 5000",
            )?,
            max_in_flight: c.max_in_flight,
            max_link_output: c.max_link_output.0 as usize,
            peers: parsed,
            ring,
            forward: c.forward,
        };
        if plan.max_in_flight == 0 {
            return Err(ConfigError::setting(
                "cluster.max_in_flight",
                "must be at least 1 (default 4096)",
            ));
        }
        if plan.max_link_output < 64 << 10 {
            return Err(ConfigError::setting(
                "cluster.max_link_output",
                "must be at least 64k (default 4m)",
            ));
        }
        if plan.resync_rate > MAX_RESYNC_RATE {
            return Err(ConfigError::setting(
                "cluster.resync_rate",
                format!(
                    "{} records/s is more than a re-sync ships (at most {MAX_RESYNC_RATE}); use 0 for no limit (default {DEFAULT_RESYNC_RATE})",
                    plan.resync_rate
                ),
            ));
        }
        if plan.backoff_max < plan.backoff {
            return Err(ConfigError::setting(
                "cluster.reconnect_backoff_max_ms",
                "must be at least cluster.reconnect_backoff_ms",
            ));
        }
        Ok(Some(plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(node: Option<&str>, peers: &str) -> Config {
        let mut c = Config::default();
        c.cluster.node = node.map(str::to_string);
        c.cluster.peers = peers.to_string();
        c
    }

    #[test]
    fn no_cluster_settings_is_one_node() {
        assert!(Config::default().cluster_plan().unwrap().is_none());
        Config::default().validate().unwrap();
    }

    #[test]
    fn a_member_list_becomes_a_ring_with_this_node_in_it() {
        let c = with(
            Some("b"),
            "a=127.0.0.1:7001, b=127.0.0.1:7002:2,c=127.0.0.1:7003",
        );
        let plan = c.cluster_plan().unwrap().unwrap();
        assert_eq!(plan.peers.this_node, 1);
        assert_eq!(plan.ring.len(), 3);
        assert_eq!(plan.ring.kind(), RingKind::Libketama);
        assert!(plan.forward);
        assert_eq!(plan.request_timeout, Duration::from_secs(2));
        let addrs = plan.resolve().unwrap();
        assert_eq!(addrs[2], "127.0.0.1:7003".parse().unwrap());
    }

    #[test]
    fn cas_values_carry_the_node_and_more_than_the_layout_holds_is_refused() {
        use super::super::CoreList;
        use store::CasLayout;
        let mut c = with(
            Some("c"),
            "a=127.0.0.1:7001,b=127.0.0.1:7002,c=127.0.0.1:7003",
        );
        let plan = c.cluster_plan().unwrap().unwrap();
        let want = CasLayout {
            tag: (2 << 7) | 3,
            tag_bits: 14,
        };
        assert_eq!(plan.cas_layout(3), want);
        assert_eq!(c.store_config(3, 4, 0, 0, Some(&plan)).cas_layout(), want);
        // One node keeps the store's layout: the shard id in 10 bits.
        let one = Config::default().store_config(3, 4, 0, 0, None);
        assert_eq!(one.cas_layout, None);
        assert_eq!(one.cas_layout(), CasLayout::shard(3));

        let members = |n: usize| {
            (0..n)
                .map(|i| format!("n{i}=127.0.0.1:{}", 10000 + i))
                .collect::<Vec<_>>()
                .join(",")
        };
        let err = with(Some("n0"), &members(129)).validate().unwrap_err();
        assert!(
            err.0
                .starts_with("invalid setting cluster.peers: 129 members"),
            "{err}"
        );
        assert!(err.0.contains("128"), "{err}");
        with(Some("n127"), &members(128)).validate().unwrap();

        c.shards.cores = CoreList::List((0..200).collect());
        c.memory.limit_mb = 1024;
        c.shards.count = 129;
        let err = c.shard_cores().unwrap_err();
        assert!(
            err.0.starts_with("invalid setting shards.count: 129"),
            "{err}"
        );
        assert!(err.0.contains("use -t <= 128"), "{err}");
        c.shards.count = 128;
        assert_eq!(c.shard_cores().unwrap().len(), 128);
        // Without a count a cluster node runs at most 128 shards; one node more.
        c.shards.count = 0;
        assert_eq!(c.shard_cores().unwrap().len(), 128);
        let mut one = Config::default();
        one.shards.cores = CoreList::List((0..200).collect());
        one.memory.limit_mb = 1024;
        assert_eq!(one.shard_cores().unwrap().len(), 200);
        one.shards.count = 129;
        assert_eq!(one.shard_cores().unwrap().len(), 129);
    }

    #[test]
    fn half_a_cluster_and_bad_lists_are_refused_in_one_line() {
        for (node, peers, want) in [
            (None, "a=127.0.0.1:1", "without --cluster-node"),
            (Some("a"), "", "without --cluster-peers"),
            (Some("z"), "a=127.0.0.1:1", "no entry for this node `z`"),
            (Some("a"), "a=127.0.0.1:1,a=127.0.0.1:2", "repeats the name"),
            (
                Some("a"),
                "a=127.0.0.1:1,b=127.0.0.1:1",
                "repeats the address",
            ),
            (Some("a"), "a=127.0.0.1:1:0", "weight 0"),
            (Some("a"), "a=127.0.0.1", "has no port"),
        ] {
            let err = with(node, peers).validate().unwrap_err();
            assert!(err.0.contains(want), "{peers}: {err}");
            assert!(!err.0.contains('\n'), "{err}");
        }
        let mut c = with(Some("a"), "a=127.0.0.1:1");
        c.cluster.request_timeout_ms = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .0
                .contains("cluster.request_timeout_ms")
        );
    }

    #[test]
    fn the_section_reads_from_toml_and_prints_back() {
        let c = Config::from_toml(
            "[cluster]\nnode = \"a\"\npeers = \"a=127.0.0.1:1,b=127.0.0.1:2\"\nring = \"libmemcached-ketama\"\nforward = false\n",
        )
        .unwrap();
        let plan = c.cluster_plan().unwrap().unwrap();
        assert_eq!(plan.ring.kind(), RingKind::LibmemcachedKetama);
        assert!(!plan.forward);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        let err = Config::from_toml("[cluster]\nring = \"maglev\"\n").unwrap_err();
        assert!(err.0.contains("maglev"), "{err}");
    }

    #[test]
    fn the_resync_rate_is_a_count_of_records_per_second_or_zero() {
        let mut c = with(Some("a"), "a=127.0.0.1:7001,b=127.0.0.1:7002");
        for ok in [0, 1, 200, MAX_RESYNC_RATE] {
            c.cluster.resync_rate = ok;
            assert_eq!(c.cluster_plan().unwrap().unwrap().resync_rate, ok);
        }
        c.cluster.resync_rate = MAX_RESYNC_RATE + 1;
        let err = c.validate().unwrap_err();
        assert!(
            err.0.starts_with("invalid setting cluster.resync_rate: "),
            "{err}"
        );
        assert!(err.0.contains("use 0 for no limit"), "{err}");
        let err = Config::from_toml("[cluster]\nresync_rate = -5\n").unwrap_err();
        assert!(err.0.contains("line 2"), "{err}");
        assert!(err.0.contains("cluster.resync_rate is -5"), "{err}");
        assert!(Config::from_toml("[cluster]\nresync_rate = \"fast\"\n").is_err());
        let c = Config::from_toml("[cluster]\nresync_rate = 0\n").unwrap();
        assert_eq!(c.cluster.resync_rate, 0);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert_eq!(parse_resync_rate("25000"), Ok(25_000));
        assert!(parse_resync_rate("-1").unwrap_err().contains("is -1"));
        assert!(
            parse_resync_rate("1e3")
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn gossip_ports_follow_the_data_ports_by_one_offset() {
        let mut c = with(Some("b"), "a=127.0.0.1:7001,b=127.0.0.1:7002");
        let plan = c.cluster_plan().unwrap().unwrap();
        let g = plan.gossip.as_ref().unwrap();
        assert_eq!(g.port_offset, 1000);
        assert_eq!(g.probe_period, Duration::from_millis(200));
        let addrs = plan.resolve().unwrap();
        let gossip = plan.gossip_addrs(&addrs).unwrap();
        assert_eq!(gossip[0], "127.0.0.1:8001".parse().unwrap());
        c.cluster.port = Some(7002);
        let plan = c.cluster_plan().unwrap().unwrap();
        assert_eq!(plan.gossip_addrs(&addrs).unwrap()[0].port(), 7001);
        c.cluster.port = Some(65535);
        c.cluster.peers = "a=127.0.0.1:60000,b=127.0.0.1:7002".into();
        let plan = c.cluster_plan().unwrap().unwrap();
        let err = plan.gossip_addrs(&plan.resolve().unwrap()).unwrap_err();
        assert!(err.0.contains("cluster.port"), "{err}");
        c.cluster.membership = MembershipMode::Static;
        let plan = c.cluster_plan().unwrap().unwrap();
        assert!(plan.gossip.is_none());
        assert!(
            plan.gossip_addrs(&plan.resolve().unwrap())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_advertised_address_needs_a_join_and_an_added_node_gossip() {
        let mut c = Config::default();
        c.cluster.node = Some("d".into());
        c.cluster.advertise = Some("127.0.0.1:7004".into());
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("without --cluster-join"), "{err}");
        c.cluster.join = Some("127.0.0.1:7001".into());
        c.validate().unwrap();
        // What the join makes of it: this node's entry last, marked added.
        let mut joined = with(Some("d"), "a=127.0.0.1:7001,d=127.0.0.1:7004");
        joined.cluster.added = true;
        let plan = joined.cluster_plan().unwrap().unwrap();
        assert!(plan.added);
        assert_eq!(plan.peers.this_node, 1);
        joined.cluster.membership = MembershipMode::Static;
        let err = joined.validate().unwrap_err();
        assert!(err.0.contains("cluster.advertise"), "{err}");
        // Never read from or printed to a file.
        assert!(!joined.to_toml().contains("added"));
    }

    #[test]
    fn disable_cas_is_refused_with_replicas_only() {
        let mut c = with(Some("a"), "a=127.0.0.1:7001,b=127.0.0.1:7002");
        c.server.disable_cas = true;
        // A cluster without copies forwards by key and needs no CAS.
        assert!(c.validate().is_ok());
        c.cluster.replicas = 2;
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("server.disable_cas"), "{err}");
        assert!(err.0.contains("replicas = 2"), "{err}");
        c.server.disable_cas = false;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn replicas_and_timings_are_checked() {
        let base = || with(Some("a"), "a=127.0.0.1:7001,b=127.0.0.1:7002");
        for (edit, want) in [
            (
                (|c: &mut Config| c.cluster.replicas = 0) as fn(&mut Config),
                "cluster.replicas",
            ),
            (|c| c.cluster.replicas = 9, "cluster.replicas"),
            (|c| c.cluster.probe_rtt_ms = 200, "cluster.probe_rtt_ms"),
            (
                |c| c.cluster.suspect_to_down_ms = 0,
                "cluster.suspect_to_down_ms",
            ),
        ] {
            let mut c = base();
            edit(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.0.contains(want), "{err}");
        }
        let mut c = base();
        c.cluster.replicas = 2;
        assert_eq!(c.cluster_plan().unwrap().unwrap().replicas, 2);
        assert_eq!(
            c.cluster_plan().unwrap().unwrap().resync_rate,
            DEFAULT_RESYNC_RATE
        );
        let c = Config::from_toml(
            "[cluster]\nnode = \"a\"\npeers = \"a=127.0.0.1:1\"\nmembership = \"static\"\nport = 9000\nreplicas = 2\nreplication_ack = \"owner\"\n",
        )
        .unwrap();
        assert_eq!(c.cluster.membership, MembershipMode::Static);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }
}
