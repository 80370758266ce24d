//! memcached over UDP: the 8-byte frame header, replies cut into datagrams of
//! at most 1400 bytes, one message per request (multi-gets spanning both
//! shards included), and malformed datagrams dropped without a reply.

mod common;
use std::net::UdpSocket;
use std::time::Instant;

use common::{READ_DEADLINE, Server, assert_bytes, show};
use proto::udp::{MAX_DATAGRAM, UdpHeader};

struct Udp {
    socket: UdpSocket,
}

impl Udp {
    fn connect(server: &Server) -> Udp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(server.udp.expect("UDP is on")).unwrap();
        Udp { socket }
    }

    fn send(&self, request_id: u16, body: &[u8]) {
        let header = UdpHeader {
            request_id,
            sequence: 0,
            total: 1,
            reserved: 0,
        };
        self.send_raw(&[&header.encode()[..], body].concat());
    }

    fn send_raw(&self, datagram: &[u8]) {
        self.socket.send(datagram).unwrap();
    }

    fn recv(&self) -> Vec<u8> {
        self.socket.set_read_timeout(Some(READ_DEADLINE)).unwrap();
        let mut buf = vec![0u8; 65536];
        let n = self
            .socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no datagram within {READ_DEADLINE:?}: {e}"));
        buf.truncate(n);
        buf
    }

    /// Sends one request and reassembles its reply, checking every header.
    fn request(&self, request_id: u16, body: &[u8]) -> Vec<u8> {
        self.send(request_id, body);
        let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
        let deadline = Instant::now() + READ_DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "reply incomplete");
            let d = self.recv();
            assert!(d.len() <= MAX_DATAGRAM, "datagram of {} bytes", d.len());
            let (h, payload) = UdpHeader::decode(&d).expect("a header");
            assert_eq!(h.request_id, request_id, "reply to another request");
            assert_eq!(h.reserved, 0);
            if parts.is_empty() {
                parts.resize(h.total as usize, None);
            }
            assert_eq!(h.total as usize, parts.len(), "total changed");
            let slot = &mut parts[h.sequence as usize];
            assert!(slot.is_none(), "sequence {} twice", h.sequence);
            *slot = Some(payload.to_vec());
            if parts.iter().all(Option::is_some) {
                return parts.into_iter().flatten().flatten().collect();
            }
        }
    }
}

#[test]
fn udp_is_off_unless_asked_for() {
    let server = Server::start(&["-t", "2"]);
    assert!(server.udp.is_none(), "{:?}", server.log());
}

#[test]
fn gets_and_sets_over_udp() {
    let server = Server::start_udp(&["-t", "2"]);
    let u = Udp::connect(&server);
    assert_eq!(u.request(1, b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n");
    assert_eq!(u.request(2, b"get a\r\n"), b"VALUE a 0 1\r\nx\r\nEND\r\n");
    // Several requests in one datagram: one reply message, in order.
    assert_eq!(
        show(&u.request(
            3,
            b"set b 0 0 1\r\ny\r\nget b a nope\r\ndelete b\r\nbogus\r\n"
        )),
        "STORED\r\nVALUE b 0 1\r\ny\r\nVALUE a 0 1\r\nx\r\nEND\r\nDELETED\r\nERROR\r\n"
    );
    // A multi-get over keys of both shards is one message, in request order.
    let mut tcp = server.connect();
    let keys: Vec<String> = (0..40).map(|i| format!("u:{i}")).collect();
    for k in &keys {
        tcp.set(k, k.as_bytes());
    }
    let mut want = String::new();
    for k in &keys {
        want.push_str(&format!("VALUE {k} 0 {}\r\n{k}\r\n", k.len()));
    }
    want.push_str("END\r\n");
    let got = u.request(4, format!("get {}\r\n", keys.join(" ")).as_bytes());
    assert_bytes(got, want, "multi-get over UDP");
    // Written over UDP, read over TCP.
    assert_eq!(u.request(5, b"set udp-set 0 0 3\r\nabc\r\n"), b"STORED\r\n");
    assert_eq!(tcp.get("udp-set").as_deref(), Some(&b"abc"[..]));
    // Meta commands too.
    assert_eq!(
        u.request(6, b"mg udp-set v k\r\n"),
        b"VA 3 kudp-set\r\nabc\r\n"
    );
}

#[test]
fn large_replies_are_cut_into_numbered_datagrams() {
    let server = Server::start_udp(&["-t", "2"]);
    let mut tcp = server.connect();
    let value: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    tcp.set("big", &value);
    let u = Udp::connect(&server);
    u.send(77, b"get big\r\n");
    let mut sizes = Vec::new();
    let mut reply = vec![Vec::new(); 4];
    for _ in 0..4 {
        let d = u.recv();
        let (h, payload) = UdpHeader::decode(&d).unwrap();
        assert_eq!((h.request_id, h.total), (77, 4));
        sizes.push(d.len());
        reply[h.sequence as usize] = payload.to_vec();
    }
    sizes.sort_unstable();
    // 5000 + "VALUE big 0 5000\r\n" + "\r\nEND\r\n" = 5025 bytes: 3 full
    // datagrams of 1392 payload bytes and one of 849.
    assert_eq!(sizes, [857, 1400, 1400, 1400]);
    let mut want = b"VALUE big 0 5000\r\n".to_vec();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\nEND\r\n");
    assert_eq!(reply.concat(), want);
}

#[test]
fn malformed_datagrams_are_dropped_without_reply() {
    let server = Server::start_udp(&["-t", "2"]);
    let u = Udp::connect(&server);
    // Too short for a header; part 2 of 2; sequence 1: all dropped.
    u.send_raw(b"\x00\x01\x00");
    let mut second = UdpHeader {
        request_id: 2,
        sequence: 1,
        total: 2,
        reserved: 0,
    }
    .encode()
    .to_vec();
    second.extend_from_slice(b"version\r\n");
    u.send_raw(&second);
    let mut multi = UdpHeader {
        request_id: 3,
        sequence: 0,
        total: 2,
        reserved: 0,
    }
    .encode()
    .to_vec();
    multi.extend_from_slice(b"version\r\n");
    u.send_raw(&multi);
    // A request cut short, and a noreply store: no reply either.
    u.send(4, b"set cut 0 0 10\r\nabc");
    u.send(5, b"set quiet 0 0 1 noreply\r\nq\r\n");
    // The next good request's reply is the first datagram to come back.
    u.send(6, b"get quiet\r\n");
    let d = u.recv();
    let (h, payload) = UdpHeader::decode(&d).unwrap();
    assert_eq!(
        (h.request_id, show(payload).as_str()),
        (6, "VALUE quiet 0 1\r\nq\r\nEND\r\n"),
        "replies to dropped datagrams came back"
    );
}
