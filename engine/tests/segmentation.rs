//! Requests cut anywhere: TCP may deliver a pipeline in pieces of any size,
//! so the same bytes written in 1- to 7-byte writes (Nagle off, each its own
//! segment as far as the kernel allows) must get the same replies as one
//! write: across a line, a data block, a swallowed block, a multi-get of
//! both shards.

mod common;
use std::io::Write;

use common::{Server, assert_bytes};

fn pipeline() -> (Vec<u8>, Vec<u8>) {
    let mut req = Vec::new();
    let mut want = Vec::new();
    let mut add = |r: &[u8], w: &[u8]| {
        req.extend_from_slice(r);
        want.extend_from_slice(w);
    };
    for i in 0..12 {
        let k = format!("seg:{i}");
        add(
            format!("set {k} 0 0 5\r\nv{i:04}\r\n").as_bytes(),
            b"STORED\r\n",
        );
    }
    add(
        b"get seg:0 seg:1 seg:2 seg:3\r\n",
        b"VALUE seg:0 0 5\r\nv0000\r\nVALUE seg:1 0 5\r\nv0001\r\nVALUE seg:2 0 5\r\nv0002\r\nVALUE seg:3 0 5\r\nv0003\r\nEND\r\n",
    );
    add(b"ms seg:m 3 T0 F2\r\nabc\r\n", b"HD\r\n");
    add(b"mg seg:m v f k\r\n", b"VA 3 f2 kseg:m\r\nabc\r\n");
    // A value with line ends inside, and one cut right at its "\r\n".
    add(b"set seg:crlf 0 0 6\r\n\r\nab\r\n\r\n", b"STORED\r\n");
    add(
        b"get seg:crlf\r\n",
        b"VALUE seg:crlf 0 6\r\n\r\nab\r\n\r\nEND\r\n",
    );
    // Too large for -I 1k: refused and swallowed piece by piece.
    let big = vec![b'x'; 3000];
    add(
        &[&b"set seg:big 0 0 3000\r\n"[..], &big, b"\r\n"].concat(),
        b"SERVER_ERROR object too large for cache\r\n",
    );
    add(
        b"set seg:bad 0 0 2\r\nabcd\r\n",
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    add(b"incr seg:none 1\r\nbogus\r\n", b"NOT_FOUND\r\nERROR\r\n");
    add(b"mg seg:none q v\r\nmn\r\n", b"MN\r\n");
    add(
        b"get seg:4 seg:big seg:11\n",
        b"VALUE seg:4 0 5\r\nv0004\r\nVALUE seg:11 0 5\r\nv0011\r\nEND\r\n",
    );
    (req, want)
}

#[test]
fn a_pipeline_cut_into_tiny_segments_gets_the_same_replies() {
    let server = Server::start(&["-t", "2", "-I", "1k"]);
    let (req, want) = pipeline();
    // One write, as a reference.
    let mut c = server.connect();
    c.send(&req);
    assert_bytes(c.read_n(want.len()), &want, "one write");
    // Tiny writes, sizes cycling 1..=7.
    for round in 0..3 {
        let mut c = server.connect();
        let mut stream = c.stream.try_clone().unwrap();
        let req2 = req.clone();
        let writer = std::thread::spawn(move || {
            let mut pos = 0;
            let mut n = 1 + round;
            while pos < req2.len() {
                let end = (pos + n).min(req2.len());
                stream.write_all(&req2[pos..end]).unwrap();
                pos = end;
                n = n % 7 + 1;
            }
        });
        assert_bytes(
            c.read_n(want.len()),
            &want,
            &format!("tiny writes, round {round}"),
        );
        writer.join().unwrap();
        c.assert_silent(std::time::Duration::from_millis(50));
    }
}
