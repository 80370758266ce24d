//! Regression: a shard recycled its UDP receive buffers but never published
//! them to the kernel, so after the pool's 128 datagrams the UDP port went
//! silent (the 129th request got no reply, nor any after it).

mod common;
use std::net::UdpSocket;

use common::{READ_DEADLINE, Server};
use proto::udp::UdpHeader;

#[test]
fn more_datagrams_than_the_pool_holds_are_all_answered() {
    let server = Server::start_udp(&["-t", "1"]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.udp.unwrap()).unwrap();
    socket.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    // Three times the 128 buffers of a shard's UDP pool.
    for id in 0..384u16 {
        let header = UdpHeader {
            request_id: id,
            sequence: 0,
            total: 1,
            reserved: 0,
        };
        socket
            .send(&[&header.encode()[..], b"version\r\n"].concat())
            .unwrap();
        let mut buf = [0u8; 1500];
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no reply to datagram {id}: {e}"));
        let (h, payload) = UdpHeader::decode(&buf[..n]).unwrap();
        assert_eq!(h.request_id, id);
        assert!(payload.starts_with(b"VERSION"), "{payload:?}");
    }
}
