//! Through a real client library: the `memcache` crate speaking the text and
//! the binary protocol to a 2-shard corecache over TCP, and binary over UDP.

mod common;
use std::collections::HashMap;

use common::Server;
use memcache::Client;

fn tcp_client(server: &Server, protocol: &str) -> Client {
    Client::connect(format!(
        "memcache://{}?protocol={protocol}&timeout=10",
        server.addr
    ))
    .expect("memcache client over TCP")
}

#[test]
fn set_get_multi_get_over_tcp() {
    set_get_multi_get("ascii");
}

#[test]
fn set_get_multi_get_over_tcp_in_binary() {
    set_get_multi_get("binary");
}

#[test]
fn cas_incr_decr_delete_touch_flush_over_tcp() {
    cas_incr_decr_delete_touch_flush("ascii");
}

#[test]
fn cas_incr_decr_delete_touch_flush_over_tcp_in_binary() {
    cas_incr_decr_delete_touch_flush("binary");
}

fn set_get_multi_get(protocol: &str) {
    let server = Server::start(&["-t", "2"]);
    let c = tcp_client(&server, protocol);
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
    // The crate maps a refused add or replace to Ok (text) or an error
    // (binary): check the effect.
    let _ = c.add("greeting", "again", 0);
    assert_eq!(
        c.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    c.add("fresh", "new", 0).unwrap();
    c.replace("fresh", "newer", 0).unwrap();
    let _ = c.replace("nowhere", "x", 0);
    assert_eq!(c.get::<String>("nowhere").unwrap(), None);
    c.append("fresh", "!").unwrap();
    c.prepend("fresh", "¡").unwrap();
    assert_eq!(
        c.get::<String>("fresh").unwrap().as_deref(),
        Some("¡newer!")
    );
}

fn cas_incr_decr_delete_touch_flush(protocol: &str) {
    let server = Server::start(&["-t", "2"]);
    let c = tcp_client(&server, protocol);
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
    if protocol == "binary" {
        // A binary increment carries an initial value and creates a missing
        // counter with it (the crate sends 0), as memcached does.
        assert_eq!(c.increment("no-counter", 1).unwrap(), 0);
        assert_eq!(c.increment("no-counter", 1).unwrap(), 1);
    } else {
        c.increment("no-counter", 1).unwrap_err();
    }

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

/// Binary over UDP (memcache 0.21's text protocol writes a UDP get into its
/// buffer and never flushes it, so only its binary protocol works over UDP;
/// tests/udp.rs covers text gets with framed datagrams).
#[test]
fn get_over_udp_in_binary() {
    let server = Server::start_udp(&["-t", "2"]);
    let udp = server.udp.expect("a UDP listener");
    let tcp = tcp_client(&server, "ascii");
    let small: Vec<String> = (0..20).map(|i| format!("udp:{i}")).collect();
    for (i, k) in small.iter().enumerate() {
        tcp.set(k, format!("v{i}").as_str(), 0).unwrap();
    }
    let c = Client::connect(format!("memcache+udp://{udp}?protocol=binary&timeout=10"))
        .expect("memcache client over UDP");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    for (i, k) in small.iter().enumerate() {
        assert_eq!(c.get::<String>(k).unwrap(), Some(format!("v{i}")), "{k}");
    }
    assert_eq!(c.get::<String>("udp:missing").unwrap(), None);
    c.set("udp:set", "over udp", 0).unwrap();
    assert_eq!(
        tcp.get::<String>("udp:set").unwrap().as_deref(),
        Some("over udp")
    );
}
