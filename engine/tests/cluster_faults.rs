//! Peer links against a peer the test plays by hand (a listener in the
//! ring): garbage or a close in the middle of a reply fails only the
//! requests in flight on that link; a peer that stops answering is
//! backpressure bounded by `cluster.max_in_flight`, then a timeout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, read_values, set, text, value_reply};

const FAILURE: &str = "SERVER_ERROR backend failure\r\n";

/// The next connection on `listener`, within a deadline (a thread accepts,
/// so that a link that never comes fails the test instead of hanging it).
fn accept(listener: &TcpListener) -> BufReader<TcpStream> {
    let listener = listener.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    let stream = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the node opened no link within 10 s")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    BufReader::new(stream)
}

fn line(peer: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    peer.read_line(&mut l).expect("a line from the node");
    l
}

/// Reads until the node closes the link; returns everything it sent.
fn until_closed(peer: &mut BufReader<TcpStream>) -> String {
    let mut all = Vec::new();
    peer.read_to_end(&mut all)
        .expect("the node closes the link");
    text(&all)
}

#[test]
fn garbage_fails_only_the_requests_in_flight_on_that_link() {
    let cluster = Cluster::start_with_fakes(1, 1, &[]);
    let fake = cluster.nodes.len();
    let (k1, k2) = (cluster.key_on(fake, "g1"), cluster.key_on(fake, "g2"));
    let local = cluster.key_on(0, "mine");
    let mut c = cluster.connect(0);
    set(&mut c, &local, "ok");
    c.send(format!("get {k1}\r\nget {k2}\r\nget {local}\r\n").as_bytes());
    let mut peer = accept(&cluster.fakes[0]);
    assert_eq!(line(&mut peer), "cluster_link n0\r\n");
    assert_eq!(line(&mut peer), format!("get {k1}\r\n"));
    assert_eq!(line(&mut peer), format!("get {k2}\r\n"));
    // The first reply is good; the second breaks the stream (its data
    // block is not followed by CRLF).
    let w = peer.get_mut();
    w.write_all(format!("OK\r\nVALUE {k1} 3 2\r\nhi\r\nEND\r\nVALUE {k2} 0 2\r\nhiXX").as_bytes())
        .unwrap();
    assert_eq!(
        read_values(&mut c),
        format!("VALUE {k1} 3 2\r\nhi\r\nEND\r\n")
    );
    assert_eq!(read_values(&mut c), FAILURE);
    assert_eq!(read_values(&mut c), value_reply(&local, "ok"));
    assert_eq!(until_closed(&mut peer), "");
    let stats = c.stats("cluster");
    assert_eq!(common::stat(&stats, "link:f0:forwarded"), 2, "{stats:?}");
    assert_eq!(common::stat(&stats, "link:f0:failed"), 1, "{stats:?}");
    assert_eq!(common::stat(&stats, "link:f0:in_flight"), 0, "{stats:?}");
}

#[test]
fn a_close_in_the_middle_of_a_reply_fails_what_waited_and_the_link_reopens() {
    let cluster = Cluster::start_with_fakes(1, 1, &[]);
    let fake = cluster.nodes.len();
    let key = cluster.key_on(fake, "cut");
    let mut c = cluster.connect(0);
    c.send(format!("get {key}\r\nset {key} 0 0 1 noreply\r\nx\r\nmg {key} v q\r\n").as_bytes());
    let mut peer = accept(&cluster.fakes[0]);
    assert_eq!(line(&mut peer), "cluster_link n0\r\n");
    assert_eq!(line(&mut peer), format!("get {key}\r\n"));
    // noreply and quiet requests travel with an `mn` after them.
    assert_eq!(line(&mut peer), format!("set {key} 0 0 1 noreply\r\n"));
    assert_eq!(line(&mut peer), "x\r\n");
    assert_eq!(line(&mut peer), "mn\r\n");
    assert_eq!(line(&mut peer), format!("mg {key} v q\r\n"));
    assert_eq!(line(&mut peer), "mn\r\n");
    peer.get_mut()
        .write_all(format!("OK\r\nVALUE {key} 0 10\r\nabc").as_bytes())
        .unwrap();
    drop(peer);
    // The get fails; the noreply set says nothing; the quiet mg says its failure.
    c.send(b"mn\r\n");
    assert_eq!(
        text(&c.read_through(b"MN\r\n")),
        format!("{FAILURE}{FAILURE}MN\r\n")
    );
    // After the backoff, the next request opens a new link: the fake side
    // answers it from a thread while the client keeps asking.
    let listener = cluster.fakes[0].try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    let wanted = key.clone();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut peer = BufReader::new(stream);
        let lines = [line(&mut peer), line(&mut peer)];
        peer.get_mut().write_all(b"OK\r\nEND\r\n").unwrap();
        let _ = tx.send((lines, wanted));
        // Hold the link open until the test is done with it.
        let _ = until_closed(&mut peer);
    });
    let started = Instant::now();
    loop {
        c.send(format!("get {key}\r\n").as_bytes());
        match read_values(&mut c) {
            r if r == "END\r\n" => break,
            r if r == FAILURE => {
                assert!(started.elapsed() < Duration::from_secs(5), "no reconnect");
                std::thread::sleep(Duration::from_millis(20));
            }
            r => panic!("unexpected {r:?}"),
        }
    }
    let (lines, key) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        lines,
        ["cluster_link n0\r\n".to_string(), format!("get {key}\r\n")]
    );
    let stats = c.stats("cluster");
    assert!(common::stat(&stats, "link:f0:reconnects") >= 1, "{stats:?}");
}

#[test]
fn a_peer_that_stops_answering_is_bounded_backpressure_then_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bounded.toml");
    std::fs::write(
        &file,
        "[cluster]\nmax_in_flight = 3\nrequest_timeout_ms = 1000\n",
    )
    .unwrap();
    let path = file.to_str().unwrap().to_string();
    let cluster = Cluster::start_with_fakes(1, 1, &["--config", &path]);
    let fake = cluster.nodes.len();
    let keys: Vec<String> = (0..6)
        .map(|i| cluster.key_on(fake, &format!("bp{i}")))
        .collect();
    let local = cluster.key_on(0, "here");
    let mut c = cluster.connect(0);
    set(&mut c, &local, "v");
    let mut sent = String::new();
    for k in &keys {
        sent.push_str(&format!("get {k}\r\n"));
    }
    sent.push_str(&format!("get {local}\r\n"));
    let started = Instant::now();
    c.send(sent.as_bytes());
    let mut peer = accept(&cluster.fakes[0]);
    assert_eq!(line(&mut peer), "cluster_link n0\r\n");
    // The announcement and two gets fill the three places; the rest wait on
    // the client's connection, not in a queue of the node's.
    let got = until_closed(&mut peer);
    assert_eq!(got, format!("get {}\r\nget {}\r\n", keys[0], keys[1]));
    for k in &keys {
        assert_eq!(read_values(&mut c), FAILURE, "{k}");
    }
    assert_eq!(read_values(&mut c), value_reply(&local, "v"));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let stats = c.stats("cluster");
    assert_eq!(common::stat(&stats, "link:f0:timeouts"), 1, "{stats:?}");
    assert_eq!(common::stat(&stats, "link:f0:failed"), 6, "{stats:?}");
}
