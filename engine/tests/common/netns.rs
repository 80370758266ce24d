//! Network namespaces for partition tests: `n` namespaces, each holding one
//! end of a veth pair whose other end is a port of a bridge in the root
//! namespace. The bridge has an address in the subnet too, so the test, in
//! the root namespace, reaches every node over it.
//!
//! ```text
//!   root namespace                                  namespace ccpart-PID-K-i
//!   bridge ccPID-Kb 10.a.b.254/24 ─┬─ ccPID-Kh0 ══ veth ══ ccPID-Kn0 10.a.b.1/24
//!                                  ├─ ccPID-Kh1 ══ veth ══ ccPID-Kn1 10.a.b.2/24
//!                                  └─ ccPID-Kh2 ══ veth ══ ccPID-Kn2 10.a.b.3/24
//! ```
//!
//! [`Netns::cut`] takes node i's bridge-side end down: the node keeps its
//! address and its routes (marked `linkdown`), but no frame leaves or
//! reaches it, as when its cable is pulled; [`Netns::heal`] brings the end
//! back. The test still reaches a cut-off node through
//! [`Netns::connect_inside`], a socket made inside its namespace (the node's
//! own address stays local there).
//!
//! Names and the subnet come from the pid and a per-process counter, so runs
//! in parallel do not collide; the subnet is checked to be unused. Everything
//! is deleted on drop, when a test panics too (only a SIGKILLed test run
//! leaves its namespaces: `ip netns list | grep ccpart`).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Conn;

/// Runs `ip args...`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip args...`, which must succeed (the fixture is half built otherwise).
fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// Whether any route or address of the root namespace is in 10.a.b.0/24.
fn subnet_in_use(a: u32, b: u32) -> bool {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .expect("ip route");
    let prefix = format!("10.{a}.{b}.");
    String::from_utf8_lossy(&out.stdout).contains(&prefix)
}

pub struct Netns {
    /// The namespaces, one per node.
    pub names: Vec<String>,
    /// Node i's address, in namespace i.
    pub addrs: Vec<Ipv4Addr>,
    /// The bridge's address, the root namespace's side.
    pub host: Ipv4Addr,
    bridge: String,
    /// The bridge-side veth ends, one per node.
    host_ends: Vec<String>,
}

impl Netns {
    /// `n` namespaces on one bridge, or `None` when this machine cannot make
    /// network namespaces (not root, no netns support): then it has printed a
    /// loud line saying so, and the test should return. With
    /// `CORECACHE_REQUIRE_NETNS=1` that is a failure instead.
    pub fn create(n: usize, test: &str) -> Option<Netns> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let names: Vec<String> = (0..n).map(|i| format!("ccpart-{pid}-{k}-{i}")).collect();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let first = if root {
            ip(&["netns", "add", &names[0]])
        } else {
            Err("not running as root".to_string())
        };
        if let Err(why) = first {
            let line = format!(
                "{test}: SKIPPED, no network namespaces here ({why}); \
                 it needs root and `ip netns add`"
            );
            assert!(
                std::env::var("CORECACHE_REQUIRE_NETNS").as_deref() != Ok("1"),
                "{line}, and CORECACHE_REQUIRE_NETNS=1 forbids skipping"
            );
            // Straight to stderr: the test harness captures `eprintln!` of a
            // test that passes, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
            return None;
        }
        // From here on the fixture exists and is deleted on drop, whatever
        // fails while it is built.
        let mut net = Netns {
            names: vec![names[0].clone()],
            addrs: Vec::new(),
            host: Ipv4Addr::UNSPECIFIED,
            bridge: format!("cc{pid}-{k}b"),
            host_ends: Vec::new(),
        };
        for name in &names[1..] {
            must(&["netns", "add", name]);
            net.names.push(name.clone());
        }
        let h = pid.wrapping_mul(7919).wrapping_add(k.wrapping_mul(104_729));
        let (a, b) = (0..64u32)
            .map(|t| {
                let h = h.wrapping_add(t.wrapping_mul(2_654_435_761));
                (64 + (h >> 8) % 128, h % 256)
            })
            .find(|&(a, b)| !subnet_in_use(a, b))
            .expect("a free 10.a.b.0/24 subnet");
        net.host = Ipv4Addr::new(10, a as u8, b as u8, 254);
        must(&["link", "add", &net.bridge, "type", "bridge"]);
        must(&[
            "addr",
            "add",
            &format!("{}/24", net.host),
            "dev",
            &net.bridge,
        ]);
        must(&["link", "set", &net.bridge, "up"]);
        for (i, ns) in names.iter().enumerate() {
            let (host_end, ns_end) = (format!("cc{pid}-{k}h{i}"), format!("cc{pid}-{k}n{i}"));
            must(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
            ]);
            net.host_ends.push(host_end.clone());
            must(&["link", "set", &ns_end, "netns", ns]);
            must(&["link", "set", &host_end, "master", &net.bridge]);
            must(&["link", "set", &host_end, "up"]);
            let addr = Ipv4Addr::new(10, a as u8, b as u8, i as u8 + 1);
            must(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                &ns_end,
            ]);
            must(&["-n", ns, "link", "set", &ns_end, "up"]);
            must(&["-n", ns, "link", "set", "lo", "up"]);
            net.addrs.push(addr);
        }
        Some(net)
    }

    /// A command that runs `program` inside namespace `i` (`ip netns exec`
    /// execs it, so the child is the program itself).
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[i], program]);
        cmd
    }

    /// Cuts node `i` off the bridge (its end goes down: no carrier).
    pub fn cut(&self, i: usize) {
        must(&["link", "set", &self.host_ends[i], "down"]);
    }

    /// Puts node `i` back on the bridge.
    pub fn heal(&self, i: usize) {
        must(&["link", "set", &self.host_ends[i], "up"]);
    }

    /// A client connection to `addr` made from inside namespace `i`: it
    /// reaches node `i` at its own address even while the node is cut off.
    pub fn connect_inside(&self, i: usize, addr: SocketAddr) -> Conn {
        let path = format!("/var/run/netns/{}", self.names[i]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: the fd is open for the call; a network namespace
                // is per thread, and this short-lived thread only connects
                // (a socket keeps the namespace it was made in).
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                Conn::connect(addr)
            })
            .join()
            .expect("connect inside the namespace")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both; the namespaces go
        // once their last process (the caller stops the nodes first) is gone.
        for end in &self.host_ends {
            let _ = ip(&["link", "del", end]);
        }
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
