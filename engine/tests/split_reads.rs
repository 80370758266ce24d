//! Requests split across receives at every offset: the server assembles only
//! the split request and parses the rest where it lies (engine/src/shard/input.rs).
//! Each chunk is written separately with Nagle off and a short pause, so the
//! server sees it as its own receive; whatever the kernel coalesces, the
//! replies must be byte-identical to the unsplit run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corecache"))
            .args(["-p", "0", "-l", "127.0.0.1"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start corecache");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            assert!(
                Instant::now() < deadline,
                "corecache did not report its port"
            );
            let line = lines
                .next()
                .expect("corecache exited during start-up")
                .expect("read stderr");
            if let Some(rest) = line.split("listening on tcp 127.0.0.1:").nth(1) {
                break rest.trim().parse().expect("port");
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, port }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pipeline touching every way a request can straddle receives: lines,
/// data blocks, the `\r\n` after a block, meta flags, multi-key gets.
fn pipeline() -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..6 {
        let value = format!("value-{i}-{}", "x".repeat(i * 37));
        p.extend_from_slice(format!("set key:{i} {i} 0 {}\r\n{value}\r\n", value.len()).as_bytes());
    }
    p.extend_from_slice(b"get key:0 key:1 key:2 key:3 key:4 key:5 missing\r\n");
    p.extend_from_slice(b"ms meta 5 T0 F7\r\nhello\r\n");
    p.extend_from_slice(b"mg meta v f k\r\n");
    p.extend_from_slice(b"append key:0 0 0 4\r\n-tail\r\n");
    p.extend_from_slice(b"incr nothere 1\r\nset n 0 0 2\r\n41\r\nincr n 1\r\n");
    p.extend_from_slice(b"gets key:0\r\nmn\r\n");
    p
}

/// Reads until the reply ends with `MN\r\n` (the pipeline's last request).
fn read_until_mn(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"MN\r\n") {
        let n = s.read(&mut buf).expect("reply before the read deadline");
        assert!(
            n > 0,
            "server closed the connection; got so far: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn run(server: &Server, chunks: &[&[u8]]) -> Vec<u8> {
    let mut s = server.connect();
    s.write_all(b"flush_all\r\n").unwrap();
    let mut ok = [0u8; 4];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK\r\n");
    for (i, c) in chunks.iter().enumerate() {
        s.write_all(c).unwrap();
        if i + 1 < chunks.len() {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    read_until_mn(&mut s)
}

/// CAS values differ between runs; mask the number after `VALUE key flags len`.
fn mask_cas(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply)
        .split("\r\n")
        .map(|line| {
            let t: Vec<&str> = line.split(' ').collect();
            if t.len() == 5 && t[0] == "VALUE" {
                format!("{} {} {} {} <cas>", t[0], t[1], t[2], t[3])
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn a_request_split_at_every_offset_gets_the_same_replies() {
    for shards in ["1", "2"] {
        let server = Server::start(&["-t", shards]);
        let p = pipeline();
        let whole = mask_cas(&run(&server, &[&p]));
        assert!(whole.contains("VALUE key:5 5 "), "{whole}");
        assert!(whole.contains("VA 5 f7 kmeta\r\nhello"), "{whole}");
        assert!(whole.contains("NOT_FOUND\r\nSTORED\r\n42\r\n"), "{whole}");
        // Two pieces, cut at every byte.
        for cut in 1..p.len() {
            let got = mask_cas(&run(&server, &[&p[..cut], &p[cut..]]));
            assert_eq!(
                got,
                whole,
                "{shards} shard(s), cut at {cut}: {:?}",
                String::from_utf8_lossy(&p[..cut])
            );
        }
        // Small pieces of every size up to 17 bytes.
        for size in 1..=17 {
            let chunks: Vec<&[u8]> = p.chunks(size).collect();
            let got = mask_cas(&run(&server, &chunks));
            assert_eq!(got, whole, "{shards} shard(s), chunks of {size}");
        }
    }
}
