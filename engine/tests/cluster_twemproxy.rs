//! Three corecache nodes behind twemproxy (Debian's `nutcracker`,
//! installed by scripts/install-test-deps.sh) with `distribution: ketama`
//! and `hash: md5`, the nodes started with `--cluster-forward off`: a
//! set/get/multi-get/delete/incr round trip through the proxy, and every key
//! on the node corecache's own ring names (each node answers only for what
//! it holds, so a key on the wrong node would read as a miss there).
//! Skips, saying so, when nutcracker is not installed.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Conn;
use common::cluster::{Cluster, get, read_values, set, text, value_reply};

/// A nutcracker on a free port in front of `nodes`; killed on drop.
struct Nutcracker {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Nutcracker {
    fn start(nodes: &[SocketAddr]) -> Option<Nutcracker> {
        if Command::new("nutcracker")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "skipping: nutcracker (twemproxy) is not installed; run scripts/install-test-deps.sh"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("corecache-twemproxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut conf = format!(
                "corecache:\n  listen: {addr}\n  hash: md5\n  distribution: ketama\n  timeout: 2000\n  auto_eject_hosts: false\n  servers:\n"
            );
            for n in nodes {
                conf.push_str(&format!("    - {n}:1\n"));
            }
            let file = dir.join("nutcracker.yml");
            std::fs::write(&file, conf).unwrap();
            let mut child = Command::new("nutcracker")
                .arg("-c")
                .arg(&file)
                .arg("-o")
                .arg(dir.join("nutcracker.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn nutcracker");
            // Ready when it accepts; it exits when its port was taken meanwhile.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Some(Nutcracker { child, addr, dir });
                }
                if child.try_wait().unwrap().is_some() {
                    break; // lost the port: try another
                }
                assert!(
                    Instant::now() < deadline,
                    "nutcracker not listening within 10 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("nutcracker did not start after 5 tries");
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn twemproxy_with_ketama_md5_places_keys_where_corecache_does() {
    let cluster = Cluster::start(3, &["--cluster-forward", "off"]);
    let addrs: Vec<SocketAddr> = cluster
        .nodes
        .iter()
        .map(|n| n.server.as_ref().unwrap().addr)
        .collect();
    let Some(proxy) = Nutcracker::start(&addrs) else {
        return;
    };
    let mut c = Conn::connect(proxy.addr);
    let keys: Vec<String> = (0..120).map(|i| format!("tw:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        set(&mut c, k, &format!("v{i}"));
    }
    // Every key is on the node the ring names, and only there.
    let mut direct: Vec<Conn> = (0..3).map(|i| cluster.connect(i)).collect();
    let mut per_node = [0usize; 3];
    for (i, k) in keys.iter().enumerate() {
        let owner = cluster.owner(k);
        per_node[owner] += 1;
        for (n, d) in direct.iter_mut().enumerate() {
            let want = if n == owner {
                value_reply(k, &format!("v{i}"))
            } else {
                "END\r\n".to_string()
            };
            assert_eq!(get(d, k), want, "{k} on n{n} (ring owner n{owner})");
        }
    }
    assert!(per_node.iter().all(|&n| n > 0), "{per_node:?}");
    // A multi-get spanning the nodes, in order, through the proxy.
    let some: Vec<&String> = keys.iter().step_by(7).collect();
    let line: Vec<&str> = some.iter().map(|k| k.as_str()).collect();
    c.send(format!("get {}\r\n", line.join(" ")).as_bytes());
    let mut want = String::new();
    for k in &some {
        let i: usize = k[3..].parse().unwrap();
        let v = format!("v{i}");
        want.push_str(&format!("VALUE {k} 5 {}\r\n{v}\r\n", v.len()));
    }
    want.push_str("END\r\n");
    assert_eq!(read_values(&mut c), want);
    // delete and incr round trips.
    c.send(format!("delete {}\r\n", keys[0]).as_bytes());
    assert_eq!(text(&c.read_line()), "DELETED\r\n");
    assert_eq!(get(&mut c, &keys[0]), "END\r\n");
    set(&mut c, "tw:counter", "41");
    c.send(b"incr tw:counter 1\r\n");
    assert_eq!(text(&c.read_line()), "42\r\n");
    let owner = cluster.owner("tw:counter");
    assert_eq!(
        get(&mut direct[owner], "tw:counter"),
        value_reply("tw:counter", "42")
    );
}
