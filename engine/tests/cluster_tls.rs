//! TLS on peer links (issue 14): three real nodes on 127.0.0.1 under -Z, each
//! with its own certificate of one CA (engine/src/tls/testdata/peer, made by
//! scripts/make-peer-test-certs.sh). Forwarded gets and sets and replica
//! records cross the nodes over TLS links to the peers' memcached TLS
//! listeners; a node whose certificate another CA signed is refused both
//! ways and the refusals are counted (`link:NAME:tls_failures`); with
//! `--cluster-tls off` the links are plaintext to `notls:` listeners; under
//! `ssl_verify_mode=3` every node presents its certificate as a client; and
//! a -Z cluster without `ssl_ca_cert` does not start. The test's own client
//! speaks TLS to the nodes as any memcached client would (rustls).
//! The cluster harness is `common::cluster`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, value_reply};
use common::{READ_DEADLINE, parse_stats, run_to_exit, stat};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn certs() -> String {
    format!("{}/src/tls/testdata/peer", env!("CARGO_MANIFEST_DIR"))
}

/// `-Z -o ssl_*` for a node with certificate `cert` (node0, other, ...)
/// trusting `ca`, and `extra` -o settings.
fn tls_args(port: u16, cert: &str, ca: &str, extra: &str) -> Vec<String> {
    let d = certs();
    let mut o =
        format!("ssl_chain_cert={d}/{cert}.pem,ssl_key={d}/{cert}.key,ssl_ca_cert={d}/{ca}");
    if !extra.is_empty() {
        o.push(',');
        o.push_str(extra);
    }
    ["-p", &port.to_string(), "-Z", "-o", &o]
        .map(String::from)
        .to_vec()
}

/// Three nodes under -Z, node i with certificate node{i}, and `more`.
fn tls_cluster(extra_o: &str, more: &[&str]) -> Cluster {
    Cluster::start_each(3, false, &|i, port| {
        let mut a = tls_args(port, &format!("node{i}"), "ca.pem", extra_o);
        a.extend(more.iter().map(|s| s.to_string()));
        a
    })
}

/// A memcached client over TLS, verifying the node against `ca` (a file of
/// testdata/peer) and presenting node0's certificate (for mutual TLS).
struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, ca: &str) -> TlsClient {
        let d = certs();
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(format!("{d}/{ca}")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let chain = CertificateDer::pem_file_iter(format!("{d}/node0.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(format!("{d}/node0.key")).unwrap();
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect_timeout(&addr, READ_DEADLINE).expect("connect");
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        TlsClient {
            stream: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.stream.flush().unwrap();
    }

    /// Reads until `done` finds a complete reply in what is buffered.
    fn read_until(&mut self, done: impl Fn(&[u8]) -> Option<usize>) -> String {
        let deadline = Instant::now() + READ_DEADLINE;
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Some(n) = done(&self.buf) {
                let reply: Vec<u8> = self.buf.drain(..n).collect();
                return String::from_utf8_lossy(&reply).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no reply within {READ_DEADLINE:?}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("closed; have {:?}", String::from_utf8_lossy(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn read_line(&mut self) -> String {
        self.read_until(|b| b.windows(2).position(|w| w == b"\r\n").map(|p| p + 2))
    }

    /// One retrieval reply (values hold no CRLF here), or the one line sent
    /// instead.
    fn read_values(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let line = self.read_line();
            reply.push_str(&line);
            let Some(header) = line.strip_prefix("VALUE ") else {
                return reply;
            };
            let len: usize = header.split_whitespace().nth(2).unwrap().parse().unwrap();
            reply.push_str(&self.read_until(|b| (b.len() >= len + 2).then_some(len + 2)));
        }
    }

    fn set(&mut self, key: &str, value: &str) {
        self.send(format!("set {key} 5 0 {}\r\n{value}\r\n", value.len()).as_bytes());
        assert_eq!(self.read_line(), "STORED\r\n", "set {key}");
    }

    fn get(&mut self, key: &str) -> String {
        self.send(format!("get {key}\r\n").as_bytes());
        self.read_values()
    }

    fn stats(&mut self, section: &str) -> Vec<(String, String)> {
        self.send(format!("stats {section}\r\n").as_bytes());
        let reply = self.read_until(|b| {
            b.windows(5)
                .position(|w| w == b"END\r\n")
                .filter(|&p| p == 0 || b[p - 1] == b'\n')
                .map(|p| p + 5)
        });
        parse_stats(reply.as_bytes())
    }
}

fn client(cluster: &Cluster, i: usize) -> TlsClient {
    let server = cluster.nodes[i].server.as_ref().expect("node running");
    TlsClient::connect(server.addr, "ca.pem")
}

/// `link:NAME:STAT` of node `i`'s `stats cluster` (summed over its shards).
fn link_stat(c: &mut TlsClient, peer: &str, name: &str) -> u64 {
    stat(&c.stats("cluster"), &format!("link:{peer}:{name}"))
}

#[test]
fn forwarded_sets_and_gets_cross_every_node_over_tls() {
    let cluster = tls_cluster("", &[]);
    let mut conns: Vec<TlsClient> = (0..3).map(|i| client(&cluster, i)).collect();
    for owner in 0..3 {
        for n in 0..5 {
            let key = cluster.key_on(owner, &format!("tls{n}"));
            let value = format!("v{n}-{}", "x".repeat(n * 5000));
            let entry = (owner + 1) % 3;
            conns[entry].set(&key, &value);
            for (j, c) in conns.iter_mut().enumerate() {
                assert_eq!(c.get(&key), value_reply(&key, &value), "{key} through n{j}");
            }
        }
    }
    // A multi-get spanning the three nodes, in order.
    let keys: Vec<String> = (0..3).map(|o| cluster.key_on(o, "multi")).collect();
    for k in &keys {
        conns[0].set(k, k);
    }
    conns[1].send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let want: String = keys
        .iter()
        .map(|k| format!("VALUE {k} 5 {}\r\n{k}\r\n", k.len()))
        .collect::<String>()
        + "END\r\n";
    assert_eq!(conns[1].read_values(), want);
    // Every link that carried requests came up over TLS, none failed.
    for (i, c) in conns.iter_mut().enumerate() {
        for peer in (0..3).filter(|&p| p != i) {
            let name = format!("n{peer}");
            assert!(link_stat(c, &name, "forwarded") > 0, "n{i} -> {name}");
            assert!(link_stat(c, &name, "tls_handshakes") > 0, "n{i} -> {name}");
            assert_eq!(link_stat(c, &name, "tls_failures"), 0, "n{i} -> {name}");
            assert_eq!(link_stat(c, &name, "failed"), 0, "n{i} -> {name}");
        }
    }
}

#[test]
fn replica_records_travel_over_tls_links() {
    let cluster = tls_cluster("", &["--replicas", "2", "--cluster-read-from", "any"]);
    // Keys n1 owns whose copy lives on n2, written through n0: n0 forwards
    // to n1, n1 ships the copy to n2, both over TLS.
    let keys: Vec<String> = (0..)
        .map(|i| format!("rep:{i}"))
        .filter(|k| {
            let set: Vec<usize> = cluster.ring.replicas(k.as_bytes(), 2).collect();
            set == [1, 2]
        })
        .take(10)
        .collect();
    let mut a = client(&cluster, 0);
    for k in &keys {
        a.set(k, &format!("copy of {k}"));
    }
    // n2 answers from its own copy (read_from = any): the record arrived
    // (with replication_ack = all the set's reply waited for it).
    let mut c = client(&cluster, 2);
    for k in &keys {
        assert_eq!(
            c.get(k),
            value_reply(k, &format!("copy of {k}")),
            "{k} on n2"
        );
    }
    let mut b = client(&cluster, 1);
    assert!(link_stat(&mut b, "n2", "tls_handshakes") > 0);
    assert!(link_stat(&mut b, "n2", "forwarded") >= keys.len() as u64);
    assert_eq!(link_stat(&mut b, "n2", "tls_failures"), 0);
}

#[test]
fn a_node_of_another_ca_is_refused_both_ways_and_counted() {
    // n2's certificate is from another CA, and it trusts only that one.
    let cluster = Cluster::start_each(3, false, &|i, port| {
        if i == 2 {
            tls_args(port, "other", "other-ca.pem", "")
        } else {
            tls_args(port, &format!("node{i}"), "ca.pem", "")
        }
    });
    let mut a = client(&cluster, 0);
    let stranger_key = cluster.key_on(2, "stranger");
    a.send(format!("set {stranger_key} 0 0 1\r\nx\r\n").as_bytes());
    assert_eq!(a.read_line(), "SERVER_ERROR backend failure\r\n");
    // n0 and n1 still serve each other's keys.
    let key = cluster.key_on(1, "friend");
    a.set(&key, "ok");
    assert_eq!(client(&cluster, 1).get(&key), value_reply(&key, "ok"));
    assert!(link_stat(&mut a, "n2", "tls_failures") >= 1);
    assert_eq!(link_stat(&mut a, "n2", "tls_handshakes"), 0);
    assert!(link_stat(&mut a, "n1", "tls_handshakes") >= 1);
    // The other way: n2 refuses n0's certificate, not of its CA (n0 asks
    // for no client certificate, ssl_verify_mode=0).
    let n2 = cluster.nodes[2].server.as_ref().unwrap().addr;
    let mut c = TlsClient::connect(n2, "other-ca.pem");
    let key = cluster.key_on(0, "back");
    c.send(format!("get {key}\r\n").as_bytes());
    assert_eq!(c.read_line(), "SERVER_ERROR backend failure\r\n");
    assert!(link_stat(&mut c, "n0", "tls_failures") >= 1);
    // Failing is bounded: the stranger's keys are refused (at once while
    // the link backs off, after a handshake when it tries again), and the
    // node keeps serving its own.
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(a.get(&stranger_key), "SERVER_ERROR backend failure\r\n");
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    let own = cluster.key_on(0, "own");
    a.set(&own, "still");
    assert_eq!(a.get(&own), value_reply(&own, "still"));
    assert_eq!(link_stat(&mut a, "n2", "tls_handshakes"), 0);
}

#[test]
fn with_cluster_tls_off_links_are_plaintext_to_notls_listeners() {
    // Each member address is a notls: listener; clients still have TLS on
    // a port of its own (-p 0).
    let cluster = Cluster::start_each(3, false, &|i, port| {
        let d = certs();
        let o = format!(
            "ssl_chain_cert={d}/node{i}.pem,ssl_key={d}/node{i}.key,ssl_ca_cert={d}/ca.pem"
        );
        [
            "-p",
            "0",
            "-l",
            "127.0.0.1",
            "-l",
            &format!("notls:127.0.0.1:{port}"),
            "-Z",
            "-o",
            &o,
            "--cluster-tls",
            "off",
        ]
        .map(String::from)
        .to_vec()
    });
    // A node's member address: its notls: listener.
    let plain = |i: usize| {
        let at = cluster.nodes[i]
            .args
            .iter()
            .find_map(|a| a.strip_prefix("notls:"))
            .expect("a notls listener");
        common::Conn::connect(at.parse().unwrap())
    };
    let mut a = plain(0);
    for owner in 0..3 {
        let key = cluster.key_on(owner, "off");
        common::cluster::set(&mut a, &key, "clear");
        let mut b = plain((owner + 1) % 3);
        assert_eq!(
            common::cluster::get(&mut b, &key),
            value_reply(&key, "clear")
        );
    }
    // TLS clients are served on the TLS port as before.
    let mut t = client(&cluster, 2);
    let key = cluster.key_on(0, "off");
    assert_eq!(t.get(&key), value_reply(&key, "clear"));
    let stats = t.stats("cluster");
    assert!(stat(&stats, "link:n0:forwarded") > 0);
    assert_eq!(stat(&stats, "link:n0:tls_handshakes"), 0);
    assert_eq!(stat(&stats, "link:n0:tls_failures"), 0);
}

#[test]
fn under_mutual_tls_nodes_present_their_certificates_to_each_other() {
    let cluster = tls_cluster("ssl_verify_mode=3", &[]);
    let mut conns: Vec<TlsClient> = (0..3).map(|i| client(&cluster, i)).collect();
    for owner in 0..3 {
        let key = cluster.key_on(owner, "mtls");
        conns[(owner + 1) % 3].set(&key, "both ways");
        assert_eq!(
            conns[(owner + 2) % 3].get(&key),
            value_reply(&key, "both ways")
        );
    }
    for (i, c) in conns.iter_mut().enumerate() {
        for peer in (0..3).filter(|&p| p != i) {
            let name = format!("n{peer}");
            assert!(link_stat(c, &name, "tls_handshakes") > 0, "n{i} -> {name}");
            assert_eq!(link_stat(c, &name, "tls_failures"), 0, "n{i} -> {name}");
        }
    }
}

#[test]
fn a_tls_cluster_without_a_ca_or_reached_the_wrong_way_does_not_start() {
    let d = certs();
    let o = format!("ssl_chain_cert={d}/node0.pem,ssl_key={d}/node0.key");
    let base = [
        "-p",
        "1",
        "-Z",
        "-o",
        &o,
        "--cluster-node",
        "a",
        "--cluster-peers",
        "a=127.0.0.1:1,b=127.0.0.1:2",
    ];
    let (code, _, err) = run_to_exit(&base);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tls.ca_cert") && err.contains("--cluster-tls off"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Peer TLS off, but this node's member address is its TLS listener.
    let mut off = base.to_vec();
    off.extend(["--cluster-tls", "off"]);
    let (code, _, err) = run_to_exit(&off);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("notls:127.0.0.1:1"), "{err}");
}
