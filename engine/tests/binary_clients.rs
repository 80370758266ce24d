//! The binary protocol through the client libraries that speak it, each run
//! against memcached first (so the scripts' expectations are memcached's) and
//! then against a 2-shard corecache: python-binary-memcached, pylibmc in
//! binary mode and Ruby's dalli 3.0, which speaks nothing else. Each script
//! (tests/clients/) covers set/get, 1000-key multi-gets over both shards,
//! add/replace/append, counters, CAS, touch, delete, stats and flush.
//!
//! The libraries come from Debian (scripts/install-test-deps.sh); a test whose
//! interpreter or library is missing says so and does not run.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Memcached, Server, wait_deadline};

const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `interpreter script addr` and returns why it failed, if it did.
fn run(interpreter: &str, script: &str, addr: std::net::SocketAddr) -> Result<(), String> {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(interpreter)
        .arg(&path)
        .arg(addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{interpreter}: {e}"))?;
    let Some(status) = wait_deadline(&mut child, SCRIPT_DEADLINE) else {
        let _ = child.kill();
        return Err(format!(
            "{script} did not finish within {SCRIPT_DEADLINE:?}"
        ));
    };
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if status.success() && stdout.trim_end().ends_with("ok") {
        Ok(())
    } else {
        Err(format!(
            "{script} against {addr}: {status}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether `interpreter` can load `library`; says why not when it cannot.
fn available(interpreter: &str, check: &[&str]) -> bool {
    let ok = Command::new(interpreter)
        .args(check)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "skipped: {interpreter} {} failed (run scripts/install-test-deps.sh)",
            check.join(" ")
        );
    }
    ok
}

fn against_both(test: &str, interpreter: &str, script: &str) {
    if let Some(memcached) = Memcached::start(test) {
        run(interpreter, script, memcached.addr).expect("the script passes against memcached");
    }
    let server = Server::start(&["-t", "2"]);
    if let Err(e) = run(interpreter, script, server.addr) {
        panic!("{e}\nserver log:\n{}", server.log().join("\n"));
    }
}

#[test]
fn python_binary_memcached() {
    if available("/usr/bin/python3", &["-c", "import bmemcached"]) {
        against_both("bmemcached", "/usr/bin/python3", "bmemcached_roundtrip.py");
    }
}

#[test]
fn pylibmc_in_binary_mode() {
    if available("/usr/bin/python3", &["-c", "import pylibmc"]) {
        against_both("pylibmc-binary", "/usr/bin/python3", "pylibmc_binary.py");
    }
}

#[test]
fn dalli() {
    if available("/usr/bin/ruby", &["-e", "require 'dalli'"]) {
        against_both("dalli", "/usr/bin/ruby", "dalli_roundtrip.rb");
    }
}
