//! Expiry times as memcached reads them: up to 30 days relative, beyond that
//! an absolute unix time, negative already expired; TTLs reported by `mg t`
//! and changed by touch, gat and `mg T`; items really disappear when their
//! time comes.

mod common;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Conn, READ_DEADLINE, Server};

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The TTL `mg k t` reports, or None on a miss.
fn ttl(c: &mut Conn, key: &str) -> Option<i64> {
    let reply = String::from_utf8(c.round_trip(format!("mg {key} t\r\n").as_bytes())).unwrap();
    if reply == "EN\r\n" {
        return None;
    }
    let t = reply
        .trim_end()
        .strip_prefix("HD t")
        .unwrap_or_else(|| panic!("{reply:?}"));
    Some(t.parse().unwrap())
}

#[track_caller]
fn assert_ttl_near(got: Option<i64>, want: i64) {
    let got = got.expect("a hit");
    assert!(
        (want - 2..=want).contains(&got),
        "TTL {got}, want about {want}"
    );
}

#[test]
fn relative_absolute_and_negative_exptimes() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let keys: Vec<String> = (0..4).map(|i| format!("exp:{i}")).collect();
    for k in &keys {
        assert_eq!(
            c.round_trip(format!("set {k} 0 100 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
        assert_ttl_near(ttl(&mut c, k), 100);
        // 30 days is still relative.
        assert_eq!(
            c.round_trip(format!("set {k} 0 2592000 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
        assert_ttl_near(ttl(&mut c, k), 2_592_000);
        // Beyond that, a unix time.
        let at = now_unix() + 500;
        assert_eq!(
            c.round_trip(format!("set {k} 0 {at} 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
        assert_ttl_near(ttl(&mut c, k), 500);
        let past = now_unix() - 10;
        assert_eq!(
            c.round_trip(format!("set {k} 0 {past} 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
        assert_eq!(ttl(&mut c, k), None, "an absolute time in the past");
        assert_eq!(
            c.round_trip(format!("set {k} 0 0 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
        assert_eq!(ttl(&mut c, k), Some(-1));
        // touch, gat and mg T change it.
        assert_eq!(
            c.round_trip(format!("touch {k} 300\r\n").as_bytes()),
            b"TOUCHED\r\n"
        );
        assert_ttl_near(ttl(&mut c, k), 300);
        c.round_trip(format!("gat 400 {k}\r\n").as_bytes());
        assert_ttl_near(ttl(&mut c, k), 400);
        c.round_trip(format!("mg {k} T600\r\n").as_bytes());
        assert_ttl_near(ttl(&mut c, k), 600);
        let at = now_unix() + 700;
        assert_eq!(
            c.round_trip(format!("touch {k} {at}\r\n").as_bytes()),
            b"TOUCHED\r\n"
        );
        assert_ttl_near(ttl(&mut c, k), 700);
        assert_eq!(
            c.round_trip(format!("touch {k} -1\r\n").as_bytes()),
            b"TOUCHED\r\n"
        );
        assert_eq!(ttl(&mut c, k), None);
    }
}

#[test]
fn items_disappear_when_their_time_comes() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let keys: Vec<String> = (0..8).map(|i| format!("short:{i}")).collect();
    for k in &keys {
        assert_eq!(
            c.round_trip(format!("set {k} 0 1 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
        assert_eq!(
            c.round_trip(format!("set {k}:long 0 100 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
    }
    // Poll (bounded) until every short-lived item is gone.
    let deadline = Instant::now() + READ_DEADLINE;
    for k in &keys {
        while c.get(k).is_some() {
            assert!(Instant::now() < deadline, "{k} outlived its 1 s TTL");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(c.get(&format!("{k}:long")).is_some());
    }
}

/// flush_all with a delay: nothing changes before its time, everything
/// stored before it is gone after, on both shards; items stored later
/// survive.
#[test]
fn a_delayed_flush_takes_effect_at_its_time() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    let keys: Vec<String> = (0..8).map(|i| format!("delayed:{i}")).collect();
    for k in &keys {
        c.set(k, b"before");
    }
    assert_eq!(c.round_trip(b"flush_all 2\r\n"), b"OK\r\n");
    for k in &keys {
        assert!(c.get(k).is_some(), "{k} flushed before the delay");
    }
    let deadline = Instant::now() + READ_DEADLINE;
    for k in &keys {
        while c.get(k).is_some() {
            assert!(Instant::now() < deadline, "{k} survived the delayed flush");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // As in memcached, an item stored within the flush's own second is
    // flushed too (time granularity); one a second later is not.
    std::thread::sleep(Duration::from_millis(1100));
    for k in &keys {
        c.set(k, b"after");
    }
    std::thread::sleep(Duration::from_millis(1100));
    for k in &keys {
        assert_eq!(
            c.get(k).as_deref(),
            Some(&b"after"[..]),
            "{k} stored after the flush"
        );
    }
}

/// The crawler unlinks a flushed item between requests; with `-o no_modern`
/// (or `no_lru_crawler`) it is off, as memcached's, and the item stays until
/// a set over it reclaims its memory (`reclaimed`, which memcached's
/// issue_183.t counts on).
#[test]
fn the_crawler_reclaims_between_requests_unless_it_is_off() {
    let reclaimed = |c: &mut Conn| {
        let s = c.stats("");
        (
            common::stat(&s, "crawler_reclaimed"),
            common::stat(&s, "reclaimed"),
        )
    };
    let on = Server::start(&["-t", "1"]);
    let mut c = on.connect();
    c.set("k", b"1");
    assert_eq!(c.round_trip(b"flush_all\r\n"), b"OK\r\n");
    let deadline = Instant::now() + READ_DEADLINE;
    while reclaimed(&mut c).0 == 0 {
        assert!(Instant::now() < deadline, "the crawler never reclaimed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let off = Server::start(&["-t", "1", "-o", "no_modern"]);
    let mut c = off.connect();
    assert!(
        c.stats("settings")
            .contains(&("lru_crawler".into(), "no".into()))
    );
    c.set("k", b"1");
    assert_eq!(c.round_trip(b"flush_all\r\n"), b"OK\r\n");
    // Longer than a crawler tick (1 s): nothing may reclaim it meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reclaimed(&mut c), (0, 0));
    c.set("k", b"2");
    assert_eq!(reclaimed(&mut c), (0, 1));
}
