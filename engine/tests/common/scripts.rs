//! Client-library scripts (tests/clients/) run against a server: Debian's
//! interpreters and libraries (scripts/install-test-deps.sh), each script
//! printing "ok" when every check passed.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Memcached, Server, wait_deadline};

const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

/// Whether `interpreter check...` succeeds (a library loads); says why not.
pub fn available(interpreter: &str, check: &[&str]) -> bool {
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

/// Runs `interpreter tests/clients/<script> <args...> <addr>`; why it failed, if it did.
pub fn run(interpreter: &str, script: &str, args: &[&str], addr: SocketAddr) -> Result<(), String> {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(interpreter)
        .arg(&path)
        .args(args)
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
            "{script} {args:?} against {addr}: {status}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The script against memcached first (so its expectations are memcached's),
/// then against a 2-shard corecache.
pub fn against_both(test: &str, interpreter: &str, script: &str, args: &[&str]) {
    if let Some(memcached) = Memcached::start(test) {
        run(interpreter, script, args, memcached.addr)
            .expect("the script passes against memcached");
    }
    let server = Server::start(&["-t", "2"]);
    if let Err(e) = run(interpreter, script, args, server.addr) {
        panic!("{e}\nserver log:\n{}", server.log().join("\n"));
    }
}
