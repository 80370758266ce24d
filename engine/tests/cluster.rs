//! Several real nodes on 127.0.0.1 forming one cache (issue 11): keys set
//! through any node are read through every node, multi-gets spanning all
//! nodes come back in order, gets/cas across nodes, forwarding off, a dead
//! or stopped peer answered with `SERVER_ERROR backend failure` in bounded
//! time while other keys keep working, and a restarted peer used again.
//! The cluster harness is `common::cluster`.

mod common;

use std::time::{Duration, Instant};

use common::Conn;
use common::cluster::{Cluster, eventually, get, read_values, same, set, text, value_reply};

#[test]
fn a_key_set_through_any_node_reads_byte_exact_through_every_node() {
    let cluster = Cluster::start(3, &[]);
    let mut conns: Vec<Conn> = (0..3).map(|i| cluster.connect(i)).collect();
    for i in 0..60 {
        let key = format!("k{i}");
        // Bytes that a careless forwarder would mangle: CR, LF, END lines.
        let value = format!("v{i}\r\nEND\r\n\0\u{7f}{}", "x".repeat(i * 37));
        set(&mut conns[i % 3], &key, &value);
        for (j, c) in conns.iter_mut().enumerate() {
            assert_eq!(
                get(c, &key),
                value_reply(&key, &value),
                "{key} through n{j}"
            );
        }
    }
    // Every node served keys of its own and forwarded the rest.
    let owners: Vec<usize> = (0..60).map(|i| cluster.owner(&format!("k{i}"))).collect();
    for n in 0..3 {
        assert!(owners.contains(&n), "node n{n} owns none of the keys");
    }
}

#[test]
fn five_nodes_serve_every_command_family_through_any_node() {
    let cluster = Cluster::start(5, &[]);
    let mut conns: Vec<Conn> = (0..5).map(|i| cluster.connect(i)).collect();
    for owner in 0..5 {
        let key = cluster.key_on(owner, "fam");
        let entry = (owner + 1) % 5;
        let c = &mut conns[entry];
        // Pipelined, quiet and noreply requests keep their order and replies.
        let sent = format!(
            "set {key} 0 0 1 noreply\r\n1\r\nincr {key} 41\r\nms {key}m 2 q\r\nhi\r\nmg {key}m v\r\nmg {key}nope v q\r\nappend {key} 0 0 1\r\n0\r\nget {key}\r\ndelete {key}\r\ndelete {key}\r\nmn\r\n"
        );
        c.send(sent.as_bytes());
        let reply = c.read_through(b"MN\r\n");
        let want = format!(
            "42\r\nVA 2\r\nhi\r\nSTORED\r\nVALUE {key} 0 3\r\n420\r\nEND\r\nDELETED\r\nNOT_FOUND\r\nMN\r\n"
        );
        assert_eq!(text(&reply), want, "key of n{owner} through n{entry}");
    }
}

#[test]
fn a_multi_get_spanning_every_node_comes_back_in_order() {
    let cluster = Cluster::start(3, &[]);
    let mut c = cluster.connect(1);
    let keys: Vec<String> = (0..40).map(|i| format!("multi:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 4 != 3 {
            set(&mut c, k, &format!("value-{i}"));
        }
    }
    let owners: Vec<usize> = keys.iter().map(|k| cluster.owner(k)).collect();
    assert!((0..3).all(|n| owners.contains(&n)));
    for entry in 0..3 {
        let mut c = cluster.connect(entry);
        c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
        let reply = read_values(&mut c);
        let mut want = String::new();
        for (i, k) in keys.iter().enumerate() {
            if i % 4 != 3 {
                let v = format!("value-{i}");
                want.push_str(&format!("VALUE {k} 5 {}\r\n{v}\r\n", v.len()));
            }
        }
        want.push_str("END\r\n");
        same(&reply, &want, &format!("through n{entry}"));
    }
}

#[test]
fn gets_on_one_node_then_cas_on_another() {
    let cluster = Cluster::start(3, &[]);
    let key = cluster.key_on(2, "cas");
    let mut a = cluster.connect(0);
    let mut b = cluster.connect(1);
    set(&mut a, &key, "one");
    a.send(format!("gets {key}\r\n").as_bytes());
    let reply = text(&a.read_through(b"END\r\n"));
    let cas: u64 = reply
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(4))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no cas in {reply:?}"));
    b.send(format!("cas {key} 0 0 3 {}\r\ntwo\r\n", cas + 1).as_bytes());
    assert_eq!(text(&b.read_line()), "EXISTS\r\n");
    b.send(format!("cas {key} 0 0 3 {cas}\r\ntwo\r\n").as_bytes());
    assert_eq!(text(&b.read_line()), "STORED\r\n");
    let mut owner = cluster.connect(2);
    assert_eq!(
        get(&mut owner, &key),
        format!("VALUE {key} 0 3\r\ntwo\r\nEND\r\n")
    );
}

#[test]
fn with_forwarding_off_a_node_answers_only_for_itself() {
    let cluster = Cluster::start(3, &["--cluster-forward", "off"]);
    let key = cluster.key_on(1, "off");
    let mut wrong = cluster.connect(0);
    let mut owner = cluster.connect(1);
    set(&mut wrong, &key, "here");
    assert_eq!(get(&mut wrong, &key), value_reply(&key, "here"));
    assert_eq!(get(&mut owner, &key), "END\r\n");
    set(&mut owner, &key, "there");
    assert_eq!(get(&mut wrong, &key), value_reply(&key, "here"));
    let stats = owner.stats("cluster");
    assert_eq!(common::stat(&stats, "cluster_forwarding"), 0);
}

#[test]
fn a_killed_peer_fails_its_keys_in_time_and_a_restarted_one_serves_again() {
    let mut cluster = Cluster::start(3, &[]);
    let dead_key = cluster.key_on(2, "dead");
    let live_key = cluster.key_on(1, "live");
    let mut c = cluster.connect(0);
    set(&mut c, &dead_key, "d");
    set(&mut c, &live_key, "l");
    cluster.kill(2);
    let failure = "SERVER_ERROR backend failure\r\n";
    let started = Instant::now();
    assert_eq!(get(&mut c, &dead_key), failure);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Other keys, this node's and another peer's, keep working meanwhile,
    // on the same connection: nothing is left waiting behind the failure.
    c.send(
        format!("get {live_key}\r\nget {dead_key}\r\nset {live_key} 0 0 2 noreply\r\nl2\r\nmn\r\n")
            .as_bytes(),
    );
    let reply = text(&c.read_through(b"MN\r\n"));
    assert_eq!(
        reply,
        format!("{}{failure}MN\r\n", value_reply(&live_key, "l"))
    );
    // A multi-get leaves the dead node's keys out (a SERVER_ERROR line among
    // VALUE blocks would break clients) and keeps the rest.
    c.send(format!("get {dead_key} {live_key}\r\n").as_bytes());
    assert_eq!(
        text(&c.read_through(b"END\r\n")),
        format!("VALUE {live_key} 0 2\r\nl2\r\nEND\r\n")
    );
    cluster.restart(2);
    // The restarted node is empty; the link reconnects after its backoff.
    eventually(&mut c, &dead_key, "END\r\n", Duration::from_secs(15));
    set(&mut c, &dead_key, "back");
    let mut owner = cluster.connect(2);
    assert_eq!(get(&mut owner, &dead_key), value_reply(&dead_key, "back"));
}

#[test]
fn a_stopped_peer_times_out_and_is_used_again_when_it_resumes() {
    let cluster = Cluster::start(3, &[]);
    let key = cluster.key_on(1, "slow");
    let mut c = cluster.connect(0);
    set(&mut c, &key, "s");
    let pid = cluster.nodes[1].server.as_ref().unwrap().pid();
    common::stop(pid);
    let started = Instant::now();
    let reply = get(&mut c, &key);
    let took = started.elapsed();
    common::signal(pid, libc::SIGCONT);
    assert_eq!(reply, "SERVER_ERROR backend failure\r\n");
    // The request timeout is 2 s; the loop notices within a few ms of it.
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    eventually(
        &mut c,
        &key,
        &value_reply(&key, "s"),
        Duration::from_secs(15),
    );
    let stats = c.stats("cluster");
    assert!(common::stat(&stats, "link:n1:timeouts") >= 1, "{stats:?}");
}

#[test]
fn base64_meta_keys_are_placed_by_the_key_they_decode_to() {
    let cluster = Cluster::start(3, &[]);
    let key = cluster.key_on(2, "b64");
    let encoded = base64(key.as_bytes());
    let mut a = cluster.connect(0);
    a.send(format!("ms {encoded} 3 b T0\r\nabc\r\n").as_bytes());
    assert_eq!(text(&a.read_line()), "HD\r\n");
    // Read back by the plain key through another node, and on its owner.
    let mut b = cluster.connect(1);
    assert_eq!(
        get(&mut b, &key),
        format!("VALUE {key} 0 3\r\nabc\r\nEND\r\n")
    );
    let mut owner = cluster.connect(2);
    assert_eq!(
        get(&mut owner, &key),
        format!("VALUE {key} 0 3\r\nabc\r\nEND\r\n")
    );
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn stats_cluster_shows_the_members_the_ring_and_the_links() {
    let cluster = Cluster::start(3, &[]);
    let mut c = cluster.connect(0);
    let remote = cluster.key_on(1, "st");
    set(&mut c, &remote, "x");
    assert_eq!(get(&mut c, &remote), value_reply(&remote, "x"));
    let stats = c.stats("cluster");
    let value = |name: &str| {
        stats
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {stats:?}"))
    };
    assert_eq!(value("cluster_node"), "n0");
    assert_eq!(value("cluster_ring"), "libketama");
    assert_eq!(value("cluster_members"), "3");
    assert_eq!(value("member:n0:this"), "1");
    assert_eq!(value("member:n1:this"), "0");
    // Equal weights: libketama's 160 points each.
    for n in 0..3 {
        assert_eq!(value(&format!("member:n{n}:points")), "160");
    }
    // The set and the get went over one shard's link to n1.
    assert_eq!(value("link:n1:forwarded"), "2");
    assert_eq!(value("link:n1:failed"), "0");
    assert_eq!(value("link:n1:in_flight"), "0");
    assert_eq!(value("link:n1:links_up"), "1");
    assert!(
        stats.iter().all(|(n, _)| !n.starts_with("link:n0:")),
        "no link to itself"
    );
    let general = c.stats("");
    assert_eq!(common::stat(&general, "cluster_forwarded"), 2);
}

#[test]
fn bad_cluster_settings_stop_the_start_with_one_line() {
    for (args, want) in [
        (
            &["--cluster-node", "x", "--cluster-peers", "a=127.0.0.1:7001"][..],
            "no entry for this node `x`",
        ),
        (
            &[
                "--cluster-node",
                "a",
                "--cluster-peers",
                "a=127.0.0.1:7001:0",
            ][..],
            "weight 0",
        ),
        (
            &[
                "--cluster-node",
                "a",
                "--cluster-peers",
                "a=127.0.0.1:7001,b=127.0.0.1:7001",
            ][..],
            "repeats the address",
        ),
        (
            &["--cluster-peers", "a=127.0.0.1:7001"][..],
            "without --cluster-node",
        ),
        (
            &[
                "--cluster-node",
                "a",
                "--cluster-peers",
                "a=127.0.0.1:7001",
                "--cluster-ring",
                "maglev",
            ][..],
            "maglev",
        ),
    ] {
        let (code, _, stderr) = common::run_to_exit(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

#[test]
fn large_values_cross_nodes_whole() {
    let cluster = Cluster::start(3, &[]);
    let key = cluster.key_on(2, "big");
    let value: String = (0..900_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let mut a = cluster.connect(0);
    set(&mut a, &key, &value);
    let mut b = cluster.connect(1);
    // Twice on one connection: the link's buffers are reused after a burst.
    for _ in 0..2 {
        let got = get(&mut b, &key);
        assert!(got == value_reply(&key, &value), "{} bytes back", got.len());
    }
}

#[test]
fn a_get_line_longer_than_a_piece_spans_the_nodes_in_order() {
    let cluster = Cluster::start(3, &[]);
    let mut c = cluster.connect(0);
    // 2,000 keys: a ~30 KB line, read in pieces (long_get.rs), each piece
    // split by node and shard.
    let keys: Vec<String> = (0..2000).map(|i| format!("longline:{i:05}")).collect();
    let mut sets = String::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            sets.push_str(&format!(
                "set {k} 0 0 {} noreply\r\n{i}\r\n",
                i.to_string().len()
            ));
        }
    }
    sets.push_str("mn\r\n");
    c.send(sets.as_bytes());
    assert_eq!(text(&c.read_through(b"MN\r\n")), "MN\r\n");
    let mut want = String::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            want.push_str(&format!("VALUE {k} 0 {}\r\n{i}\r\n", i.to_string().len()));
        }
    }
    want.push_str("END\r\n");
    let mut other = cluster.connect(1);
    other.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    same(&read_values(&mut other), &want, "long line through n1");
}

#[test]
fn nodes_that_disagree_about_the_ring_never_bounce_a_request() {
    use cluster::{Member, Ring, RingKind};
    use common::Server;
    // Two nodes whose lists differ in a's weight: for some keys a thinks b
    // owns them and b thinks a does. A request a forwards to b arrives on
    // a peer link, so b serves it instead of sending it back.
    for _ in 0..5 {
        let listeners: Vec<std::net::TcpListener> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(listeners);
        let ring = |wa: u32| {
            let m = |name: &str, port, weight| Member {
                name: name.into(),
                host: "127.0.0.1".into(),
                port,
                weight,
            };
            Ring::new(
                &[m("a", ports[0], wa), m("b", ports[1], 1)],
                RingKind::Libketama,
            )
            .unwrap()
        };
        let (seen_by_a, seen_by_b) = (ring(1), ring(50));
        let key = (0..100_000)
            .map(|i| format!("disagree:{i}"))
            .find(|k| seen_by_a.node_of(k.as_bytes()) == 1 && seen_by_b.node_of(k.as_bytes()) == 0)
            .unwrap_or_else(|| {
                panic!(
                    "no key the two rings disagree on; points a {} / {}",
                    seen_by_a.points_of(0),
                    seen_by_b.points_of(0)
                )
            });
        let list = |wa: u32| format!("a=127.0.0.1:{}:{wa},b=127.0.0.1:{}", ports[0], ports[1]);
        let start = |i: usize, wa: u32| {
            let port = ports[i].to_string();
            let name = ["a", "b"][i];
            let peers = list(wa);
            Server::try_start_exact(&[
                "-p",
                &port,
                "-t",
                "1",
                "-m",
                "8",
                "--cluster-node",
                name,
                "--cluster-peers",
                &peers,
            ])
        };
        let (Ok(a), Ok(b)) = (start(0, 1), start(1, 50)) else {
            continue; // lost a port race: pick new ports
        };
        let mut via_a = a.connect();
        set(&mut via_a, &key, "once");
        assert_eq!(get(&mut via_a, &key), value_reply(&key, "once"));
        // It was stored on b, where a sent it, and not bounced back to a.
        let mut on_b = b.connect();
        let stats_b = on_b.stats("cluster");
        assert_eq!(common::stat(&stats_b, "link:a:forwarded"), 0, "{stats_b:?}");
        let stats_a = via_a.stats("cluster");
        assert_eq!(common::stat(&stats_a, "link:b:forwarded"), 2, "{stats_a:?}");
        // Through b itself, b's own ring sends the key to a, which lacks it.
        assert_eq!(get(&mut on_b, &key), "END\r\n");
        return;
    }
    panic!("no free pair of ports after 5 tries");
}
