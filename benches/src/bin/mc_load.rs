//! Loads the memory benchmark's items into a memcached (or any text-protocol server)
//! over TCP: N pipelined `set ... noreply` with 32-byte keys and 100-byte values, then
//! prints the server's curr_items. The benchmark script reads the server's RSS.
//!
//! Usage: mc_load ADDR [--items N] [--mixed]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;

use benches::{Rng, key32};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .expect("usage: mc_load ADDR [--items N] [--mixed]");
    let mut items: u64 = 1_000_000;
    let mut mixed = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--items" => items = args.next().unwrap().parse().unwrap(),
            "--mixed" => mixed = true,
            _ => panic!("unknown argument {a}"),
        }
    }
    let stream = TcpStream::connect(&addr).expect("connect");
    let mut w = BufWriter::with_capacity(1 << 16, stream.try_clone().unwrap());
    let mut r = BufReader::new(stream);
    let value = vec![b'v'; 300];
    let mut rng = Rng(7);
    for i in 0..items {
        let vlen = if mixed {
            50 + rng.below(251) as usize
        } else {
            100
        };
        w.write_all(b"set ").unwrap();
        w.write_all(&key32(i)).unwrap();
        write!(w, " 0 0 {vlen} noreply\r\n").unwrap();
        w.write_all(&value[..vlen]).unwrap();
        w.write_all(b"\r\n").unwrap();
    }
    w.write_all(b"stats\r\n").unwrap();
    w.flush().unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 || line.starts_with("END") {
            break;
        }
        if let Some(v) = line.strip_prefix("STAT curr_items ") {
            println!("curr_items {}", v.trim());
        }
        if line.starts_with("ERROR") || line.starts_with("SERVER_ERROR") {
            panic!("server said {line}");
        }
    }
}
