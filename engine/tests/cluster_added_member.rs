//! A member added to a running cluster (issue 12, "nodes may also join
//! later"): three real nodes started with a three-entry `--cluster-peers`
//! take keys; a fourth node that is in nobody's list starts with
//! `--cluster-join <n0> --cluster-advertise <its address>` and every member
//! adds it: all four report four live members and the ring of the four-entry
//! list, only the keys that ring gives the new node move (about a quarter),
//! every key stays readable through every node (warm-up read-through without
//! replicas, re-sync with `--replicas 2`), an original member restarted with
//! the original three-entry list learns the fourth from gossip, and with
//! replicas a write acknowledged through n0 for a key the new node owns
//! survives the new node's death. Two joiners that fetched the same list
//! claim one index: the older keeps it, the younger stops (exit code 2) and,
//! started again, takes the next index.
//!
//! Before the change the fourth node's start is refused (`n3` is not in the
//! member list), so every test here fails at that step; without the
//! younger joiner's stop (`claims::lost_to`) the second test fails waiting
//! for its log line.
//! The cluster harness is `common::cluster`.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use cluster::{Member, Ring, RingKind};
use common::cluster::{Cluster, Node, get, set, stat_text, value_reply};
use common::{Conn, Server, stat};

const CONVERGE_WITHIN: Duration = Duration::from_secs(10);
const DETECT_WITHIN: Duration = Duration::from_secs(4);
const KEYS: usize = 2000;

fn port_of(cluster: &Cluster, i: usize) -> u16 {
    let a = &cluster.nodes[i].args;
    let at = a.iter().position(|x| x == "-p").unwrap();
    a[at + 1].parse().unwrap()
}

/// Starts `n3` on a free port (its gossip port the same number), joining
/// through n0 with its own address advertised; pushed as `cluster.nodes[3]`.
fn start_added(cluster: &mut Cluster) -> u16 {
    let member = format!("127.0.0.1:{}", port_of(cluster, 0));
    let (server, port, args) = start_joiner("n3", &member, "2");
    cluster.nodes.push(Node {
        server: Some(server),
        args,
    });
    port
}

/// The ring a ketama client computes for the four servers.
fn ring_of(cluster: &Cluster, n: usize) -> Ring {
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            name: format!("n{i}"),
            host: "127.0.0.1".into(),
            port: port_of(cluster, i),
            weight: 1,
        })
        .collect();
    Ring::new(&members, RingKind::Libketama).unwrap()
}

/// Polls node `i` until it reports the four members live, each with the
/// points `ring` gives it.
fn until_four_live(cluster: &Cluster, i: usize, ring: &Ring) {
    cluster.until_stats(i, CONVERGE_WITHIN, "4 members live on the 4-ring", |s| {
        stat_text(s, "cluster_members") == "4"
            && stat_text(s, "cluster_live_members") == "4"
            && (0..4).all(|j| {
                stat_text(s, &format!("member:n{j}:points")) == ring.points_of(j).to_string()
                    && stat_text(s, &format!("member:n{j}:live")) == "1"
            })
    });
}

/// A connection to node `i` marked as a peer link: what it reads is that
/// node's own store.
fn own_store(cluster: &Cluster, i: usize) -> Conn {
    let mut c = cluster.connect(i);
    c.send(b"cluster_link probe\r\n");
    assert_eq!(common::cluster::text(&c.read_line()), "OK\r\n");
    c
}

fn hits_through(cluster: &Cluster, i: usize, keys: &[String]) -> usize {
    let mut c = cluster.connect(i);
    keys.iter()
        .filter(|k| get(&mut c, k) == value_reply(k, "v"))
        .count()
}

#[test]
fn a_node_in_nobodys_list_joins_through_a_member_and_takes_its_quarter() {
    for replicas in ["1", "2"] {
        let context = format!("R={replicas}");
        let mut cluster = Cluster::start_gossip(3, &["--replicas", replicas]);
        cluster.until_all_alive(CONVERGE_WITHIN);
        let epochs: Vec<u64> = (0..3)
            .map(|i| stat(&cluster.connect(i).stats("cluster"), "cluster_epoch"))
            .collect();
        let keys: Vec<String> = (0..KEYS).map(|i| format!("grow:{i}")).collect();
        let mut w = cluster.connect(0);
        for k in &keys {
            set(&mut w, k, "v");
        }

        start_added(&mut cluster);
        let ring4 = ring_of(&cluster, 4);
        for i in 0..4 {
            until_four_live(&cluster, i, &ring4);
        }
        let peers = stat_text(&cluster.connect(0).stats("cluster"), "cluster_peers");
        assert!(
            peers.ends_with(&format!(",n3=127.0.0.1:{}:1", port_of(&cluster, 3))),
            "{context}: {peers}"
        );
        for i in 0..4 {
            let stats = cluster.connect(i).stats("cluster");
            assert_eq!(stat_text(&stats, "cluster_peers"), peers, "{context}: n{i}");
            assert_eq!(stat_text(&stats, "cluster_replicas"), replicas, "n{i}");
            if let Some(before) = epochs.get(i) {
                // The addition is one change of the live set on each member.
                assert_eq!(stat(&stats, "cluster_epoch"), before + 1, "n{i}");
            }
        }

        // Only the keys the four-ring gives n3 move: about a quarter.
        let moved = keys.iter().filter(|k| ring4.node_of(k.as_bytes()) == 3);
        let moved = moved.count();
        let share = moved as f64 / KEYS as f64;
        assert!(
            (0.15..=1.2 / 4.0).contains(&share),
            "{context}: {moved} of {KEYS} keys moved"
        );
        assert!(
            keys.iter().all(|k| {
                let owner = ring4.node_of(k.as_bytes());
                owner == 3 || owner == cluster.ring.node_of(k.as_bytes())
            }),
            "{context}: a key moved between the original members"
        );

        if replicas == "2" {
            // The members re-sync n3: its own store ends up holding exactly
            // the keys whose replica set includes it.
            let holds = |k: &String| ring4.replicas(k.as_bytes(), 2).any(|n| n == 3);
            let want: Vec<&String> = keys.iter().filter(|k| holds(k)).collect();
            let mut n3 = own_store(&cluster, 3);
            let deadline = Instant::now() + CONVERGE_WITHIN;
            loop {
                let have = want
                    .iter()
                    .filter(|k| get(&mut n3, k) == value_reply(k, "v"))
                    .count();
                if have == want.len() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{context}: n3 holds {have} of its {} keys",
                    want.len()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            for k in keys.iter().filter(|k| !holds(k)) {
                assert_eq!(get(&mut n3, k), "END\r\n", "{context}: n3 holds {k}");
            }
        }
        // Every key reads through every node: n3's own keys by warm-up
        // (read through from the node that held them) or by the re-sync.
        for i in [3, 0, 1, 2] {
            assert_eq!(
                hits_through(&cluster, i, &keys),
                KEYS,
                "{context}, through n{i}"
            );
        }
        if replicas == "1" {
            let filled = stat(&cluster.connect(3).stats(""), "warmup_filled");
            assert_eq!(
                filled as usize, moved,
                "{context}: n3 read each key through once"
            );
            continue;
        }

        // n1 restarted with the original three-entry list learns n3 from
        // gossip and routes with the four-ring again.
        cluster.kill(1);
        for i in [0, 2, 3] {
            cluster.until_states(i, &[("n1", "down")], DETECT_WITHIN);
        }
        cluster.restart(1);
        for i in 0..4 {
            until_four_live(&cluster, i, &ring4);
        }
        let stats = cluster.connect(1).stats("cluster");
        assert_eq!(stat_text(&stats, "cluster_peers"), peers, "restarted n1");
        let key = (0..)
            .map(|i| format!("late:{i}"))
            .find(|k| ring4.node_of(k.as_bytes()) == 3)
            .unwrap();
        set(&mut cluster.connect(1), &key, "v");
        assert_eq!(
            get(&mut own_store(&cluster, 3), &key),
            value_reply(&key, "v"),
            "a write through the restarted n1 lands on n3"
        );

        // A write acknowledged through n0 for a key n3 owns survives n3.
        let key = (0..)
            .map(|i| format!("acked:{i}"))
            .find(|k| ring4.node_of(k.as_bytes()) == 3)
            .unwrap();
        set(&mut cluster.connect(0), &key, "v");
        cluster.kill(3);
        for i in 0..3 {
            common::cluster::eventually(
                &mut cluster.connect(i),
                &key,
                &value_reply(&key, "v"),
                DETECT_WITHIN + Duration::from_secs(2),
            );
        }
    }
}

/// Answers `stats cluster` with `reply` to the next `n` connections: a
/// stand-in for a member, so that two joiners fetch the same list however
/// fast the real members add the first.
fn serve_stats(reply: String, n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            assert_eq!(line, "stats cluster\r\n");
            (&s).write_all(reply.as_bytes()).unwrap();
        }
    });
    (port, t)
}

/// Joiner `name` on a free port (its gossip port the same number) with
/// `threads` shards, joining through `member` with its own address
/// advertised; its port and arguments.
fn start_joiner(name: &str, member: &str, threads: &str) -> (Server, u16, Vec<String>) {
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let advertise = format!("127.0.0.1:{port}");
        let args: Vec<String> = [
            "-t",
            threads,
            "-m",
            "16",
            "-p",
            &port,
            "--cluster-port",
            &port,
            "--cluster-node",
            name,
            "--cluster-join",
            member,
            "--cluster-advertise",
            &advertise,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        match Server::try_start_exact(&argv) {
            Ok(server) => return (server, port.parse().unwrap(), args),
            Err(f) if f.stderr.iter().any(|l| l.contains("in use")) => continue,
            Err(f) => panic!("{name} did not start: {f:?}"),
        }
    }
    panic!("no free port for {name} after 5 tries");
}

/// Two nodes that fetched the same three-entry list both claim index 3: the
/// members give it to the older (started first), the younger stops with
/// exit code 2 and says why, and started again it takes index 4.
#[test]
fn two_joiners_claiming_one_index_the_older_keeps_it_and_the_younger_stops() {
    let cluster = Cluster::start_gossip(3, &[]);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let stats = cluster.connect(0).stats("cluster");
    let mut reply: String = stats
        .iter()
        .map(|(k, v)| format!("STAT {k} {v}\r\n"))
        .collect();
    reply.push_str("END\r\n");
    let (fake, served) = serve_stats(reply, 2);
    let fake = format!("127.0.0.1:{fake}");

    let (older, older_port, _) = start_joiner("a3", &fake, "1");
    let (younger, _, _) = start_joiner("b3", &fake, "1");
    served.join().unwrap();
    let why = younger.wait_log(0, "claimed by an older joiner");
    assert!(why.contains("a3"), "{why}");
    let status = younger.wait_exit(CONVERGE_WITHIN);
    assert_eq!(status.code(), Some(2), "{status:?}");

    let a3 = format!(",a3=127.0.0.1:{older_port}:1");
    for i in 0..3 {
        cluster.until_stats(i, CONVERGE_WITHIN, "a3 at index 3, live", |s| {
            stat_text(s, "cluster_peers").ends_with(&a3)
                && stat_text(s, "cluster_members") == "4"
                && stat_text(s, "member:a3:live") == "1"
        });
    }
    let mut c = older.connect();
    let s = c.stats("cluster");
    assert_eq!(stat_text(&s, "cluster_members"), "4");
    assert!(stat_text(&s, "cluster_peers").ends_with(&a3));

    // Started again (through a real member), the younger takes index 4.
    let member = format!("127.0.0.1:{}", port_of(&cluster, 0));
    let (_again, port, _) = start_joiner("b3", &member, "1");
    let b3 = format!("{a3},b3=127.0.0.1:{port}:1");
    for i in 0..3 {
        cluster.until_stats(i, CONVERGE_WITHIN, "five members live", |s| {
            stat_text(s, "cluster_peers").ends_with(&b3)
                && stat_text(s, "cluster_live_members") == "5"
        });
    }
}
