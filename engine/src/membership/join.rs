//! `--cluster-join HOST:PORT`: a node started with the memcached address of
//! any running member instead of the member list takes the cluster's settings
//! from it at start-up, so a replaced or added node need not repeat them.
//!
//! ```text
//!   start-up ─► connect HOST:PORT (retried for JOIN_WITHIN) ─► "stats cluster"
//!     cluster_peers      ─► cluster.peers   (the exact list every member routes with)
//!     cluster_ring       ─► cluster.ring
//!     cluster_replicas   ─► cluster.replicas
//!     cluster_membership ─► cluster.membership
//!   ─► Config::cluster_plan as if they had been given:
//!        this node's name in the list      ─► its index there (a restart, a replacement)
//!        not in it, --cluster-advertise A  ─► NAME=A appended: the lowest free index
//!        not in it, no advertise           ─► refused, naming the members
//! ```
//!
//! The list is the member's own, byte for byte (`Peers::list`), so the ring
//! this node builds hashes the same server names as every other member's. A
//! node the list does not name joins as a new member: its entry goes at the
//! end (the CAS node bits are that index, so no member shares them), it
//! carries the entry in its gossip identity, and every member adds it to its
//! own list when it hears of it (`claims.rs`); two nodes that join at once
//! with one index are told apart there. This needs gossip membership. The
//! member must be reachable in plain text without authentication (a
//! `notls:` listener under -Z, no -Y/-S on it).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::cluster::MAX_MEMBERS;
use crate::config::{Config, ConfigError, MembershipMode, RingName};

/// How long start-up keeps trying to reach the member.
const JOIN_WITHIN: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The most bytes of `stats cluster` read (a few hundred per member).
const MAX_REPLY: usize = 1 << 20;

/// The cluster settings a member reports.
#[derive(Debug, PartialEq)]
struct Joined {
    peers: String,
    ring: RingName,
    replicas: usize,
    membership: MembershipMode,
}

/// With `cluster.join`: the configuration with the member's cluster settings
/// in place of the join (`None` without it). Only the cluster plan is built
/// from it; the running configuration (what SIGHUP compares against) keeps
/// the join as given.
pub fn joined(config: &Config) -> Result<Option<Config>, ConfigError> {
    let Some(member) = config.cluster.join.as_deref() else {
        return Ok(None);
    };
    let fail = |why: String| ConfigError(format!("--cluster-join {member}: {why}"));
    if !config.cluster.peers.trim().is_empty() {
        return Err(fail(
            "--cluster-peers is given too; give one: the member list, or a running member to take it from".into(),
        ));
    }
    let Some(node) = config.cluster.node.as_deref() else {
        return Err(fail(
            "needs --cluster-node NAME, this node's name in the member's list".into(),
        ));
    };
    let reply = fetch(member).map_err(fail)?;
    let got = parse(&reply).map_err(fail)?;
    let (peers, added) =
        this_nodes_list(node, config.cluster.advertise.as_deref(), &got).map_err(fail)?;
    tracing::info!(
        member,
        peers = %peers,
        ring = got.ring.0.name(),
        replicas = got.replicas,
        added,
        "cluster settings taken from a running member"
    );
    let mut c = config.clone();
    c.cluster.join = None;
    c.cluster.advertise = None;
    c.cluster.added = added;
    c.cluster.peers = peers;
    c.cluster.ring = got.ring;
    c.cluster.replicas = got.replicas;
    c.cluster.membership = got.membership;
    Ok(Some(c))
}

/// The list this node routes with, from the member's (`got`), and whether
/// this node's entry was added to it: a listed name as it is (an advertised
/// address must then be the listed one), a new name with `advertise`
/// appended (the lowest free index).
fn this_nodes_list(
    node: &str,
    advertise: Option<&str>,
    got: &Joined,
) -> Result<(String, bool), String> {
    let names: Vec<&str> = got
        .peers
        .split(',')
        .filter_map(|e| e.split_once('=').map(|(n, _)| n))
        .collect();
    let own = advertise
        .map(|a| {
            cluster::Peers::parse(node, &format!("{node}={a}"))
                .map(|p| p.members[0].clone())
                .map_err(|e| {
                    format!(
                        "--cluster-advertise {a}: {}",
                        e.to_string().replace("--cluster-peers entry", "entry")
                    )
                })
        })
        .transpose()?;
    let added = !names.contains(&node);
    match (&own, added) {
        (None, true) => Err(format!(
            "this node `{node}` is not in its member list ({}); to join as a new member give --cluster-advertise HOST:PORT[:WEIGHT], this node's memcached address as clients write it, or start this node under one of those names",
            names.join(", ")
        )),
        (Some(_), true) if names.len() >= MAX_MEMBERS => Err(format!(
            "its member list is full ({MAX_MEMBERS} members: CAS values carry 7 bits of node index)"
        )),
        (Some(_), true) if got.membership != MembershipMode::Gossip => Err(format!(
            "this node `{node}` is not in its member list and the cluster's membership is static (its list is fixed): add it to every member's --cluster-peers"
        )),
        (Some(_), true) => Ok((
            format!("{},{node}={}", got.peers, advertise.unwrap_or_default()),
            true,
        )),
        (Some(m), false) => {
            let listed = cluster::Peers::parse(node, &got.peers).map_err(|e| e.to_string())?;
            let at = listed.this();
            if (&at.host, at.port, at.weight) != (&m.host, m.port, m.weight) {
                return Err(format!(
                    "its list names this node `{node}` at {}:{} weight {}, and --cluster-advertise says {}:{} weight {}; leave --cluster-advertise out to rejoin under the listed address",
                    at.host, at.port, at.weight, m.host, m.port, m.weight
                ));
            }
            Ok((got.peers.clone(), false))
        }
        (None, false) => Ok((got.peers.clone(), false)),
    }
}

/// `stats cluster` of the member, retried until it answers or JOIN_WITHIN.
fn fetch(member: &str) -> Result<String, String> {
    let deadline = Instant::now() + JOIN_WITHIN;
    loop {
        match fetch_once(member) {
            Ok(reply) => return Ok(reply),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("no answer within {} s: {e}", JOIN_WITHIN.as_secs()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn fetch_once(member: &str) -> Result<String, String> {
    let addr = member
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve it: {e}"))?
        .next()
        .ok_or("it resolves to no address")?;
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| s.write_all(b"stats cluster\r\n"))
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while !reply.ends_with(b"END\r\n") && !reply.ends_with(b"ERROR\r\n") {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 || reply.len() + n > MAX_REPLY {
            return Err("the connection ended before `stats cluster` did".into());
        }
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(reply).map_err(|_| "its `stats cluster` is not text".into())
}

/// The cluster settings in a `stats cluster` reply.
fn parse(reply: &str) -> Result<Joined, String> {
    let stat = |name: &str| {
        reply.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("STAT") && w.next() == Some(name)).then(|| w.next().unwrap_or(""))
        })
    };
    if stat("cluster_enabled") != Some("1") {
        return Err(match reply.lines().next() {
            Some(l) if !l.starts_with("STAT") => format!(
                "it answered `{l}` to `stats cluster`: not a corecache member reachable without authentication"
            ),
            _ => "it is not in a cluster (cluster_enabled is not 1)".into(),
        });
    }
    let peers = stat("cluster_peers").filter(|p| !p.is_empty()).ok_or(
        "its `stats cluster` has no cluster_peers (a corecache older than --cluster-join)",
    )?;
    let ring = stat("cluster_ring")
        .ok_or("its `stats cluster` has no cluster_ring")?
        .parse::<RingName>()?;
    let replicas = stat("cluster_replicas")
        .and_then(|r| r.parse().ok())
        .ok_or("its `stats cluster` has no cluster_replicas")?;
    let membership = match stat("cluster_membership") {
        Some("gossip") => MembershipMode::Gossip,
        Some("static") => MembershipMode::Static,
        other => return Err(format!("its cluster_membership is {other:?}")),
    };
    Ok(Joined {
        peers: peers.to_string(),
        ring,
        replicas,
        membership,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::RingKind;

    const REPLY: &str = "STAT cluster_enabled 1\r\nSTAT cluster_node a\r\nSTAT cluster_ring libmemcached-ketama\r\nSTAT cluster_forwarding 1\r\nSTAT cluster_membership static\r\nSTAT cluster_epoch 1\r\nSTAT cluster_replicas 2\r\nSTAT cluster_members 2\r\nSTAT cluster_peers a=10.0.0.1:11211:1,b=[::1]:11211:3\r\nSTAT member:a:address 10.0.0.1:11211\r\nEND\r\n";

    #[test]
    fn a_members_stats_give_its_cluster_settings() {
        assert_eq!(
            parse(REPLY).unwrap(),
            Joined {
                peers: "a=10.0.0.1:11211:1,b=[::1]:11211:3".into(),
                ring: RingName(RingKind::LibmemcachedKetama),
                replicas: 2,
                membership: MembershipMode::Static,
            }
        );
    }

    #[test]
    fn what_is_not_a_member_is_refused_with_why() {
        let alone = "STAT cluster_enabled 0\r\nEND\r\n";
        assert!(parse(alone).unwrap_err().contains("not in a cluster"));
        let auth = "CLIENT_ERROR unauthenticated\r\n";
        assert!(parse(auth).unwrap_err().contains("authentication"));
        let old = REPLY.replace("STAT cluster_peers", "STAT other");
        assert!(parse(&old).unwrap_err().contains("cluster_peers"));
    }

    #[test]
    fn a_new_name_with_an_address_is_appended_and_a_listed_one_kept() {
        let got = parse(REPLY).unwrap();
        let gossip = Joined {
            membership: MembershipMode::Gossip,
            ..parse(REPLY).unwrap()
        };
        // Listed: the list as it is (an advertised address must match).
        assert_eq!(
            this_nodes_list("b", None, &got).unwrap(),
            (got.peers.clone(), false)
        );
        assert_eq!(
            this_nodes_list("b", Some("[::1]:11211:3"), &got).unwrap(),
            (got.peers.clone(), false)
        );
        let err = this_nodes_list("b", Some("10.0.0.9:11211"), &got).unwrap_err();
        assert!(err.contains("leave --cluster-advertise out"), "{err}");
        // New: refused without an address or in a static cluster, else appended.
        let err = this_nodes_list("c", None, &gossip).unwrap_err();
        assert!(
            err.contains("`c` is not in its member list (a, b)"),
            "{err}"
        );
        assert!(err.contains("--cluster-advertise HOST:PORT"), "{err}");
        let err = this_nodes_list("c", Some("10.0.0.3:11211"), &got).unwrap_err();
        assert!(err.contains("static"), "{err}");
        let (list, added) = this_nodes_list("c", Some("10.0.0.3:11211"), &gossip).unwrap();
        assert!(added);
        assert_eq!(list, format!("{},c=10.0.0.3:11211", gossip.peers));
        let err = this_nodes_list("c", Some("10.0.0.3"), &gossip).unwrap_err();
        assert!(
            err.starts_with("--cluster-advertise 10.0.0.3: entry"),
            "{err}"
        );
        // The 129th member would need an eighth CAS node bit.
        let full = Joined {
            peers: (0..MAX_MEMBERS)
                .map(|i| format!("n{i}=10.0.1.{}:{}", i % 250, 11211 + i))
                .collect::<Vec<_>>()
                .join(","),
            ..parse(REPLY).unwrap()
        };
        let full = Joined {
            membership: MembershipMode::Gossip,
            ..full
        };
        let err = this_nodes_list("z", Some("10.0.0.3:1"), &full).unwrap_err();
        assert!(err.contains("full (128 members"), "{err}");
    }

    #[test]
    fn a_join_with_a_list_too_or_without_a_name_is_refused() {
        let mut c = Config::default();
        c.cluster.join = Some("127.0.0.1:1".into());
        c.cluster.node = Some("a".into());
        c.cluster.peers = "a=127.0.0.1:11211".into();
        assert!(
            joined(&c)
                .unwrap_err()
                .0
                .contains("--cluster-peers is given too")
        );
        c.cluster.peers.clear();
        c.cluster.node = None;
        assert!(joined(&c).unwrap_err().0.contains("needs --cluster-node"));
        assert!(joined(&Config::default()).unwrap().is_none());
    }
}
