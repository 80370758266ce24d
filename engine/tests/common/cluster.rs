//! A cluster of real nodes on 127.0.0.1 for the integration tests, and the
//! retrieval-reply helpers they share.
//!
//! Every node's port must be in the peer list before any node starts: the
//! ports are picked by binding port 0 (all at once, so they differ), released,
//! and passed with -p; a lost race ("in use") starts the cluster again.
//!
//! [`Cluster::start`] keeps the member list static (the ring never changes,
//! as issue 11's tests expect); [`Cluster::start_gossip`] runs membership by
//! gossip, each node's UDP gossip port the same number as its TCP data port
//! (`--cluster-port`), so no further port has to be found free.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use cluster::{Member, Ring, RingKind};

use super::{Conn, Server};

/// Bytes as text, whole (`common::show` shortens long replies).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A node of a test cluster: its arguments, to restart it on its port.
pub struct Node {
    pub server: Option<Server>,
    pub args: Vec<String>,
}

pub struct Cluster {
    /// The real nodes, n0, n1, ...
    pub nodes: Vec<Node>,
    /// Listeners standing in for further members (fake peers the test
    /// drives by hand), named f0, f1, ... after the real nodes in the ring.
    pub fakes: Vec<TcpListener>,
    pub ring: Ring,
}

impl Cluster {
    /// `n` real nodes on 127.0.0.1, each `-t 2`, with `extra` arguments.
    /// Static membership.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with_fakes(n, 0, extra)
    }

    /// `n` real nodes and `fakes` members whose port is a listener the test
    /// holds; static membership (a fake does not gossip).
    pub fn start_with_fakes(n: usize, fakes: usize, extra: &[&str]) -> Cluster {
        Cluster::launch(n, fakes, false, &|_, port| with_port(port, extra))
    }

    /// `n` real nodes, `-t 2`, with membership by gossip.
    pub fn start_gossip(n: usize, extra: &[&str]) -> Cluster {
        Cluster::launch(n, 0, true, &|_, port| with_port(port, extra))
    }

    /// `n` real nodes, `-t 2`, each with the arguments `args(i, port)`
    /// gives (which must make node `i` listen on `port`, its address in the
    /// member list, e.g. `-p PORT`): per-node certificates, a member address
    /// that is a `notls:` listener. `gossip` as [`Cluster::start_gossip`].
    pub fn start_each(n: usize, gossip: bool, args: &dyn Fn(usize, u16) -> Vec<String>) -> Cluster {
        Cluster::launch(n, 0, gossip, args)
    }

    fn launch(
        n: usize,
        fakes: usize,
        gossip: bool,
        node_args: &dyn Fn(usize, u16) -> Vec<String>,
    ) -> Cluster {
        for _ in 0..5 {
            let mut listeners: Vec<TcpListener> = (0..n + fakes)
                .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
                .collect();
            let ports: Vec<u16> = listeners
                .iter()
                .map(|l| l.local_addr().unwrap().port())
                .collect();
            let fakes = listeners.split_off(n);
            drop(listeners);
            let name = |i: usize| {
                if i < n {
                    format!("n{i}")
                } else {
                    format!("f{}", i - n)
                }
            };
            let peers: Vec<String> = ports
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{}=127.0.0.1:{p}", name(i)))
                .collect();
            let peers = peers.join(",");
            let members: Vec<Member> = ports
                .iter()
                .enumerate()
                .map(|(i, &port)| Member {
                    name: name(i),
                    host: "127.0.0.1".into(),
                    port,
                    weight: 1,
                })
                .collect();
            let ring = Ring::new(&members, RingKind::Libketama).unwrap();
            let mut nodes = Vec::new();
            let mut lost_race = false;
            for (i, port) in ports.iter().enumerate().take(n) {
                let mut args: Vec<String> = [
                    "-t",
                    "2",
                    "-m",
                    "16",
                    "--cluster-node",
                    &format!("n{i}"),
                    "--cluster-peers",
                    &peers,
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                if gossip {
                    args.extend(["--cluster-port".to_string(), port.to_string()]);
                } else {
                    args.extend(["--cluster-membership".into(), "static".into()]);
                }
                args.extend(node_args(i, *port));
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                match Server::try_start_exact(&argv) {
                    Ok(server) => nodes.push(Node {
                        server: Some(server),
                        args,
                    }),
                    Err(f) if f.stderr.iter().any(|l| l.contains("in use")) => {
                        lost_race = true;
                        break;
                    }
                    Err(f) => panic!("node n{i} did not start: {f:?}"),
                }
            }
            if !lost_race {
                return Cluster { nodes, fakes, ring };
            }
        }
        panic!("no free set of ports after 5 tries");
    }

    pub fn connect(&self, i: usize) -> Conn {
        self.nodes[i]
            .server
            .as_ref()
            .expect("node running")
            .connect()
    }

    pub fn owner(&self, key: &str) -> usize {
        self.ring.node_of(key.as_bytes())
    }

    /// A key owned by node `node`, distinct per `tag`.
    pub fn key_on(&self, node: usize, tag: &str) -> String {
        (0..)
            .map(|i| format!("{tag}:{i}"))
            .find(|k| self.owner(k) == node)
            .unwrap()
    }

    /// Polls `stats cluster` on node `i` until `done` holds for it, within
    /// `within`; returns how long that took.
    pub fn until_stats(
        &self,
        i: usize,
        within: Duration,
        what: &str,
        done: impl Fn(&[(String, String)]) -> bool,
    ) -> Duration {
        let start = Instant::now();
        let mut c = self.connect(i);
        loop {
            let stats = c.stats("cluster");
            if done(&stats) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "n{i}: not {what} after {within:?}: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls node `i` until it sees the members `states` name in those
    /// states (`stats cluster`'s `member:NAME:state`).
    pub fn until_states(&self, i: usize, states: &[(&str, &str)], within: Duration) -> Duration {
        self.until_stats(i, within, &format!("{states:?}"), |stats| {
            states
                .iter()
                .all(|(name, want)| stat_text(stats, &format!("member:{name}:state")) == *want)
        })
    }

    /// Polls every running node until it sees every other one alive.
    pub fn until_all_alive(&self, within: Duration) {
        let names: Vec<String> = (0..self.nodes.len()).map(|j| format!("n{j}")).collect();
        for i in (0..self.nodes.len()).filter(|&i| self.nodes[i].server.is_some()) {
            let want: Vec<(&str, &str)> = names
                .iter()
                .enumerate()
                .map(|(j, n)| (n.as_str(), if i == j { "this" } else { "alive" }))
                .collect();
            self.until_states(i, &want, within);
        }
    }

    pub fn kill(&mut self, i: usize) {
        drop(self.nodes[i].server.take());
    }

    pub fn restart(&mut self, i: usize) {
        let argv: Vec<&str> = self.nodes[i].args.iter().map(String::as_str).collect();
        // The port was ours a moment ago; something else may briefly hold it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Server::try_start_exact(&argv) {
                Ok(s) => {
                    self.nodes[i].server = Some(s);
                    return;
                }
                Err(f)
                    if Instant::now() < deadline
                        && f.stderr.iter().any(|l| l.contains("in use")) =>
                {
                    std::thread::yield_now()
                }
                Err(f) => panic!("node n{i} did not restart: {f:?}"),
            }
        }
    }
}

/// `-p PORT` and `extra`: a node whose member address is its TCP port.
fn with_port(port: u16, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-p".to_string(), port.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A `STAT` value as text ("" when absent).
pub fn stat_text(stats: &[(String, String)], name: &str) -> String {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

pub fn set(c: &mut Conn, key: &str, value: &str) {
    c.send(format!("set {key} 5 0 {}\r\n{value}\r\n", value.len()).as_bytes());
    assert_eq!(text(&c.read_line()), "STORED\r\n", "set {key}");
}

/// One retrieval reply, read by its lengths (values may hold `END` lines),
/// or whatever single line came instead (`SERVER_ERROR ...`).
pub fn read_values(c: &mut Conn) -> String {
    let mut reply = Vec::new();
    loop {
        let line = c.read_line();
        reply.extend_from_slice(&line);
        let first = text(&line);
        let Some(header) = first.strip_prefix("VALUE ") else {
            return text(&reply);
        };
        let len: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("bad VALUE line {first:?}"));
        reply.extend_from_slice(&c.read_n(len + 2));
    }
}

pub fn get(c: &mut Conn, key: &str) -> String {
    c.send(format!("get {key}\r\n").as_bytes());
    read_values(c)
}

/// Equal, or a panic that names the first line that differs.
pub fn same(got: &str, want: &str, context: &str) {
    if got != want {
        let (g, w): (Vec<&str>, Vec<&str>) =
            (got.split("\r\n").collect(), want.split("\r\n").collect());
        let i = g
            .iter()
            .zip(&w)
            .position(|(a, b)| a != b)
            .unwrap_or(g.len().min(w.len()));
        panic!(
            "{context}: line {i} differs: got {:?}, want {:?} ({} vs {} lines)",
            g.get(i),
            w.get(i),
            g.len(),
            w.len()
        );
    }
}

pub fn value_reply(key: &str, value: &str) -> String {
    format!("VALUE {key} 5 {}\r\n{value}\r\nEND\r\n", value.len())
}

/// Polls `get key` through `c` until the reply is `want`, within `within`.
pub fn eventually(c: &mut Conn, key: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = get(c, key);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{key}: still {got:?} after {within:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
