//! Start-up and stop: bad flags and config files stop the start with exit
//! code 2 and one line naming the setting; a port in use likewise;
//! `--print-config` prints TOML that reads back; memcached's other flags are
//! accepted with warnings; SIGTERM and SIGINT finish in-flight requests and
//! exit 0.

mod common;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use common::{READ_DEADLINE, Server, assert_bytes, run_to_exit, show, signal, stat};

/// Runs corecache expecting a refusal: exit code 2 and exactly one line on
/// stderr that contains every one of `names`.
#[track_caller]
fn refused(args: &[&str], names: &[&str]) -> String {
    let (code, stdout, stderr) = run_to_exit(args);
    assert_eq!(code, Some(2), "{args:?}: exit code; stderr: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: stdout {stdout:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: want one line, got {stderr:?}");
    for n in names {
        assert!(
            lines[0].contains(n),
            "{args:?}: {:?} does not name {n:?}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// Writes `text` to `name` in `dir`, a directory removed when the test ends.
fn temp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_values_name_the_setting() {
    let rows: &[(&[&str], &[&str])] = &[
        (&["-m", "0"], &["memory.limit_mb"]),
        (&["-t", "0"], &["-t"]),
        (&["-c", "0"], &["server.max_connections"]),
        (&["-f", "3"], &["memory.growth_factor"]),
        (&["-I", "128m"], &["limits.max_item_size"]),
        (&["-I", "2g", "-m", "4096"], &["limits.max_item_size"]),
        (&["-b", "0"], &["server.backlog"]),
        (&["-l", "nowhere"], &["-l", "nowhere"]),
        (&["-S"], &["-S"]),
        (&["-Z"], &["-Z"]),
        (
            &["-P", "/nonexistent-dir/corecache.pid", "-p", "0"],
            &["server.pidfile"],
        ),
    ];
    for (args, names) in rows {
        refused(args, names);
    }
}

/// Values the flag parser refuses (not a number, not a known name, an
/// unknown flag): one line too, not a usage screen.
#[test]
fn unparsable_flags_name_the_flag_in_one_line() {
    let rows: &[(&[&str], &[&str])] = &[
        (&["-m", "abc"], &["memory-limit", "abc"]),
        (&["-p", "70000"], &["port", "70000"]),
        (&["--hugepages", "sometimes"], &["hugepages", "sometimes"]),
        (&["--eviction", "lifo"], &["eviction", "lifo"]),
        (&["--bogus"], &["--bogus"]),
    ];
    for (args, names) in rows {
        refused(args, names);
    }
}

#[test]
fn bad_config_files_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = temp_file(&dir, "unknown.toml", "[server]\nport = 1\nprot = 2\n");
    refused(
        &["--config", unknown.to_str().unwrap()],
        &["line 3", "prot"],
    );
    let section = temp_file(&dir, "section.toml", "[sever]\nport = 1\n");
    refused(&["--config", section.to_str().unwrap()], &["sever"]);
    let typed = temp_file(&dir, "typed.toml", "[memory]\nlimit_mb = \"lots\"\n");
    refused(&["--config", typed.to_str().unwrap()], &["line 2", "lots"]);
    let value = temp_file(&dir, "value.toml", "[memory]\ngrowth_factor = 0.5\n");
    refused(
        &["--config", value.to_str().unwrap()],
        &["memory.growth_factor"],
    );
    let name = temp_file(&dir, "name.toml", "[memory]\neviction = \"lifo\"\n");
    refused(&["--config", name.to_str().unwrap()], &["lifo"]);
    refused(
        &["--config", "/nonexistent/corecache.toml"],
        &["/nonexistent/corecache.toml"],
    );
}

/// -I takes memcached's bounds: 1k..1024m and at most half of -m, each refused
/// by name before anything starts; inside them, items that large are stored.
#[test]
fn item_sizes_outside_memcacheds_bounds_are_refused_by_name() {
    refused(
        &["-I", "512", "--print-config"],
        &["limits.max_item_size", "1024 bytes"],
    );
    refused(
        &["-I", "2g", "-m", "8192", "--print-config"],
        &["limits.max_item_size", "1024 mb"],
    );
    refused(
        &["-I", "64m", "-p", "0"],
        &["limits.max_item_size", "1/2 of memory max"],
    );
}

#[test]
fn an_item_of_several_mebibytes_is_stored_with_a_larger_i() {
    let s = Server::start(&["-I", "4m", "-m", "64"]);
    let mut c = s.connect();
    let value: Vec<u8> = (0..3 << 20).map(|i: u32| b'a' + (i % 23) as u8).collect();
    c.set("big", &value);
    assert_eq!(c.get("big").as_deref(), Some(&value[..]));
    let settings = c.stats("settings");
    assert!(settings.contains(&("item_size_max".to_string(), (4 << 20).to_string())));
    // Larger than -I: memcached's answer, and the connection goes on.
    let mut req = format!("set huge 0 0 {}\r\n", 5 << 20).into_bytes();
    req.extend(std::iter::repeat_n(b'x', 5 << 20));
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_eq!(
        show(&c.read_line()),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.get("big").map(|v| v.len()), Some(3 << 20));
}

#[test]
fn a_tcp_port_in_use_stops_the_start() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let line = refused(&["-p", &port], &["server.port", "in use"]);
    assert!(line.contains(&port), "{line}");
}

#[test]
fn a_udp_port_in_use_stops_the_start() {
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    refused(&["-p", "0", "-U", &port], &["server.udp_port", "in use"]);
}

/// SO_REUSEPORT lets sockets of the same user share a port: a second
/// corecache on the port of a running one must not join it and silently take
/// half of its connections.
#[test]
fn a_port_held_by_another_corecache_is_in_use() {
    let first = Server::start_udp(&["-t", "1"]);
    let tcp = first.addr.port().to_string();
    refused(&["-p", &tcp, "-t", "1"], &["server.port", "in use"]);
    let udp = first.udp.unwrap().port().to_string();
    refused(
        &["-p", "0", "-U", &udp, "-t", "1"],
        &["server.udp_port", "in use"],
    );
}

#[test]
fn print_config_reads_back_and_runs() {
    let (code, first, _) = run_to_exit(&[
        "--print-config",
        "-p",
        "0",
        "-m",
        "32",
        "-c",
        "77",
        "-t",
        "2",
        "--eviction",
        "lru",
        "-I",
        "512k",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        first.contains("[server]") && first.contains("max_connections = 77"),
        "{first}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = temp_file(&dir, "printed.toml", &first);
    let path = file.to_str().unwrap();
    let (code, second, _) = run_to_exit(&["--config", path, "--print-config"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        first, second,
        "printed config does not read back identically"
    );
    // The file drives a real server; flags still override it.
    let server = Server::start(&["--config", path, "-c", "78"]);
    let s = server.connect().stats("settings");
    assert_eq!(stat(&s, "maxconns"), 78);
    assert_eq!(stat(&s, "maxbytes"), 32 << 20);
    assert_eq!(stat(&s, "item_size_max"), 512 << 10);
    assert_eq!(stat(&s, "num_threads"), 2);
    assert_eq!(stat(&s, "tcpport"), u64::from(server.addr.port()));
}

#[test]
fn memcached_flags_are_accepted_with_warnings() {
    let server = Server::start(&["-t", "1", "-d", "-o", "modern,hashpower=20", "-X", "-v"]);
    let mut c = server.connect();
    assert!(c.round_trip(b"version\r\n").starts_with(b"VERSION 1.6."));
    let log = server.log().join("\n");
    for w in ["-d:", "-o modern", "hashpower=20", "-X:"] {
        assert!(log.contains(w), "no warning for {w} in {log}");
    }
    // -C is served now (tests/disable_cas.rs): no warning for it.
    let server = Server::start(&["-t", "1", "-C"]);
    let mut c = server.connect();
    assert!(c.round_trip(b"version\r\n").starts_with(b"VERSION 1.6."));
    let log = server.log().join("\n");
    assert!(!log.contains("-C:"), "{log}");
}

#[test]
fn version_flag_prints_the_version() {
    let (code, out, _) = run_to_exit(&["-V"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("corecache 1.6.18-corecache-"), "{out}");
}

/// SIGTERM with replies still owed: they are all delivered whole, then the
/// connections close and the process exits 0.
#[test]
fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let server = Server::start(&["-t", "2"]);
    let mut busy = server.connect();
    let mut idle = server.connect();
    assert!(idle.round_trip(b"version\r\n").len() > 8);
    let value = vec![b'z'; 512 << 10];
    let keys: Vec<String> = (0..8).map(|i| format!("inflight:{i}")).collect();
    for k in &keys {
        busy.set(k, &value);
    }
    // 4 MiB of replies owed over keys of both shards; the client reads the
    // first line only, so most of it is still queued when SIGTERM comes.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for k in &keys {
        req.extend_from_slice(format!("get {k}\r\n").as_bytes());
        want.extend_from_slice(format!("VALUE {k} 0 {}\r\n", value.len()).as_bytes());
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\nEND\r\n");
    }
    busy.send(&req);
    let first = busy.read_line();
    signal(server.pid(), libc::SIGTERM);
    let mut got = first;
    got.extend_from_slice(&busy.read_to_eof());
    assert_bytes(&got, &want, "replies owed at SIGTERM");
    assert_eq!(idle.read_to_eof(), b"", "idle connection closed");
    let status = server.wait_exit(READ_DEADLINE);
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

#[test]
fn sigint_stops_with_exit_0() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    c.set("k", b"v");
    signal(server.pid(), libc::SIGINT);
    assert_eq!(c.read_to_eof(), b"");
    assert_eq!(server.wait_exit(READ_DEADLINE).code(), Some(0));
}

/// After SIGTERM the listeners close: a new connection is refused or closed
/// without an answer.
#[test]
fn no_new_connections_after_sigterm() {
    let server = Server::start(&["-t", "2"]);
    let addr = server.addr;
    let mut c = server.connect();
    assert_eq!(c.round_trip(b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n");
    signal(server.pid(), libc::SIGTERM);
    assert_eq!(c.read_to_eof(), b"");
    let status = server.wait_exit(READ_DEADLINE);
    assert_eq!(status.code(), Some(0));
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert!(refused.is_err(), "the port still accepts after exit");
}

/// A client that never takes its replies does not hold the stop up for
/// longer than the drain deadline (5 s): it is cut off, and the exit is clean.
#[test]
fn sigterm_does_not_wait_forever_for_a_client_that_never_reads() {
    let server = Server::start(&["-t", "2"]);
    let mut c = server.connect();
    c.set("big", &vec![b'b'; 512 << 10]);
    // 64 MiB of replies owed, never read.
    c.send(&b"get big\r\n".repeat(128));
    assert!(c.read_line().starts_with(b"VALUE big"));
    let started = std::time::Instant::now();
    signal(server.pid(), libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    println!("stopped {:?} after SIGTERM", started.elapsed());
    drop(c);
}
