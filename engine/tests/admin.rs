//! Administrative commands and the settings that govern them: `shutdown`
//! with and without -A, `flush_all` with -F, `verbosity`, and the `stats`
//! sections (`settings`, `conns`, `slabs`, `items`) against the flags given.

mod common;
use common::{
    Memcached, READ_DEADLINE, Server, Target, closing, parse_stats, row, run_table, stat,
};

#[test]
fn shutdown_is_refused_without_dash_a() {
    let server = Server::start(&["-t", "2"]);
    let rows = [
        row(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n"),
        row(b"shutdown graceful\r\n", b"ERROR: shutdown not enabled\r\n"),
        // Without -A the mode is not even looked at.
        row(b"shutdown bogus\r\n", b"ERROR: shutdown not enabled\r\n"),
        row(b"version\r\n", b"VERSION 1.6.18<*>\r\n"),
    ];
    if let Some(mc) = Memcached::start("shutdown_is_refused_without_dash_a") {
        run_table(mc.addr, Target::Memcached, &rows);
    }
    run_table(server.addr, Target::Corecache, &rows);
    let mut server = server;
    assert!(server.alive());
}

/// With -A, `shutdown` closes the connection without a reply and the
/// process exits 0, as memcached does; a bad mode is refused first.
#[test]
fn shutdown_with_dash_a_stops_the_server() {
    for cmd in [&b"shutdown\r\n"[..], b"shutdown graceful\r\n"] {
        let rows = [
            row(
                b"shutdown bogus\r\n",
                b"CLIENT_ERROR invalid shutdown mode\r\n",
            ),
            closing(cmd, b""),
        ];
        if let Some(mut mc) = Memcached::start_with("shutdown_with_dash_a", &["-A"]) {
            run_table(mc.addr, Target::Memcached, &rows[..1]);
            let mut c = mc.connect();
            c.send(cmd);
            assert_eq!(c.read_to_eof(), b"");
            let status = mc.wait_exit(READ_DEADLINE).expect("memcached exits");
            assert_eq!(status.code(), Some(0));
        }
        let server = Server::start(&["-t", "2", "-A"]);
        let mut other = server.connect();
        other.set("k", b"v");
        run_table(server.addr, Target::Corecache, &rows[..1]);
        let mut c = server.connect();
        c.send(cmd);
        assert_eq!(c.read_to_eof(), b"");
        // Everyone else is closed too, and the exit is clean.
        assert_eq!(other.read_to_eof(), b"");
        let status = server.wait_exit(READ_DEADLINE);
        assert_eq!(status.code(), Some(0), "{}", String::from_utf8_lossy(cmd));
    }
}

#[test]
fn flush_all_is_refused_with_dash_f() {
    let server = Server::start(&["-t", "2", "-F"]);
    let rows = [
        row(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
        row(b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n"),
        row(b"flush_all noreply\r\n", b""),
        row(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n"),
    ];
    if let Some(mc) = Memcached::start_with("flush_all_is_refused_with_dash_f", &["-F"]) {
        run_table(mc.addr, Target::Memcached, &rows);
    }
    run_table(server.addr, Target::Corecache, &rows);
    let s = server.connect().stats("settings");
    assert!(s.contains(&("flush_enabled".into(), "no".into())), "{s:?}");
}

#[test]
fn stats_settings_reflect_the_flags() {
    let server = Server::start(&[
        "-t", "2", "-m", "32", "-c", "99", "-I", "512k", "-M", "-A", "-b", "64",
    ]);
    let mut c = server.connect();
    let s = c.stats("settings");
    assert_eq!(stat(&s, "maxbytes"), 32 << 20);
    assert_eq!(stat(&s, "maxconns"), 99);
    assert_eq!(stat(&s, "tcpport"), u64::from(server.addr.port()));
    assert_eq!(stat(&s, "udpport"), 0);
    assert_eq!(stat(&s, "item_size_max"), 512 << 10);
    assert_eq!(stat(&s, "num_threads"), 2);
    assert_eq!(stat(&s, "tcp_backlog"), 64);
    let text = |name: &str| s.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(text("evictions"), Some("off"));
    assert_eq!(text("shutdown_command"), Some("yes"));
    assert_eq!(text("cas_enabled"), Some("yes"));
    assert_eq!(text("flush_enabled"), Some("yes"));
    // verbosity changes what stats settings reports.
    assert_eq!(c.round_trip(b"verbosity 2\r\n"), b"OK\r\n");
    assert_eq!(stat(&c.stats("settings"), "verbosity"), 2);
    let g = c.stats("");
    assert_eq!(stat(&g, "max_connections"), 99);
    assert_eq!(stat(&g, "limit_maxbytes"), 32 << 20);
}

#[test]
fn stats_conns_lists_every_connection() {
    let server = Server::start(&["-t", "2"]);
    let mut conns: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for c in &mut conns {
        assert!(c.round_trip(b"version\r\n").starts_with(b"VERSION"));
    }
    conns[0].send(b"stats conns\r\n");
    let reply = conns[0].read_through(b"END\r\n");
    let s = parse_stats(&reply);
    for c in &conns {
        let me = format!("tcp:{}", c.stream.local_addr().unwrap());
        assert!(
            s.iter().any(|(k, v)| k.ends_with(":addr") && *v == me),
            "{me} not in {s:?}"
        );
    }
    let listen = format!("tcp:{}", server.addr);
    assert!(
        s.iter()
            .any(|(k, v)| k.ends_with(":listen_addr") && *v == listen)
    );
}

#[test]
fn stats_slabs_and_items_follow_the_stored_items() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    for i in 0..30 {
        c.set(&format!("small:{i}"), b"x");
        c.set(&format!("large:{i}"), &vec![b'y'; 50_000]);
    }
    let items = c.stats("items");
    let classes: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|(k, _)| k.ends_with(":number"))
        .map(|(k, _)| k.split(':').nth(1).unwrap())
        .collect();
    assert!(classes.len() >= 2, "two sizes, two classes: {items:?}");
    let slabs = c.stats("slabs");
    assert!(stat(&slabs, "active_slabs") >= 2, "{slabs:?}");
    assert!(stat(&slabs, "total_malloced") >= 30 * 50_000);
}
