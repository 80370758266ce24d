//! Membership by gossip (issue 12): three real nodes on 127.0.0.1 find each
//! other, a node killed with SIGKILL is declared down within the detection
//! time by both survivors, its keys are then served by the next live node of
//! the ring (set then get through each survivor), and the restarted node
//! rejoins: the epoch grows and its keys go back to it.
//! The cluster harness is `common::cluster`.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, get, set, stat_text, value_reply};

/// The default timings detect a killed node within 2 s on loopback; a
/// loaded 2-core CI machine gets some slack on top.
const DETECT_WITHIN: Duration = Duration::from_secs(4);
const CONVERGE_WITHIN: Duration = Duration::from_secs(10);

fn epoch(cluster: &Cluster, i: usize) -> u64 {
    common::stat(&cluster.connect(i).stats("cluster"), "cluster_epoch")
}

#[test]
fn members_find_each_other_and_stats_cluster_shows_them() {
    let cluster = Cluster::start_gossip(3, &[]);
    cluster.until_all_alive(CONVERGE_WITHIN);
    for i in 0..3 {
        let stats = cluster.connect(i).stats("cluster");
        assert_eq!(stat_text(&stats, "cluster_membership"), "gossip");
        assert_eq!(common::stat(&stats, "cluster_live_members"), 3);
        for j in 0..3 {
            assert_eq!(common::stat(&stats, &format!("member:n{j}:live")), 1);
            assert!(common::stat(&stats, &format!("member:n{j}:points")) > 0);
            if j != i {
                // Every identity carries its start time as its generation.
                assert!(common::stat(&stats, &format!("member:n{j}:generation")) > 0);
            }
            common::stat(&stats, &format!("member:n{j}:incarnation"));
        }
    }
}

#[test]
fn a_killed_node_is_detected_its_keys_move_and_it_rejoins() {
    let mut cluster = Cluster::start_gossip(3, &[]);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let before = epoch(&cluster, 0).max(epoch(&cluster, 1));
    let keys: Vec<String> = (0..90).map(|i| format!("m:{i}")).collect();
    let on_n2 = keys.iter().filter(|k| cluster.owner(k) == 2).count();
    assert!(on_n2 > 10, "{on_n2} of the keys on n2");

    cluster.kill(2);
    let killed = Instant::now();
    for i in 0..2 {
        cluster.until_states(i, &[("n2", "down")], DETECT_WITHIN);
    }
    let detected = killed.elapsed();
    eprintln!("n2 declared down by both survivors {detected:?} after SIGKILL");
    for i in 0..2 {
        let stats = cluster.connect(i).stats("cluster");
        assert!(common::stat(&stats, "cluster_epoch") > before);
        assert_eq!(common::stat(&stats, "cluster_live_members"), 2);
        assert_eq!(common::stat(&stats, "member:n2:live"), 0);
        assert_eq!(common::stat(&stats, "member:n2:points"), 0);
    }
    // Every key, n2's included, is served: set through one survivor, read
    // through the other and through itself.
    let mut c = [cluster.connect(0), cluster.connect(1)];
    for (i, key) in keys.iter().enumerate() {
        let (a, b) = (i % 2, 1 - i % 2);
        set(&mut c[a], key, &format!("v{i}"));
        let want = value_reply(key, &format!("v{i}"));
        assert_eq!(get(&mut c[b], key), want, "{key} through n{b}");
        assert_eq!(get(&mut c[a], key), want, "{key} through n{a}");
    }

    cluster.restart(2);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let after = epoch(&cluster, 0);
    assert!(after > before + 1, "epoch {before} -> {after}");
    // n2's keys are its own again: written through a survivor, they are on
    // n2 (which serves its own keys itself, never forwarding them).
    let mut n2 = cluster.connect(2);
    for key in keys.iter().filter(|k| cluster.owner(k) == 2) {
        set(&mut c[0], key, "home");
        assert_eq!(get(&mut n2, key), value_reply(key, "home"), "{key} on n2");
    }
}

#[test]
fn a_node_stopped_with_sigterm_announces_its_leave() {
    let mut cluster = Cluster::start_gossip(3, &[]);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let server = cluster.nodes[2].server.take().expect("running");
    let stopped = Instant::now();
    assert!(server.terminate().success());
    // The leave is gossiped as the drain starts: the others need not wait
    // for a probe to fail and the suspicion to run out (about 1.2 s).
    for i in 0..2 {
        cluster.until_states(i, &[("n2", "down")], DETECT_WITHIN);
    }
    let took = stopped.elapsed();
    eprintln!("n2 down on both survivors {took:?} after SIGTERM");
    assert!(took < Duration::from_millis(800), "{took:?}");
}

/// `GET /ready` on a node's HTTP port: the status and the body.
fn ready(a: &ureq::Agent, node: &common::Server) -> (u16, String) {
    let url = format!("http://{}/ready", node.http.expect("an HTTP port"));
    let mut r = a.get(url).call().unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), body)
}

fn until_ready(a: &ureq::Agent, node: &common::Server, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = ready(a, node);
        if status == 200 {
            assert_eq!(body, "{\"ready\": true}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready within {within:?}: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Node `i` of a two-node gossip cluster on `ports` (its gossip port the
/// same number as its data port), with its HTTP port on and `toml` (the
/// gossip timings) as its config file. `None` when the port was taken.
fn start_node(i: usize, ports: [u16; 2], toml: &std::path::Path) -> Option<common::Server> {
    let peers = format!("n0=127.0.0.1:{},n1=127.0.0.1:{}", ports[0], ports[1]);
    let port = ports[i].to_string();
    let name = format!("n{i}");
    let args = [
        "-p",
        &port,
        "-t",
        "1",
        "-m",
        "16",
        "--cluster-node",
        &name,
        "--cluster-peers",
        &peers,
        "--cluster-port",
        &port,
        "--http-port",
        "0",
        "--config",
        toml.to_str().unwrap(),
    ];
    match common::Server::try_start_exact(&args) {
        Ok(s) => Some(s),
        Err(f) if f.stderr.iter().any(|l| l.contains("in use")) => None,
        Err(f) => panic!("node {i} did not start: {f:?}"),
    }
}

/// Two free ports (TCP, and UDP for gossip on the same number), released.
fn two_ports() -> [u16; 2] {
    let l: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    [0, 1].map(|i| l[i].local_addr().unwrap().port())
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

const UNSETTLED: &str = "{\"ready\": false, \"reason\": \"cluster membership has not settled\"}";

#[test]
fn ready_waits_for_an_absent_peer_until_it_is_heard_from() {
    // A start-up grace (2 x 200 ms + 60 s) far longer than the test: the
    // 200 can only come from hearing the peer.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("gossip.toml");
    std::fs::write(
        &toml,
        "[cluster]\nprobe_period_ms = 200\nsuspect_to_down_ms = 60000\n",
    )
    .unwrap();
    let a = http_agent();
    for _ in 0..5 {
        let ports = two_ports();
        let Some(n0) = start_node(0, ports, &toml) else {
            continue;
        };
        assert_eq!(ready(&a, &n0), (503, UNSETTLED.to_string()));
        let Some(n1) = start_node(1, ports, &toml) else {
            continue;
        };
        until_ready(&a, &n0, CONVERGE_WITHIN);
        until_ready(&a, &n1, CONVERGE_WITHIN);
        let stats = n0.connect().stats("cluster");
        assert_eq!(stat_text(&stats, "member:n1:state"), "alive");
        return;
    }
    panic!("no two free ports in 5 tries");
}

#[test]
fn ready_answers_once_an_absent_peer_is_declared_down() {
    // Grace 2 x 200 ms + 2 s: long enough to see the 503 first.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("gossip.toml");
    std::fs::write(
        &toml,
        "[cluster]\nprobe_period_ms = 200\nsuspect_to_down_ms = 2000\n",
    )
    .unwrap();
    let a = http_agent();
    for _ in 0..5 {
        let ports = two_ports();
        let Some(n0) = start_node(0, ports, &toml) else {
            continue;
        };
        assert_eq!(ready(&a, &n0), (503, UNSETTLED.to_string()));
        until_ready(&a, &n0, CONVERGE_WITHIN);
        // Ready, and the peer it never heard from is down (not presumed live).
        let stats = n0.connect().stats("cluster");
        assert_eq!(stat_text(&stats, "member:n1:state"), "unknown");
        assert_eq!(common::stat(&stats, "member:n1:live"), 0);
        return;
    }
    panic!("no two free ports in 5 tries");
}

/// `--cluster-join HOST:PORT`: a node started with a running member's address
/// instead of the member list takes the list, ring and replica count from it
/// (`stats cluster`'s `cluster_peers`), rejoins, and routes as the others do;
/// a name that is not in the list is refused at start with why.
#[test]
fn a_node_started_with_cluster_join_takes_the_members_settings_and_rejoins() {
    let mut cluster = Cluster::start_gossip(3, &["--replicas", "2"]);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let port_of = |cluster: &Cluster, i: usize| {
        let a = &cluster.nodes[i].args;
        let at = a.iter().position(|x| x == "-p").unwrap();
        a[at + 1].clone()
    };
    let (p0, p2) = (port_of(&cluster, 0), port_of(&cluster, 2));
    let member = format!("127.0.0.1:{p0}");
    let n0_peers = stat_text(&cluster.connect(0).stats("cluster"), "cluster_peers");
    assert!(
        n0_peers.contains(&format!("n2=127.0.0.1:{p2}:1")),
        "{n0_peers}"
    );

    // A stranger: refused, naming the members.
    let failed = common::Server::try_start_exact(&[
        "-p",
        "0",
        "--cluster-node",
        "n9",
        "--cluster-join",
        &member,
    ])
    .err()
    .expect("a name outside the list must not start");
    let why = failed.stderr.join("\n");
    assert!(
        why.contains("`n9` is not in its member list") && why.contains("n0, n1, n2"),
        "{why}"
    );

    // n2 restarted with the join alone (no list, no ring, no --replicas).
    cluster.kill(2);
    cluster.until_states(0, &[("n2", "down")], DETECT_WITHIN);
    let args: Vec<String> = [
        "-t",
        "2",
        "-m",
        "16",
        "-p",
        &p2,
        "--cluster-port",
        &p2,
        "--cluster-node",
        "n2",
        "--cluster-join",
        &member,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cluster.nodes[2].args = args;
    cluster.restart(2);
    cluster.until_all_alive(CONVERGE_WITHIN);
    let stats = cluster.connect(2).stats("cluster");
    assert_eq!(stat_text(&stats, "cluster_peers"), n0_peers);
    assert_eq!(stat_text(&stats, "cluster_replicas"), "2");
    for j in 0..3 {
        let points = |i: usize| {
            common::stat(
                &cluster.connect(i).stats("cluster"),
                &format!("member:n{j}:points"),
            )
        };
        assert_eq!(points(2), points(0), "n{j}'s points on n2 and n0");
    }
    // Keys of every node, set through the joined node, read through each node.
    for owner in 0..3 {
        let key = cluster.key_on(owner, "join");
        set(&mut cluster.connect(2), &key, "v");
        for i in 0..3 {
            assert_eq!(
                get(&mut cluster.connect(i), &key),
                value_reply(&key, "v"),
                "{key} via n{i}"
            );
        }
    }
}
