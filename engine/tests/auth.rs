//! Authentication: memcached's ascii auth (-Y FILE), differentially against
//! memcached 1.6.18 where it is installed, and SASL PLAIN in the binary
//! protocol (-S, the file named by server.sasl_pwdb / MEMCACHED_SASL_PWDB),
//! by raw packets and through python-binary-memcached and node's memjs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Conn, Memcached, Server, run_to_exit, signal, wait_deadline};
use proto::binary::{BinOp, BinRequest, Opcode, ResponseParse, Status, parse_response};

/// A scratch directory for this test's files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("corecache-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one connection sees for memcached's ascii-auth exchanges.
fn ascii_auth_script(c: &mut Conn) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut ask = |c: &mut Conn, bytes: &[u8]| {
        c.send(bytes);
        out.push(c.read_line());
    };
    ask(c, b"get foo\r\n");
    ask(c, b"version\r\n");
    ask(c, b"set foo 0 0 2\r\nhi\r\n"); // not `user password`
    ask(c, b"set foo 0 0 7\r\nfoo bab\r\n"); // wrong password
    ask(c, b"set foo 0 0 3\r\nfoo\r\n"); // one word
    ask(c, b"set foo 0 0 7\r\nfoo barXY"); // bad termination
    ask(c, b"delete foo\r\n");
    ask(c, b"set foo 0 0 7\r\nfoo bar\r\n"); // right
    ask(c, b"set toast 0 0 2\r\nhi\r\n");
    ask(c, b"get toast\r\n");
    out.push(c.read_line());
    out.push(c.read_line());
    out
}

#[test]
fn ascii_auth_answers_as_memcached() {
    let dir = Dir::new("ascii-auth");
    let file = dir.file("pw", "foo:bar\nbaaaz:quux\n");
    let server = Server::start(&["-Y", &file]);
    let ours = ascii_auth_script(&mut server.connect());
    assert_eq!(ours[0], b"CLIENT_ERROR unauthenticated\r\n");
    assert_eq!(ours[7], b"STORED\r\n");
    assert_eq!(ours[9], b"VALUE toast 0 2\r\n");
    let login = b"set login 0 0 7\r\nfoo bar\r\n";
    if let Some(mc) =
        Memcached::start_with_hello("ascii_auth_answers_as_memcached", &["-Y", &file], login)
    {
        let theirs = ascii_auth_script(&mut mc.connect());
        assert_eq!(
            ours, theirs,
            "corecache (left) and memcached (right) differ"
        );
    }
    // A second connection authenticates with the second entry; counters count.
    let mut c = server.connect();
    c.send(b"set x 0 0 10\r\nbaaaz quux\r\nstats\r\n");
    assert_eq!(c.read_line(), b"STORED\r\n");
    let stats = String::from_utf8(c.read_through(b"END\r\n")).unwrap();
    assert!(stats.contains("STAT auth_cmds 3\r\n"), "{stats}");
    assert!(stats.contains("STAT auth_errors 1\r\n"), "{stats}");
    c.send(b"stats settings\r\n");
    let settings = String::from_utf8(c.read_through(b"END\r\n")).unwrap();
    assert!(settings.contains(&format!("STAT auth_enabled_ascii {file}\r\n")));
}

#[test]
fn ascii_auth_data_too_long_is_refused_without_buffering() {
    let dir = Dir::new("ascii-auth-long");
    let file = dir.file("pw", "foo:bar\n");
    let server = Server::start(&["-Y", &file]);
    let mut c = server.connect();
    let mut req = b"set foo 0 0 3000000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'a', 3_000_000));
    req.extend_from_slice(b"\r\nset foo 0 0 7\r\nfoo bar\r\n");
    c.send(&req);
    assert_eq!(
        c.read_line(),
        b"CLIENT_ERROR bad authentication token format\r\n"
    );
    assert_eq!(c.read_line(), b"STORED\r\n");
}

#[test]
fn a_sighup_rereads_the_auth_file_and_a_broken_one_keeps_the_old() {
    let dir = Dir::new("ascii-auth-hup");
    let file = dir.file("pw", "old:one\n");
    let server = Server::start(&["-Y", &file]);
    dir.file("pw", "new:two\n");
    signal(server.pid(), libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .log()
        .iter()
        .any(|l| l.contains("auth file reloaded"))
    {
        assert!(
            Instant::now() < deadline,
            "no reload logged: {:?}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = server.connect();
    c.send(b"set a 0 0 7\r\nold one\r\nset a 0 0 7\r\nnew two\r\n");
    assert_eq!(c.read_line(), b"CLIENT_ERROR authentication failure\r\n");
    assert_eq!(c.read_line(), b"STORED\r\n");
    dir.file("pw", "no colon here\n");
    signal(server.pid(), libc::SIGHUP);
    while !server
        .log()
        .iter()
        .any(|l| l.contains("keeping the entries"))
    {
        assert!(Instant::now() < deadline, "no failed reload logged");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = server.connect();
    c.send(b"set a 0 0 7\r\nnew two\r\n");
    assert_eq!(c.read_line(), b"STORED\r\n");
}

#[test]
fn bad_auth_settings_stop_the_start_with_one_line() {
    let dir = Dir::new("auth-start");
    let bad = dir.file("bad", "foo:bar\nnocolon\n");
    for (args, says) in [
        (vec!["-Y", bad.as_str()], "malformed entry on line 2"),
        (vec!["-Y", "/nonexistent/pw"], "cannot read the auth file"),
        (vec!["-Y", bad.as_str(), "-U", "11311"], "UDP"),
        (vec!["-S"], "MEMCACHED_SASL_PWDB"),
    ] {
        let (code, _, stderr) = run_to_exit(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

fn sasl_server(dir: &Dir) -> Server {
    let pwdb = dir.file("sasl", "alice:wonderland\n");
    let toml = dir.file("c.toml", &format!("[server]\nsasl_pwdb = \"{pwdb}\"\n"));
    Server::start(&["--config", &toml, "-S", "-t", "2"])
}

fn responses(
    c: &mut Conn,
    requests: &[BinRequest<'_>],
    last: (Opcode, u32),
) -> Vec<(u8, u16, Vec<u8>)> {
    let mut wire = Vec::new();
    for r in requests {
        r.encode(&mut wire);
    }
    c.send(&wire);
    let bytes = c.read_binary_through(last.0 as u8, last.1);
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while let ResponseParse::Complete { response, consumed } = parse_response(rest) {
        out.push((response.opcode, response.status, response.value.to_vec()));
        rest = &rest[consumed..];
    }
    out
}

#[test]
fn sasl_plain_gates_every_command_but_version() {
    let dir = Dir::new("sasl");
    let server = sasl_server(&dir);
    let mut c = server.connect();
    let got = responses(
        &mut c,
        &[
            BinRequest::new(BinOp::Version, false, 1, 0),
            BinRequest::new(BinOp::SaslListMechs, false, 2, 0),
            BinRequest::new(
                BinOp::SaslAuth {
                    mech: b"PLAIN",
                    data: b"\0alice\0wrong",
                },
                false,
                3,
                0,
            ),
            BinRequest::new(
                BinOp::SaslAuth {
                    mech: b"PLAIN",
                    data: b"\0alice\0wonderland",
                },
                false,
                4,
                0,
            ),
            BinRequest::new(
                BinOp::Get {
                    key: b"k",
                    with_key: false,
                },
                false,
                5,
                0,
            ),
        ],
        (Opcode::Get, 5),
    );
    assert_eq!(got[1], (Opcode::SaslListMechs as u8, 0, b"PLAIN".to_vec()));
    assert_eq!(got[2].1, Status::AuthError.code());
    assert_eq!(
        got[3],
        (Opcode::SaslAuth as u8, 0, b"Authenticated".to_vec())
    );
    assert_eq!(got[4].1, Status::NotFound.code());
    // Unauthenticated, anything else is refused and the connection closed.
    let mut c = server.connect();
    let mut wire = Vec::new();
    BinRequest::new(BinOp::Noop, false, 9, 0).encode(&mut wire);
    c.send(&wire);
    let reply = c.read_to_eof();
    let ResponseParse::Complete { response, .. } = parse_response(&reply) else {
        panic!("{reply:?}")
    };
    assert_eq!(response.status, Status::AuthError.code());
    // Text is not spoken with -S.
    let mut c = server.connect();
    c.send(b"version\r\n");
    assert_eq!(c.read_to_eof(), b"");
}

#[test]
fn python_binary_memcached_authenticates_with_sasl_plain() {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import bmemcached"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: python3-binary-memcached missing (run scripts/install-test-deps.sh)");
        return;
    }
    let dir = Dir::new("sasl-bmemcached");
    let server = sasl_server(&dir);
    let script = r#"
import sys, bmemcached
addr = sys.argv[1]
c = bmemcached.Client((addr,), "alice", "wonderland")
assert c.set("k", "v") and c.get("k") == "v"
bad = bmemcached.Client((addr,), "alice", "nope")
try:
    bad.set("k", "w")
    raise SystemExit("a wrong password was accepted")
except Exception as e:
    if isinstance(e, SystemExit):
        raise
assert c.get("k") == "v"
print("ok")
"#;
    client_prints_ok(Command::new("/usr/bin/python3").args([
        "-c",
        script,
        &server.addr.to_string(),
    ]));
}

#[test]
fn memjs_authenticates_with_sasl_plain() {
    let memjs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/node/node_modules/memjs");
    if !memjs.join("package.json").exists() || Command::new("node").arg("-v").output().is_err() {
        eprintln!("skipped: node or memjs missing (run scripts/install-test-deps.sh)");
        return;
    }
    let dir = Dir::new("sasl-memjs");
    let server = sasl_server(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/memjs_sasl.js");
    client_prints_ok(
        Command::new("node")
            .arg(&script)
            .arg(server.addr.to_string())
            .env("MEMJS", &memjs),
    );
}

/// Runs a client library's script (60 s at most) and asserts it succeeded and
/// printed exactly "ok".
fn client_prints_ok(cmd: &mut Command) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_deadline(&mut child, Duration::from_secs(60)).expect("finishes");
    let out = child.wait_with_output().unwrap();
    assert!(
        status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
