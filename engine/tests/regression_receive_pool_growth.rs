//! Regression: a shard's receive buffer pool (32 buffers at start, doubling
//! when a turn is short of them) grew to 256 for one pipelining client. A
//! multishot receive stays armed until its cancel is processed, so the
//! connection went on taking buffers after it had yielded with a backlog
//! (-R), and those receives counted as demand: every lap of the pool was
//! taken and it doubled, making 1 MiB of buffers resident for a client that
//! was never waiting for one. Now only connections that are reading count;
//! the pool still grows when they are short.

mod common;

use common::{Server, show, stat};

/// 40,000 pipelined `set ... noreply` of 100 bytes, as `mc_load` sends them:
/// ~6 MiB, far more than the pool holds, on a connection that yields every
/// 20 requests (the default -R) with the rest of each receive buffered.
#[test]
fn a_pipelining_client_leaves_the_pool_at_its_first_size() {
    let server = Server::start(&["-t", "1", "-R", "20"]);
    let mut c = server.connect();
    assert_eq!(stat(&c.stats(""), "recv_buffers"), 32);
    let value = [b'v'; 100];
    let mut batch = Vec::with_capacity(64 << 10);
    for i in 0..40_000u32 {
        batch.extend_from_slice(format!("set key:{i:028} 0 0 100 noreply\r\n").as_bytes());
        batch.extend_from_slice(&value);
        batch.extend_from_slice(b"\r\n");
        if batch.len() >= 60 << 10 {
            c.send(&batch);
            batch.clear();
        }
    }
    c.send(&batch);
    let stats = c.stats("");
    assert_eq!(stat(&stats, "curr_items"), 40_000);
    assert!(stat(&stats, "conn_yields") > 0, "the client never yielded");
    assert_eq!(stat(&stats, "recv_buffers"), 32);
}

/// Sixteen connections each sending a 256 KiB value at once: they are
/// reading (each waits for the rest of its data block), together they need
/// more buffers than 32, and the pool grows; every value arrives whole.
#[test]
fn connections_short_of_buffers_grow_the_pool() {
    let server = Server::start(&["-t", "1"]);
    const CLIENTS: usize = 16;
    const LEN: usize = 256 << 10;
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = common::Conn::connect(addr);
                let value = vec![b'a' + i as u8; LEN];
                c.set(&format!("big{i}"), &value);
            })
        })
        .collect();
    for t in clients {
        t.join().unwrap();
    }
    let mut c = server.connect();
    let grown = stat(&c.stats(""), "recv_buffers");
    assert!(grown > 32 && grown <= 512, "recv_buffers {grown}");
    for i in 0..CLIENTS {
        let got = c.get(&format!("big{i}")).expect("stored");
        assert!(
            got.len() == LEN && got.iter().all(|&b| b == b'a' + i as u8),
            "big{i}: {} bytes, starting {:?}",
            got.len(),
            show(&got[..got.len().min(16)])
        );
    }
}
