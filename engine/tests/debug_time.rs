//! `debugtime N|p|r` (a command of memcached's debug builds, which
//! memcached's expirations.t moves the clock with) is served only with
//! `-o debug_time`: it shifts or stops the clock of every shard, and once its
//! `OK` is out, a request on any shard sees the new time. Without the option
//! it answers `ERROR` and moves nothing, as a release memcached.

mod common;

use std::time::Duration;

use common::{Server, show, stat};

/// Keys enough to land on both shards of `-t 2`.
const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn set_all(c: &mut common::Conn, ttl: u32) {
    let mut w = Vec::new();
    for k in KEYS {
        w.extend_from_slice(format!("set {k} 0 {ttl} 1\r\nv\r\n").as_bytes());
    }
    assert_eq!(show(&c.round_trip(&w)), "STORED\r\n".repeat(KEYS.len()));
}

fn hits(c: &mut common::Conn) -> usize {
    KEYS.iter().filter(|k| c.get(k).is_some()).count()
}

#[test]
fn without_the_option_debugtime_is_an_unknown_command() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    set_all(&mut c, 100);
    for line in ["debugtime 200\r\n", "debugtime p\r\n", "debugtime r\r\n"] {
        assert_eq!(show(&c.round_trip(line.as_bytes())), "ERROR\r\n", "{line}");
    }
    assert_eq!(hits(&mut c), KEYS.len(), "the clock did not move");
}

#[test]
fn debugtime_moves_every_shards_clock_before_its_ok() {
    let server = Server::start(&["-t", "2", "-o", "debug_time"]);
    let mut c = server.connect();
    let up = stat(&c.stats(""), "uptime");
    set_all(&mut c, 3);
    assert_eq!(hits(&mut c), KEYS.len());
    // Not a number: memcached's ERROR, nothing moved.
    assert_eq!(show(&c.round_trip(b"debugtime soon\r\n")), "ERROR\r\n");
    assert_eq!(show(&c.round_trip(b"debugtime 2\r\n")), "OK\r\n");
    assert_eq!(hits(&mut c), KEYS.len(), "2 s of 3");
    // The gets in the same write as the shift, on both shards, see it: the
    // owner of each key applied it before the get reached it.
    let mut w = b"debugtime 1\r\n".to_vec();
    for k in KEYS {
        w.extend_from_slice(format!("get {k}\r\n").as_bytes());
    }
    assert_eq!(
        show(&c.round_trip(&w)),
        format!("OK\r\n{}", "END\r\n".repeat(KEYS.len()))
    );
    // memcached's uptime follows its moved clock.
    assert!(stat(&c.stats(""), "uptime") >= up + 3);
    // Back in time too: the clock is where it was before the shifts.
    assert_eq!(show(&c.round_trip(b"debugtime -3\r\n")), "OK\r\n");
    set_all(&mut c, 2);
    assert_eq!(hits(&mut c), KEYS.len());
    assert_eq!(show(&c.round_trip(b"debugtime 2\r\n")), "OK\r\n");
    assert_eq!(hits(&mut c), 0);
}

#[test]
fn debugtime_p_stops_the_clock_and_r_lets_it_run_again() {
    let server = Server::start(&["-t", "2", "-o", "debug_time"]);
    let mut c = server.connect();
    assert_eq!(show(&c.round_trip(b"debugtime p\r\n")), "OK\r\n");
    set_all(&mut c, 1);
    // Real time passes (the wait is the feature): the paused clock does not.
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(hits(&mut c), KEYS.len(), "expired on a paused clock");
    assert_eq!(show(&c.round_trip(b"debugtime r\r\n")), "OK\r\n");
    assert_eq!(hits(&mut c), 0, "the real time again after r");
}

#[test]
fn the_option_takes_no_value() {
    let (code, _, err) = common::run_to_exit(&["-o", "debug_time=1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("-o debug_time: takes no value"), "{err}");
}
