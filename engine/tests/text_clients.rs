//! A 1000-key multi-get of 100-byte keys (a ~101 KB get line, which corecache
//! used to refuse past 64 KiB) through the text-protocol client libraries that
//! send one line for it: pymemcache, pylibmc and python-memcached, each run
//! against memcached first, then a 2-shard corecache. The libraries come from
//! Debian (scripts/install-test-deps.sh); a missing one is said and skipped.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Memcached, Server, wait_deadline};

fn run(library: &str, addr: std::net::SocketAddr) -> Result<(), String> {
    let script = format!(
        "{}/tests/clients/multiget_1000.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("/usr/bin/python3")
        .args([&script, library, &addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let Some(status) = wait_deadline(&mut child, Duration::from_secs(60)) else {
        let _ = child.kill();
        return Err(format!("{library} did not finish within 60 s"));
    };
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if status.success() && stdout.trim_end().ends_with("ok") {
        Ok(())
    } else {
        Err(format!(
            "{library} against {addr}: {status}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn against_both(library: &str, module: &str) {
    let present = Command::new("/usr/bin/python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        eprintln!(
            "skipped: /usr/bin/python3 cannot import {module} (run scripts/install-test-deps.sh)"
        );
        return;
    }
    if let Some(mc) = Memcached::start(library) {
        run(library, mc.addr).expect("the script passes against memcached");
    }
    let server = Server::start(&["-t", "2"]);
    if let Err(e) = run(library, server.addr) {
        panic!("{e}\nserver log:\n{}", server.log().join("\n"));
    }
}

#[test]
fn pymemcache_gets_every_key_of_a_1000_key_multi_get() {
    against_both("pymemcache", "pymemcache");
}

#[test]
fn pylibmc_gets_every_key_of_a_1000_key_multi_get() {
    against_both("pylibmc", "pylibmc");
}

#[test]
fn python_memcached_gets_every_key_of_a_1000_key_multi_get() {
    against_both("python-memcached", "memcache");
}
