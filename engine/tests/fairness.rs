//! `-R N` (memcached's reqs_per_event): a connection with more pipelined
//! requests buffered than N runs N per loop turn and yields, so that other
//! connections progress; `conn_yields` counts the yields.

mod common;

use std::io::Write;

use std::time::Instant;

use common::{READ_DEADLINE, Server, show, stat};

/// Six sets in one write, as memcached's issue_61.t sends them.
fn six_sets() -> Vec<u8> {
    b"set foobar 0 0 5\r\nBubba\r\n".repeat(6)
}

#[test]
fn a_pipeline_deeper_than_r_yields_after_each_r_requests() {
    let server = Server::start(&["-t", "1", "-R", "1"]);
    let mut c = server.connect();
    c.send(&six_sets());
    for i in 0..6 {
        assert_eq!(show(&c.read_line()), "STORED\r\n", "set {i}");
    }
    // One request a turn: a yield after each of the first five.
    let yields = stat(&c.stats(""), "conn_yields");
    assert!(yields >= 5, "conn_yields {yields}");
    let settings = c.stats("settings");
    assert!(settings.contains(&("reqs_per_event".into(), "1".into())));
}

#[test]
fn the_default_budget_of_20_lets_shorter_pipelines_through_whole() {
    let server = Server::start(&["-t", "1"]);
    let mut c = server.connect();
    c.send(&six_sets());
    for _ in 0..6 {
        assert_eq!(show(&c.read_line()), "STORED\r\n");
    }
    assert_eq!(stat(&c.stats(""), "conn_yields"), 0);
    // 45 requests in one write: at least two turns' budgets run out.
    let mut deep = Vec::new();
    for i in 0..45 {
        deep.extend_from_slice(format!("set k{i} 0 0 1 noreply\r\nx\r\n").as_bytes());
    }
    let reply = c.round_trip(&deep);
    assert!(reply.is_empty(), "{:?}", show(&reply));
    let yields = stat(&c.stats(""), "conn_yields");
    assert!(yields >= 2, "conn_yields {yields}");
    assert_eq!(c.get("k44").as_deref(), Some(&b"x"[..]));
}

#[test]
fn another_client_is_answered_while_one_pipelines() {
    let server = Server::start(&["-t", "1", "-R", "1"]);
    const DEPTH: u64 = 200_000;
    let mut pipeliner = server.connect();
    let mut stream = pipeliner.stream.try_clone().unwrap();
    // Written from a thread: the server reads it only as fast as it runs
    // it, one request a turn, so the write blocks for a while.
    let writer = std::thread::spawn(move || {
        stream
            .write_all(&b"get nokey\r\n".repeat(DEPTH as usize))
            .unwrap();
    });
    let mut other = server.connect();
    // Once the pipeline has started running, the other client's request is
    // answered before it has finished.
    let deadline = Instant::now() + READ_DEADLINE;
    let mid = loop {
        assert!(Instant::now() < deadline, "the pipeline never started");
        let stats = other.stats("");
        if stat(&stats, "cmd_get") > 0 {
            break stats;
        }
    };
    let done = stat(&mid, "cmd_get");
    assert!(done < DEPTH, "answered only after all {done} gets");
    assert!(stat(&mid, "conn_yields") > 0);
    for _ in 0..DEPTH {
        assert_eq!(show(&pipeliner.read_line()), "END\r\n");
    }
    writer.join().unwrap();
    let end = other.stats("");
    assert_eq!(stat(&end, "cmd_get"), DEPTH);
    // Nearly every request of the pipeline ran in a turn of its own.
    assert!(stat(&end, "conn_yields") > DEPTH / 2);
}

#[test]
fn requests_sent_before_eof_are_all_answered_by_a_yielding_connection() {
    let server = Server::start(&["-t", "1", "-R", "1"]);
    let mut c = server.connect();
    let mut sent = six_sets();
    sent.extend_from_slice(b"get foobar\r\n");
    c.send(&sent);
    c.shutdown_write();
    let got = c.read_to_eof();
    let want = "STORED\r\n".repeat(6) + "VALUE foobar 0 5\r\nBubba\r\nEND\r\n";
    assert_eq!(show(&got), want);
}

#[test]
fn binary_requests_count_towards_the_budget_too() {
    let server = Server::start(&["-t", "1", "-R", "2"]);
    // Binary NOOP: magic 0x80, opcode 0x0a, nothing else; the reply is a
    // 24-byte header with magic 0x81.
    let mut noop = [0u8; 24];
    noop[0] = 0x80;
    noop[1] = 0x0a;
    let mut c = server.connect();
    c.send(&noop.repeat(7));
    let replies = c.read_n(7 * 24);
    for (i, r) in replies.chunks(24).enumerate() {
        assert_eq!((r[0], r[1]), (0x81, 0x0a), "reply {i}");
    }
    // Two a turn: yields after the 2nd, 4th and 6th.
    let yields = stat(&server.connect().stats(""), "conn_yields");
    assert!(yields >= 3, "conn_yields {yields}");
}

#[test]
fn r_zero_is_refused_as_memcached_refuses_it() {
    let (code, _, stderr) = common::run_to_exit(&["-R", "0", "-p", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("greater than 0"), "{stderr}");
}
