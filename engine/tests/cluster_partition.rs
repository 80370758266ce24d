//! A real network partition (issue 12, docs/cluster.md "Partitions"): three
//! corecache nodes with gossip membership, each in its own network namespace
//! on one bridge (`common::netns`); the test talks to them over the bridge
//! from the root namespace. Node n2 is cut off the bridge (its veth end goes
//! down), then put back:
//!
//! - before: every node sees the others alive, and a key set through n0
//!   reads through every node;
//! - cut: n0 and n1 declare n2 down, and n2 declares both down, within the
//!   detection time; each side serves every key (the majority set through n0
//!   and read through n1; n2 alone in its one-node ring, reached through a
//!   socket made inside its namespace); a side still has a key's value if it
//!   held a copy (the owner, or with `--replicas 2` a replica) and starts
//!   empty for it otherwise;
//! - healed: the three agree again on who is alive and on the ring, each
//!   node's epoch grew (each counts its own changes: the numbers differ), a
//!   key written on both sides reads, whichever node is asked, as the copy
//!   of its owner in the full ring without replicas (the other side's write
//!   is lost), and with `--replicas 2` as the one copy its replicas agree on
//!   once the members have re-synced each other (resync.rs: the greater CAS
//!   wins, ties broken by the bytes; either side's write, key by key); a key written
//!   after the heal through any node reads through every node;
//! - then n0 is killed: without replicas its keys that move to n2 read as
//!   the minority's write again (the losing copy was never removed); with
//!   replicas every one of its keys reads as the agreed copy.
//!
//! Once without replicas and once with `--replicas 2`. Detection and heal
//! times are printed (`--nocapture`), not asserted beyond the bounds.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{Member, Ring, RingKind};
use common::cluster::{get, set, stat_text, value_reply};
use common::netns::Netns;
use common::{Conn, Server, stat};

/// As in cluster_membership.rs: about 1.2 s on loopback, with slack for a
/// loaded 2-core machine.
const DETECT_WITHIN: Duration = Duration::from_secs(4);
const CONVERGE_WITHIN: Duration = Duration::from_secs(10);
/// Every node has a namespace of its own: nothing else can hold its port,
/// so the usual one is used (and its gossip port, the default 12211).
const PORT: u16 = 11211;
const NODES: usize = 3;
/// The node cut off.
const C: usize = 2;

struct Partitioned {
    /// Stopped before the namespaces are deleted (fields drop in order).
    nodes: Vec<Server>,
    net: Netns,
    addrs: Vec<SocketAddr>,
    members: Vec<Member>,
    ring: Ring,
}

impl Partitioned {
    fn start(test: &str, replicas: usize) -> Option<Partitioned> {
        let net = Netns::create(NODES, test)?;
        let addrs: Vec<SocketAddr> = net.addrs.iter().map(|&a| (a, PORT).into()).collect();
        let peers: Vec<String> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("n{i}={a}"))
            .collect();
        let peers = peers.join(",");
        let members: Vec<Member> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Member {
                name: format!("n{i}"),
                host: a.ip().to_string(),
                port: PORT,
                weight: 1,
            })
            .collect();
        let ring = Ring::new(&members, RingKind::Libketama).unwrap();
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let mut cmd = net.command(i, common::BIN);
            cmd.args(["-t", "2", "-m", "16", "-p", &PORT.to_string()]);
            cmd.args([
                "-l",
                &addr.ip().to_string(),
                "--cluster-node",
                &format!("n{i}"),
            ]);
            cmd.args([
                "--cluster-peers",
                &peers,
                "--replicas",
                &replicas.to_string(),
            ]);
            let node = Server::try_start_command(cmd)
                .unwrap_or_else(|f| panic!("n{i} did not start in {}: {f:?}", net.names[i]));
            nodes.push(node);
        }
        Some(Partitioned {
            nodes,
            net,
            addrs,
            members,
            ring,
        })
    }

    /// A connection from the root namespace, over the bridge.
    fn connect(&self, i: usize) -> Conn {
        Conn::connect(self.addrs[i])
    }

    /// A connection made inside node `i`'s namespace: it works while the
    /// node is cut off.
    fn inside(&self, i: usize) -> Conn {
        self.net.connect_inside(i, self.addrs[i])
    }

    fn owner(&self, key: &str) -> usize {
        self.ring.node_of(key.as_bytes())
    }

    /// A connection whose requests node `i` serves from its own store: it
    /// says it is a peer link (`cluster_link`), and what comes over a peer
    /// link is never forwarded.
    fn local(&self, i: usize) -> Conn {
        let mut c = self.connect(i);
        assert_eq!(c.round_trip(b"cluster_link test\r\n"), b"OK\r\n");
        c
    }
}

/// Polls `stats cluster` through each connection until `done(i, stats)`
/// holds for node i, within `within` of `since`; returns when each first held,
/// counted from `since` (the nodes are watched side by side, not one after
/// another).
fn until_each(
    conns: &mut [Conn],
    since: Instant,
    within: Duration,
    what: &str,
    done: impl Fn(usize, &[(String, String)]) -> bool,
) -> Vec<Duration> {
    let mut when: Vec<Option<Duration>> = vec![None; conns.len()];
    loop {
        for (i, c) in conns.iter_mut().enumerate() {
            if when[i].is_none() {
                let stats = c.stats("cluster");
                if done(i, &stats) {
                    when[i] = Some(since.elapsed());
                } else if since.elapsed() > within {
                    panic!("n{i}: not {what} after {within:?}: {stats:?}");
                }
            }
        }
        if when.iter().all(Option::is_some) {
            return when.into_iter().flatten().collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state(stats: &[(String, String)], node: usize) -> String {
    stat_text(stats, &format!("member:n{node}:state"))
}

/// Node `i` sees every member alive.
fn all_alive(i: usize, stats: &[(String, String)]) -> bool {
    (0..NODES).all(|j| state(stats, j) == if i == j { "this" } else { "alive" })
}

/// Every member's ring points as a node sees them.
fn points(stats: &[(String, String)]) -> Vec<u64> {
    (0..NODES)
        .map(|j| stat(stats, &format!("member:n{j}:points")))
        .collect()
}

#[test]
fn without_replicas_both_sides_serve_and_after_the_heal_the_owners_copy_wins() {
    partition_and_heal("cluster_partition, no replicas", 1);
}

#[test]
fn with_two_replicas_both_sides_serve_and_after_the_heal_the_replicas_agree() {
    partition_and_heal("cluster_partition, --replicas 2", 2);
}

fn partition_and_heal(test: &str, replicas: usize) {
    let Some(mut p) = Partitioned::start(test, replicas) else {
        return;
    };
    let began = Instant::now();
    let mut polls: Vec<Conn> = (0..NODES).map(|i| p.connect(i)).collect();
    let up = until_each(
        &mut polls,
        began,
        CONVERGE_WITHIN,
        "seeing all alive",
        all_alive,
    );
    eprintln!("{test}: all alive on n0, n1, n2 after {up:?}");
    let before: Vec<Vec<(String, String)>> = polls.iter_mut().map(|c| c.stats("cluster")).collect();
    let full_points = points(&before[0]);
    for (i, stats) in before.iter().enumerate() {
        assert_eq!(stat(stats, "cluster_live_members"), 3, "n{i}");
        assert_eq!(points(stats), full_points, "n{i} agrees on the ring");
    }

    let keys: Vec<String> = (0..90).map(|i| format!("p:{i}")).collect();
    for n in 0..NODES {
        let owned = keys.iter().filter(|k| p.owner(k) == n).count();
        assert!(owned >= 10, "{owned} of the keys on n{n}");
    }
    // The nodes holding a copy of a key (with ack "all", when the set is
    // acknowledged): its owner and replicas in the full ring.
    let holders = |k: &str| -> Vec<usize> { p.ring.replicas(k.as_bytes(), replicas).collect() };
    let mut c: Vec<Conn> = (0..NODES).map(|i| p.connect(i)).collect();
    for k in &keys {
        set(&mut c[0], k, &format!("before-{k}"));
        for (j, conn) in c.iter_mut().enumerate() {
            let want = value_reply(k, &format!("before-{k}"));
            assert_eq!(get(conn, k), want, "{k} through n{j}");
        }
    }

    // The partition: n2 alone on one side, n0 and n1 on the other.
    let mut minority = p.inside(C);
    let mut polls = vec![p.connect(0), p.connect(1), p.inside(C)];
    p.net.cut(C);
    let cut = Instant::now();
    let detected = until_each(
        &mut polls,
        cut,
        DETECT_WITHIN,
        "seeing the other side down",
        |i, s| {
            if i == C {
                state(s, 0) == "down" && state(s, 1) == "down"
            } else {
                state(s, C) == "down"
            }
        },
    );
    eprintln!(
        "{test}: after the cut n0 saw n2 down in {:?}, n1 in {:?}; n2 saw n0 and n1 down in {:?}",
        detected[0], detected[1], detected[C]
    );
    for (i, conn) in polls.iter_mut().enumerate() {
        let stats = conn.stats("cluster");
        let was = stat(&before[i], "cluster_epoch");
        assert!(stat(&stats, "cluster_epoch") > was, "n{i}: a new epoch");
        let live = if i == C { 1 } else { 2 };
        assert_eq!(stat(&stats, "cluster_live_members"), live, "n{i}");
        for (j, &pt) in points(&stats).iter().enumerate() {
            let same_side = (i == C) == (j == C);
            assert_eq!(pt > 0, same_side, "n{i} sees n{j} with {pt} points");
        }
    }

    // The majority serves every key: it still has a key one of its nodes
    // held a copy of (the acting owner is then that node) and starts empty
    // for the others; then every key is written through n0 and read
    // through n1.
    for k in &keys {
        let want = if holders(k).iter().any(|&h| h != C) {
            value_reply(k, &format!("before-{k}"))
        } else {
            "END\r\n".to_string()
        };
        assert_eq!(
            get(&mut c[1], k),
            want,
            "{k} through n1 during the partition"
        );
        set(&mut c[0], k, &format!("majority-{k}"));
        let want = value_reply(k, &format!("majority-{k}"));
        assert_eq!(get(&mut c[1], k), want, "{k} through n1");
        assert_eq!(get(&mut c[0], k), want, "{k} through n0");
    }
    // The minority, n2 alone, owns every key in its one-node ring: it still
    // has those it held a copy of and starts empty for the others; written
    // through it, every key reads back.
    for k in &keys {
        let want = if holders(k).contains(&C) {
            value_reply(k, &format!("before-{k}"))
        } else {
            "END\r\n".to_string()
        };
        assert_eq!(
            get(&mut minority, k),
            want,
            "{k} through n2 during the partition"
        );
        set(&mut minority, k, &format!("minority-{k}"));
        let want = value_reply(k, &format!("minority-{k}"));
        assert_eq!(get(&mut minority, k), want, "{k} through n2");
    }

    // The heal, watched over the same connections (n2's made inside its
    // namespace), from the moment the link is back.
    p.net.heal(C);
    let healed = Instant::now();
    let back = until_each(
        &mut polls,
        healed,
        CONVERGE_WITHIN,
        "seeing all alive",
        all_alive,
    );
    eprintln!("{test}: after the heal all alive on n0, n1, n2 in {back:?}");
    let after: Vec<Vec<(String, String)>> = polls.iter_mut().map(|c| c.stats("cluster")).collect();
    let epochs: Vec<u64> = after.iter().map(|s| stat(s, "cluster_epoch")).collect();
    let epochs_before: Vec<u64> = before.iter().map(|s| stat(s, "cluster_epoch")).collect();
    eprintln!("{test}: epochs {epochs_before:?} before the cut, {epochs:?} after the heal");
    for (i, stats) in after.iter().enumerate() {
        assert_eq!(stat(stats, "cluster_live_members"), 3, "n{i}");
        assert_eq!(points(stats), full_points, "n{i} is back on the full ring");
        // Each node counts the changes it saw: the epochs need not be equal
        // (n2 may see n0 and n1 go and come back one at a time).
        assert!(
            epochs[i] >= epochs_before[i] + 2,
            "n{i}: an epoch for the cut and one for the heal: {epochs_before:?} -> {epochs:?}"
        );
    }

    // A key written on both sides. Without replicas what is read, through
    // any node, is the copy of its owner in the full ring; the other side's
    // write is lost. With replicas the members that came back are re-synced
    // (resync.rs: each side ships the items whose replica set includes the
    // other, applied only if newer), so the key's replicas soon hold one
    // copy, the one with the greater CAS: whichever side's CAS clock was
    // ahead, not necessarily the later write (concurrent writes on two sides
    // have no order; CAS values are Lamport clocks across replicas).
    let mut c: Vec<Conn> = (0..NODES).map(|i| p.connect(i)).collect();
    let mut agreed: std::collections::HashMap<&String, String> = Default::default();
    if replicas > 1 {
        let mut local: Vec<Conn> = (0..NODES).map(|i| p.local(i)).collect();
        let deadline = Instant::now() + CONVERGE_WITHIN;
        for k in &keys {
            let set: Vec<usize> = p.ring.replicas(k.as_bytes(), replicas).collect();
            loop {
                let copies: Vec<String> = set.iter().map(|&n| get(&mut local[n], k)).collect();
                if copies.iter().all(|v| *v == copies[0]) {
                    agreed.insert(k, copies[0].clone());
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{k}: replicas {set:?} hold {copies:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let minority = agreed.values().filter(|v| v.contains("minority-")).count();
        eprintln!(
            "{test}: after the re-sync {minority} of {} keys hold the minority's write",
            keys.len()
        );
    }
    for k in &keys {
        let side = if p.owner(k) == C {
            "minority"
        } else {
            "majority"
        };
        let want = agreed
            .get(k)
            .cloned()
            .unwrap_or_else(|| value_reply(k, &format!("{side}-{k}")));
        assert!(want.contains(&format!("-{k}\r\n")), "{k}: {want:?}");
        let owner = p.owner(k);
        for (j, conn) in c.iter_mut().enumerate() {
            assert_eq!(get(conn, k), want, "{k} (owner n{owner}) through n{j}");
        }
    }
    // Written after the heal through any node, a key reads through every node.
    for i in 0..NODES {
        for k in keys.iter().map(|k| format!("{k}:after:{i}")) {
            set(&mut c[i], &k, "healed");
            for (j, conn) in c.iter_mut().enumerate() {
                assert_eq!(get(conn, &k), value_reply(&k, "healed"), "{k} through n{j}");
            }
        }
    }
    for (i, node) in p.nodes.iter_mut().enumerate() {
        assert!(node.alive(), "n{i} is still running");
    }

    // Without replicas the losing copy was not removed: it stays where it
    // was written. Kill n0, and each of its keys goes to the next live node,
    // which answers with whatever copy it holds: n2's is the minority's
    // write, lost while n0 was up; n1 has nothing. With replicas that next
    // node is the key's second replica, which holds the agreed copy.
    p.nodes[0].stop_with(libc::SIGKILL);
    let killed = Instant::now();
    let mut polls = vec![p.connect(1), p.connect(2)];
    until_each(
        &mut polls,
        killed,
        DETECT_WITHIN,
        "seeing n0 down",
        |_, s| state(s, 0) == "down",
    );
    let without_n0 =
        Ring::over_live(&p.members, RingKind::Libketama, &[false, true, true]).unwrap();
    let mut resurfaced = 0;
    for k in keys.iter().filter(|k| p.owner(k) == 0) {
        let want = match without_n0.node_of(k.as_bytes()) {
            _ if replicas > 1 => agreed[k].clone(),
            C => {
                resurfaced += 1;
                value_reply(k, &format!("minority-{k}"))
            }
            _ => "END\r\n".to_string(),
        };
        assert_eq!(get(&mut c[1], k), want, "{k} through n1 with n0 down");
    }
    assert!(
        replicas > 1 || resurfaced > 0,
        "some of n0's keys move to n2"
    );
    eprintln!(
        "{test}: with n0 killed, {resurfaced} of its keys read as the minority's write again"
    );
    eprintln!("{test}: took {:?}", began.elapsed());
}
