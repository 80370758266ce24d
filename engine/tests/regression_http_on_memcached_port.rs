//! Regression (memcached's malicious-commands.t): an HTTP request line sent to
//! the memcached port is hung up on without a reply, as memcached does, while
//! other connections keep being served; an unknown command that merely
//! mentions HTTP still gets `ERROR` and keeps its connection.

mod common;

use common::{Server, show};

#[test]
fn an_http_request_line_is_hung_up_on_without_a_reply() {
    let server = Server::start(&["-t", "2"]);
    let mut bystander = server.connect();
    bystander.set("k", b"v");
    for line in [
        &b"GET / HTTP/1.0\r\n"[..],
        b"PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1\r\n",
        b"DELETE HTTP/1.1\r\n",
    ] {
        let mut c = server.connect();
        c.send(line);
        let got = c.read_to_eof();
        assert!(got.is_empty(), "{}: got {}", show(line), show(&got));
    }
    let mut c = server.connect();
    assert_eq!(c.round_trip(b"bogus HTTPX\r\n"), b"ERROR\r\n");
    assert_eq!(c.round_trip(b"version HTTP/1.1\r\n")[..8], *b"VERSION ");
    assert_eq!(bystander.get("k").as_deref(), Some(&b"v"[..]));
}
