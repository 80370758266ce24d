//! Administrative commands and the settings that govern them: `shutdown`
//! with and without -A, `flush_all` with -F.

mod common;
use common::{Memcached, READ_DEADLINE, Server, Target, closing, row, run_table};

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
