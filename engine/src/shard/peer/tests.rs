//! The link's life against a listener the test holds: lazy opening with the
//! announcement first, the bounds, the deadlines, failure and backoff.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use runtime::{Completion, Ring, RingConfig};

use super::replies::{Expect, OnFailure, Waiting};
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
        ack: None,
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
    let mut links = Links::new(&plan, &addrs);
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
    let mut links = Links::new(&plan, &addrs);
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
    let mut links = Links::new(&plan, &addrs);
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
