//! Regression: a shard armed its UDP receive only at the end of its first
//! loop turn, and that turn waited up to its 1 s tick for a completion, so
//! the first datagrams after start waited about a second for an answer (TCP
//! was not affected: accepts are armed before the loop starts).
//!
//! The bound asserted is half that tick: a stall shows as ~1 s, a healthy
//! server answers in milliseconds even on a busy machine.

mod common;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::Server;
use proto::udp::UdpHeader;

#[test]
fn the_first_datagrams_after_start_are_answered_at_once() {
    let server = Server::start_udp(&["-t", "2"]);
    let addr = server.udp.unwrap();
    // Eight source ports: SO_REUSEPORT hashes them over both shards' sockets.
    for id in 0..8u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let header = UdpHeader {
            request_id: id,
            sequence: 0,
            total: 1,
            reserved: 0,
        };
        let started = Instant::now();
        socket
            .send(&[&header.encode()[..], b"version\r\n"].concat())
            .unwrap();
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf).expect("a reply");
        let took = started.elapsed();
        assert!(buf[8..n].starts_with(b"VERSION"));
        assert!(
            took < Duration::from_millis(500),
            "datagram {id} answered after {took:?}"
        );
    }
}
