//! The UDP amplification bound (docs/security.md): a reply over
//! `network.udp_max_reply` is dropped, and each source address gets at most
//! `network.udp_reply_rate` reply bytes per second from a shard, counted in
//! `stats`. The request that would have amplified most gets nothing back.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::Server;
use proto::udp::UdpHeader;

fn udp_server(max_reply: &str, rate: &str) -> (Server, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "corecache-udp-guard-{}-{max_reply}-{rate}.toml",
        std::process::id()
    ));
    std::fs::write(
        &path,
        format!("[network]\nudp_max_reply = \"{max_reply}\"\nudp_reply_rate = \"{rate}\"\n"),
    )
    .unwrap();
    let server = Server::start_udp(&["--config", path.to_str().unwrap(), "-t", "1"]);
    (server, path)
}

/// Sends `body` in one framed datagram; returns the reply bytes received
/// before `quiet` passes without a datagram.
fn ask(socket: &UdpSocket, id: u16, body: &[u8], quiet: Duration) -> usize {
    let header = UdpHeader {
        request_id: id,
        sequence: 0,
        total: 1,
        reserved: 0,
    };
    socket.send(&[&header.encode()[..], body].concat()).unwrap();
    socket.set_read_timeout(Some(quiet)).unwrap();
    let (mut got, mut buf) = (0, vec![0u8; 65536]);
    while let Ok(n) = socket.recv(&mut buf) {
        got += n;
    }
    got
}

fn stat(server: &Server, name: &str) -> u64 {
    let mut c = server.connect();
    c.send(b"stats\r\n");
    let text = String::from_utf8(c.read_through(b"END\r\n")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn a_reply_over_the_bound_is_dropped_and_counted() {
    let (server, path) = udp_server("4k", "0");
    let mut tcp = server.connect();
    tcp.set("small", b"hi");
    tcp.set("big", &vec![b'b'; 3000]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.udp.unwrap()).unwrap();
    let quiet = Duration::from_millis(300);
    assert!(ask(&socket, 1, b"get small\r\n", quiet) > 0);
    assert!(
        ask(&socket, 2, b"get big\r\n", quiet) > 3000,
        "3 KB is under 4k"
    );
    // Two of them are over: nothing comes back.
    assert_eq!(ask(&socket, 3, b"get big big\r\n", quiet), 0);
    assert_eq!(ask(&socket, 4, b"get big\r\nget big\r\n", quiet), 0);
    assert_eq!(stat(&server, "udp_replies_too_large"), 2);
    assert!(
        ask(&socket, 5, b"get small\r\n", quiet) > 0,
        "and the socket still serves"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_source_over_its_rate_gets_nothing_until_it_refills() {
    // Burst: the larger of 4 x 2k and 2k = 8 KB; each reply is ~1.5 KB; the
    // refill is 2 KB a second.
    let (server, path) = udp_server("2k", "2k");
    let mut tcp = server.connect();
    tcp.set("v", &vec![b'v'; 1500]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.udp.unwrap()).unwrap();
    let quiet = Duration::from_millis(50);
    let answered = (0..20)
        .filter(|&i| ask(&socket, i, b"get v\r\n", quiet) > 0)
        .count();
    // 5 replies fit the burst, plus about one per 0.75 s of waiting.
    assert!((5..=15).contains(&answered), "{answered} of 20 answered");
    assert_eq!(
        stat(&server, "udp_replies_rate_limited"),
        20 - answered as u64
    );
    let _ = std::fs::remove_file(path);
}
