//! Against the built-in null server: counts match its stats, open loop
//! offers the rate asked for, and a stalled server shows in the open-loop
//! tail (where a closed loop hides it).

mod common;

use common::{null_server, run, stats, words};

#[test]
fn counts_match_the_null_servers_stats() {
    let srv = null_server(&["--cores", "0,1"]);
    let before = stats(srv.addr);
    let r = run(
        srv.addr,
        &words("--cores 0,1 --conns 16 --depth 8 --mget 4 --duration 1s --warmup 200ms"),
    );
    let after = stats(srv.addr);
    let w = r.whole_run;
    assert_eq!(w.errors.total(), 0, "{:?}", w.errors);
    assert_eq!(w.requests, w.replies);
    assert_eq!(after["cmd_get"] - before["cmd_get"], w.get_keys);
    assert_eq!(after["cmd_set"] - before["cmd_set"], w.sets);
    assert_eq!(w.hits, w.get_keys, "the null server hits every key");
    assert_eq!(
        after["total_connections"] - before["total_connections"],
        16 + 1
    );
}

#[test]
fn open_loop_offers_the_rate_asked_for() {
    let srv = null_server(&[]);
    let r = run(
        srv.addr,
        &words("--rate 4000 --conns 4 --duration 2s --warmup 0s"),
    );
    let sent = r.counters.requests as f64;
    assert!(
        (sent - 8000.0).abs() <= 80.0,
        "sent {sent} in 2 s at 4000/s"
    );
    assert_eq!(r.counters.requests, r.counters.replies);
    assert_eq!(r.backlog, 0);
    assert_eq!(r.mode, "open");
}

/// The null server stops for 200 ms once a second. Open loop charges the
/// stall to every request that fell due during it, so p99.9 shows it; the
/// closed loop only has its few in-flight requests wait, so its p99.9 stays
/// low and the stall shows only as fewer requests.
#[test]
fn a_stall_shows_in_open_loop_tail_not_only_closed_loop_throughput() {
    let srv = null_server(&["--stall-every", "1s", "--stall-for", "200ms"]);
    let common = ["--conns", "4", "--duration", "2500ms", "--warmup", "0s"];
    let open = run(
        srv.addr,
        &[&["--rate", "2000", "--depth", "16"][..], &common].concat(),
    );
    let closed = run(srv.addr, &[&["--depth", "1"][..], &common].concat());
    let ms = |ns: u64| ns as f64 / 1e6;
    let open_p999 = ms(open.ops["all"].percentile("p99.9").unwrap());
    let open_p99 = ms(open.ops["all"].percentile("p99").unwrap());
    let closed_p999 = ms(closed.ops["all"].percentile("p99.9").unwrap());
    let closed_max = ms(closed.ops["all"].max_ns);
    eprintln!(
        "open p99 {open_p99} ms p99.9 {open_p999} ms; closed p99.9 {closed_p999} ms max {closed_max} ms"
    );
    assert!(
        open_p999 >= 150.0,
        "open-loop p99.9 {open_p999} ms hides a 200 ms stall"
    );
    assert!(
        open_p99 >= 100.0,
        "about 10% of open-loop requests wait out a stall: p99 {open_p99} ms"
    );
    // The closed loop saw the stall (its max) but its tail does not show it.
    assert!(
        closed_max >= 150.0,
        "closed loop never met the stall: max {closed_max} ms"
    );
    assert!(closed_p999 < 100.0, "closed-loop p99.9 {closed_p999} ms");
    assert!(
        closed.counters.replies > 20_000,
        "{}",
        closed.counters.replies
    );
}
