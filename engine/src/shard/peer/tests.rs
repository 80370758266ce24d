//! The link's life against a listener the test holds: lazy opening with the
//! announcement first, the bounds, the deadlines, failure and backoff.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use runtime::{Completion, Ring, RingConfig};

use super::replies::{Expect, OnFailure, Then, Waiting};
use super::{Failure, Links, State};
use crate::config::{ClusterPlan, Config};
use crate::shard::client::Client;
use crate::shard::ops::{OP_PEER_CONNECT, OP_PEER_RECV, OP_PEER_SEND};

fn plan(peer: SocketAddr, max_in_flight: usize) -> (ClusterPlan, Vec<SocketAddr>) {
    let mut c = Config::default();
    c.cluster.node = Some("a".into());
    c.cluster.peers = format!("a=127.0.0.1:1,b={peer}");
    c.cluster.max_in_flight = max_in_flight;
    let plan = c.cluster_plan().unwrap().unwrap();
    let addrs = plan.resolve().unwrap();
    (plan, addrs)
}

fn waiting(part: u32, since: Instant) -> Waiting {
    Waiting {
        client: Some(Client::Conn {
            slot: 1,
            generation: 1,
        }),
        part,
        expect: Expect::One,
        on_failure: OnFailure::Error,
        since,
        then: Then::Nothing,
        replay: None,
    }
}

/// Runs the ring until `done`, feeding the links' completions back to them.
fn drive(ring: &mut Ring, links: &mut Links, mut done: impl FnMut(&Links) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut completions: Vec<Completion> = Vec::new();
    while !done(links) {
        assert!(
            Instant::now() < deadline,
            "the ring did not get there in 10 s"
        );
        links.flush(ring);
        ring.submit_and_wait(1, Some(Duration::from_millis(50)))
            .unwrap();
        completions.clear();
        ring.drain(&mut completions);
        for c in &completions {
            let t = c.token();
            let failure = match t.op {
                OP_PEER_CONNECT => links.on_connect(ring, t, c.result),
                OP_PEER_SEND => links.on_send(ring, t, c.result),
                OP_PEER_RECV => links.on_recv(t, c.result).err(),
                _ => None,
            };
            assert_eq!(failure, None, "op {}", t.op);
        }
    }
}

fn state(links: &Links) -> State {
    links.links[1].as_ref().unwrap().state
}

#[test]
fn a_link_opens_on_first_use_and_announces_itself_first() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (plan, addrs) = plan(listener.local_addr().unwrap(), 16);
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let mut links = Links::new(&plan, &addrs, None);
    assert!(links.links[0].is_none(), "no link to this node");
    assert_eq!(state(&links), State::Down { retry_at: None });
    let now = Instant::now();
    assert!(links.has_room(1) && !links.refuses(1, now));
    assert!(links.push(&mut ring, 1, &[b"get k\r\n"], waiting(7, now)));
    assert!(matches!(state(&links), State::Connecting { .. }));
    drive(&mut ring, &mut links, |l| state(l) == State::Up);
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    drive(&mut ring, &mut links, |l| {
        let link = l.links[1].as_ref().unwrap();
        link.out.is_empty() && link.sock.as_ref().is_some_and(|s| !s.sending)
    });
    let want = b"cluster_link a\r\nget k\r\n";
    let mut got = vec![0; want.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
    let report: Vec<_> = links.report().collect();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].0, 1);
    assert_eq!(report[0].1.stats.forwarded, 1);
    assert_eq!(report[0].1.in_flight, 1, "the announcement is not counted");
    assert!(report[0].1.up);
}

#[test]
fn a_full_link_takes_no_more_and_deadlines_expire() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (plan, addrs) = plan(listener.local_addr().unwrap(), 3);
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let mut links = Links::new(&plan, &addrs, None);
    let long_ago = Instant::now() - Duration::from_secs(5);
    assert!(links.push(&mut ring, 1, &[b"get a\r\n"], waiting(1, long_ago)));
    assert!(links.has_room(1));
    assert!(links.push(&mut ring, 1, &[b"get b\r\n"], waiting(2, long_ago)));
    // The announcement and two requests fill the three places.
    assert!(!links.has_room(1));
    assert!(links.has_deadlines());
    // Opened "5 s ago": the connect is past its 1 s.
    assert_eq!(
        links.expired(Instant::now()),
        vec![(1, Failure::ConnectTimeout)]
    );
    assert!(links.expired(long_ago).is_empty());
}

#[test]
fn a_failed_link_answers_what_waited_and_backs_off_doubling() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (plan, addrs) = plan(listener.local_addr().unwrap(), 16);
    let mut ring = Ring::new(RingConfig::default()).unwrap();
    let mut links = Links::new(&plan, &addrs, None);
    let now = Instant::now();
    assert!(links.push(&mut ring, 1, &[b"get a\r\n"], waiting(4, now)));
    drive(&mut ring, &mut links, |l| state(l) == State::Up);
    let failed_at = Instant::now();
    let waited = links.fail(&mut ring, 1, Failure::RequestTimeout, failed_at);
    // The announcement (nobody's) and the request, in order.
    assert_eq!(waited.len(), 2);
    assert!(waited[0].client.is_none());
    assert_eq!(waited[1].part, 4);
    let link = links.links[1].as_ref().unwrap();
    assert_eq!((link.stats.timeouts, link.stats.failed), (1, 1));
    assert!(links.refuses(1, failed_at));
    // The socket is retired once the kernel gives back what it held.
    drive(&mut ring, &mut links, |l| {
        l.links[1].as_ref().unwrap().sock.is_none()
    });
    let backoff = plan.backoff;
    assert!(links.refuses(1, failed_at + backoff / 2));
    assert!(!links.refuses(1, failed_at + backoff));
    // The next failure waits twice as long.
    let again = failed_at + backoff;
    assert!(links.push(&mut ring, 1, &[b"get b\r\n"], waiting(5, again)));
    let waited = links.fail(&mut ring, 1, Failure::Closed, again);
    assert_eq!(waited.len(), 2);
    drive(&mut ring, &mut links, |l| {
        l.links[1].as_ref().unwrap().sock.is_none()
    });
    assert!(links.refuses(1, again + backoff + backoff / 2));
    assert!(!links.refuses(1, again + 2 * backoff));
}

/// A link to a TLS listener the test runs on a thread: rustls' own server
/// with `cert` (a file stem of testdata/peer) and mutual TLS, which reads
/// `want` and answers `reply`. The link's `Certs` are node0's.
fn tls_peer(cert: &'static str, want: &'static [u8], reply: &'static [u8]) -> (Links, Ring) {
    use std::io::Write;
    let data = |f: &str| {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/tls/testdata/peer")
            .join(f)
    };
    let settings = |node: &str| crate::tls::Settings {
        chain_cert: data(&format!("{node}.pem")),
        key: data(&format!("{node}.key")),
        ca_cert: Some(data("ca.pem")),
        verify_mode: 3,
        min_version: crate::tls::MinVersion::Tls12,
        session_cache: false,
        ciphers: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = crate::tls::server_config(&settings(cert)).unwrap().config;
    let (plan, addrs) = plan(listener.local_addr().unwrap(), 16);
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = rustls::ServerConnection::new(server).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let mut got = vec![0; want.len()];
        if s.read_exact(&mut got).is_ok() {
            assert_eq!(got, want);
            s.write_all(reply).unwrap();
            s.flush().unwrap();
        }
        // Hold the connection until the link is done with it.
        let _ = s.read(&mut [0; 1]);
    });
    let certs = crate::tls::Certs::load(settings("node0"), true).unwrap();
    let links = Links::new(&plan, &addrs, Some(std::sync::Arc::new(certs)));
    let ring = Ring::new(RingConfig::default()).unwrap();
    (links, ring)
}

/// Runs the ring until `done`, decrypting what TLS receives (its plaintext
/// goes to `plain`); the first failure ends it.
fn drive_tls(
    ring: &mut Ring,
    links: &mut Links,
    plain: &mut Vec<u8>,
    mut done: impl FnMut(&Links) -> bool,
) -> Option<Failure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut completions: Vec<Completion> = Vec::new();
    while !done(links) {
        assert!(Instant::now() < deadline, "not there in 10 s");
        links.flush(ring);
        ring.submit_and_wait(1, Some(Duration::from_millis(50)))
            .unwrap();
        completions.clear();
        ring.drain(&mut completions);
        for c in &completions {
            let t = c.token();
            let failure = match t.op {
                OP_PEER_CONNECT => links.on_connect(ring, t, c.result),
                OP_PEER_SEND => links.on_send(ring, t, c.result),
                OP_PEER_RECV => match links.on_recv(t, c.result) {
                    Ok(true) => {
                        let mut rx = links.take_tls(1).expect("a TLS link");
                        let f = rx.receive(|p| {
                            plain.extend_from_slice(p);
                            (p.len(), None)
                        });
                        links.put_tls(1, rx);
                        links.rearm(ring, 1);
                        f
                    }
                    Ok(false) => None,
                    Err(f) => Some(f),
                },
                _ => None,
            };
            if failure.is_some() {
                return failure;
            }
        }
    }
    None
}

#[test]
fn a_tls_link_holds_requests_until_its_handshake_and_is_up_at_the_first_reply() {
    let (mut links, mut ring) = tls_peer(
        "node1",
        b"cluster_link a\r\nget k\r\nget j\r\n",
        b"OK\r\nEND\r\n",
    );
    let now = Instant::now();
    assert!(links.push(&mut ring, 1, &[b"get k\r\n"], waiting(1, now)));
    assert!(links.is_tls(1));
    let mut plain = Vec::new();
    let f = drive_tls(&mut ring, &mut links, &mut plain, |l| {
        matches!(state(l), State::Handshaking { .. })
    });
    assert_eq!(f, None);
    // Requests pushed while the handshake runs wait in plaintext, counted
    // against the link's bound, and go out encrypted after it.
    assert!(links.push(&mut ring, 1, &[b"get j\r\n"], waiting(2, now)));
    assert!(links.has_deadlines());
    let f = drive_tls(&mut ring, &mut links, &mut plain, |l| state(l) == State::Up);
    assert_eq!(f, None);
    assert!(
        plain.starts_with(b"OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&plain)
    );
    let report: Vec<_> = links.report().collect();
    assert_eq!(report[0].1.stats.tls_handshakes, 1);
    assert_eq!(report[0].1.stats.tls_failures, 0);
    assert!(report[0].1.up);
}

#[test]
fn a_tls_link_to_a_peer_of_another_ca_fails_like_a_connect_and_is_counted() {
    let (mut links, mut ring) = tls_peer("other", b"cluster_link a\r\n", b"OK\r\n");
    let now = Instant::now();
    assert!(links.push(&mut ring, 1, &[b"get k\r\n"], waiting(1, now)));
    let mut plain = Vec::new();
    let f = drive_tls(&mut ring, &mut links, &mut plain, |_| false);
    assert_eq!(f, Some(Failure::Tls));
    assert!(plain.is_empty());
    let failed_at = Instant::now();
    let waited = links.fail(&mut ring, 1, Failure::Tls, failed_at);
    assert_eq!(waited.len(), 2, "the announcement and the request");
    let link = links.links[1].as_ref().unwrap();
    assert_eq!((link.stats.tls_failures, link.stats.failed), (1, 1));
    assert_eq!(link.stats.tls_handshakes, 0);
    assert!(link.tls.is_none());
    // Backoff as after any failed connect.
    assert!(links.refuses(1, failed_at));
}
