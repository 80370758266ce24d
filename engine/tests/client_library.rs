//! Through a real client library: the `memcache` crate speaking the text
//! protocol to a 2-shard corecache over TCP, and over UDP for gets.

mod common;
use std::collections::HashMap;

use common::Server;
use memcache::Client;

fn tcp_client(server: &Server) -> Client {
    Client::connect(format!(
        "memcache://{}?protocol=ascii&timeout=10",
        server.addr
    ))
    .expect("memcache client over TCP")
}

#[test]
fn set_get_multi_get_over_tcp() {
    let server = Server::start(&["-t", "2"]);
    let c = tcp_client(&server);
    c.set("greeting", "hello", 0).unwrap();
    assert_eq!(
        c.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(c.get::<String>("missing").unwrap(), None);
    c.set("number", 42u64, 0).unwrap();
    assert_eq!(c.get::<u64>("number").unwrap(), Some(42));
    // Binary bytes, all 256 values, round trip unchanged.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    c.set("bytes", bytes.as_slice(), 0).unwrap();
    assert_eq!(c.get::<Vec<u8>>("bytes").unwrap(), Some(bytes));

    let keys: Vec<String> = (0..50).map(|i| format!("multi:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        c.set(k, format!("value {i}").as_str(), 0).unwrap();
    }
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.push("multi:missing");
    let got: HashMap<String, String> = c.gets(&asked).unwrap();
    assert_eq!(got.len(), 50);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(got[k], format!("value {i}"));
    }
    // The crate maps NOT_STORED to Ok for add and replace: check the effect.
    c.add("greeting", "again", 0).unwrap();
    assert_eq!(
        c.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    c.add("fresh", "new", 0).unwrap();
    c.replace("fresh", "newer", 0).unwrap();
    c.replace("nowhere", "x", 0).unwrap();
    assert_eq!(c.get::<String>("nowhere").unwrap(), None);
    c.append("fresh", "!").unwrap();
    c.prepend("fresh", "¡").unwrap();
    assert_eq!(
        c.get::<String>("fresh").unwrap().as_deref(),
        Some("¡newer!")
    );
}

#[test]
fn cas_incr_decr_delete_touch_flush_over_tcp() {
    let server = Server::start(&["-t", "2"]);
    let c = tcp_client(&server);
    c.set("cas", "one", 0).unwrap();
    let got: HashMap<String, (Vec<u8>, u32, Option<u64>)> = c.gets(&["cas"]).unwrap();
    let cas = got["cas"].2.expect("gets returns a CAS value");
    assert!(c.cas("cas", "two", 0, cas).unwrap(), "first cas wins");
    assert!(!c.cas("cas", "three", 0, cas).unwrap(), "stale cas loses");
    assert_eq!(c.get::<String>("cas").unwrap().as_deref(), Some("two"));

    c.set("counter", 10u64, 0).unwrap();
    assert_eq!(c.increment("counter", 5).unwrap(), 15);
    assert_eq!(c.decrement("counter", 20).unwrap(), 0);
    assert_eq!(c.increment("counter", u64::MAX).unwrap(), u64::MAX);
    c.increment("no-counter", 1).unwrap_err();

    assert!(c.delete("counter").unwrap());
    assert!(!c.delete("counter").unwrap());
    assert_eq!(c.get::<u64>("counter").unwrap(), None);

    c.set("touch", "t", 0).unwrap();
    assert!(c.touch("touch", 1000).unwrap());
    assert!(!c.touch("no-touch", 1000).unwrap());

    for i in 0..20 {
        c.set(&format!("flush:{i}"), i as u64, 0).unwrap();
    }
    c.flush().unwrap();
    for i in 0..20 {
        assert_eq!(c.get::<u64>(&format!("flush:{i}")).unwrap(), None);
    }
    c.set("after", "flush", 0).unwrap();
    assert_eq!(c.get::<String>("after").unwrap().as_deref(), Some("flush"));

    // (The crate's `stats` stops at the first STAT line, so it is not used.)
    let version = c.version().unwrap();
    assert!(version[0].1.starts_with("1.6."), "{version:?}");
}

/// memcache 0.21's text protocol writes a get into its UDP stream's buffer
/// but never flushes it, so the request is never sent and the read finds
/// nothing ("Ascii protocol no line found"); its binary protocol, which does
/// flush, is not served by corecache. tests/udp.rs covers gets over UDP with
/// framed datagrams instead.
#[test]
#[ignore = "client bug: memcache 0.21 never sends ascii get/gets over UDP (no flush)"]
fn get_over_udp() {
    let server = Server::start_udp(&["-t", "2"]);
    let udp = server.udp.expect("a UDP listener");
    let tcp = tcp_client(&server);
    let small: Vec<String> = (0..20).map(|i| format!("udp:{i}")).collect();
    for (i, k) in small.iter().enumerate() {
        tcp.set(k, format!("v{i}").as_str(), 0).unwrap();
    }
    // Larger than one datagram: the reply comes back in several.
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    tcp.set("udp:big", big.as_slice(), 0).unwrap();

    let c = Client::connect(format!("memcache+udp://{udp}?protocol=ascii&timeout=10"))
        .expect("memcache client over UDP");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    for (i, k) in small.iter().enumerate() {
        assert_eq!(c.get::<String>(k).unwrap(), Some(format!("v{i}")), "{k}");
    }
    assert_eq!(c.get::<String>("udp:missing").unwrap(), None);
    assert_eq!(c.get::<Vec<u8>>("udp:big").unwrap(), Some(big));
    // A multi-get over keys of both shards is one reply.
    let asked: Vec<&str> = small.iter().map(String::as_str).collect();
    let got: HashMap<String, String> = c.gets(&asked).unwrap();
    assert_eq!(got.len(), small.len());
}
