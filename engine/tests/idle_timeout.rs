//! `-o idle_timeout=N`: a connection that has sent no request for longer than
//! N seconds is closed and counted in `idle_kicks`, which `stats` shows only
//! while the timeout is set (memcached 1.6.18). Busy connections, and one in
//! the middle of a data block, stay open.
//!
//! The waits here are the feature itself (seconds of idleness), not start-up.

mod common;

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use common::{Conn, Server, show, stat};

/// Whether the server has closed `c` (EOF or reset), without blocking.
fn closed(c: &mut Conn) -> bool {
    c.stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let gone = match c.stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("unexpected bytes on an idle connection"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("read: {e}"),
    };
    c.stream.set_nonblocking(false).unwrap();
    gone
}

#[test]
fn idle_connections_are_kicked_and_busy_ones_are_not() {
    let server = Server::start(&["-t", "1", "-o", "idle_timeout=2"]);
    let mut busy = server.connect();
    assert_eq!(stat(&busy.stats(""), "idle_kicks"), 0);
    // Mid data block: memcached does not kick a connection reading one.
    let mut mid_block = server.connect();
    mid_block.send(b"set k 0 0 10\r\nabc");
    let mut idle = server.connect();
    assert_eq!(show(&idle.round_trip(b"version\r\n")[..8]), "VERSION ");
    let started = Instant::now();
    // The busy client keeps talking, well within the timeout each time.
    while !closed(&mut idle) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the idle connection was never closed"
        );
        assert!(busy.round_trip(b"").is_empty());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Closed only after the timeout: more than 2 s without a request.
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The connection mid data block was older than the idle one, so it
    // would have gone in the same pass; it is still there.
    mid_block.send(b"defghij\r\n");
    assert_eq!(show(&mid_block.read_line()), "STORED\r\n");
    let stats = busy.stats("");
    assert_eq!(stat(&stats, "idle_kicks"), 1, "{stats:?}");
    let settings = busy.stats("settings");
    assert!(settings.contains(&("idle_timeout".into(), "2".into())));
}

#[test]
fn without_idle_timeout_there_is_no_idle_kicks_stat() {
    let server = Server::start(&["-t", "1"]);
    let mut c = server.connect();
    let stats = c.stats("");
    assert!(!stats.iter().any(|(k, _)| k == "idle_kicks"), "{stats:?}");
    assert_eq!(stat(&stats, "conn_yields"), 0);
    let settings = c.stats("settings");
    assert!(settings.contains(&("idle_timeout".into(), "0".into())));
}
