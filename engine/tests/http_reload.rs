//! The HTTP token from a file (`--http-token-file`, `[http] token_file`) and
//! SIGHUP (docs/http.md, "Reloading"): the config file re-read, the token and
//! the log level applied live, every other changed setting named as needing
//! a restart, an invalid file keeping everything as it was.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, run_to_exit, signal};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// The status of `GET {base}/metrics` with `token` as the bearer token.
fn status(a: &ureq::Agent, base: &str, token: Option<&str>) -> u16 {
    let mut r = a.get(format!("{base}/metrics"));
    if let Some(t) = token {
        r = r.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = r.call().unwrap();
    let _ = resp.body_mut().read_to_vec();
    resp.status().as_u16()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_token_file_guards_the_port_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "token", "from-a-file\n");
    let file = file.to_str().unwrap();
    let server = Server::start(&["-t", "2", "--http-port", "0", "--http-token-file", file]);
    let base = format!("http://{}", server.http.unwrap());
    let a = agent();
    assert_eq!(status(&a, &base, None), 401);
    assert_eq!(status(&a, &base, Some("from-a-fil")), 401);
    assert_eq!(status(&a, &base, Some("from-a-file")), 200);

    let empty = write(dir.path(), "empty", "\n");
    let two = write(dir.path(), "two", "one\ntwo\n");
    let missing = dir.path().join("missing");
    for (args, says) in [
        (
            vec!["--http-token-file", missing.to_str().unwrap()],
            "cannot read it",
        ),
        (
            vec!["--http-token-file", empty.to_str().unwrap()],
            "is empty",
        ),
        (
            vec!["--http-token-file", two.to_str().unwrap()],
            "one token per file",
        ),
        (
            vec!["--http-token-file", file, "--http-token", "t"],
            "exclude each other",
        ),
    ] {
        let mut all = vec!["-p", "0", "--http-port", "0"];
        all.extend_from_slice(&args);
        let (code, _, stderr) = run_to_exit(&all);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("http.token_file"), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

fn config(token: &str, verbosity: u8, limit_mb: u64) -> String {
    format!(
        "[server]\nverbosity = {verbosity}\n[memory]\nlimit_mb = {limit_mb}\n\
         [http]\nport = 0\n{token}\n"
    )
}

#[test]
fn sighup_applies_the_token_and_log_level_and_names_what_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(
        dir.path(),
        "corecache.toml",
        &config("token = \"old-token\"", 1, 32),
    );
    let mut server = Server::start(&["-t", "2", "--config", toml.to_str().unwrap()]);
    let base = format!("http://{}", server.http.unwrap());
    // One agent: its kept-alive connections must see the new token too.
    let a = agent();
    assert_eq!(status(&a, &base, Some("old-token")), 200);
    assert_eq!(status(&a, &base, Some("new-token")), 401);
    let hup = |server: &Server| {
        let seen = server.log().len();
        signal(server.pid(), libc::SIGHUP);
        seen
    };

    write(
        dir.path(),
        "corecache.toml",
        &config("token = \"new-token\"", 2, 48),
    );
    let seen = hup(&server);
    server.wait_log(seen, "SIGHUP: HTTP token replaced");
    server.wait_log(seen, "SIGHUP: log level now debug (server.verbosity = 2)");
    let line = server.wait_log(seen, "SIGHUP: memory.limit_mb changed in");
    assert!(
        line.contains(&format!("{}; needs a restart", toml.display())),
        "{line}"
    );
    assert_eq!(status(&a, &base, Some("new-token")), 200);
    assert_eq!(status(&a, &base, Some("old-token")), 401);
    let restarts: Vec<String> = server.log()[seen..]
        .iter()
        .filter(|l| l.contains("needs a restart"))
        .cloned()
        .collect();
    assert_eq!(restarts.len(), 1, "only memory.limit_mb: {restarts:?}");

    // An invalid file changes nothing.
    write(dir.path(), "corecache.toml", "[server\nverbosity = 3\n");
    let seen = hup(&server);
    server.wait_log(seen, "keeping the running settings");
    assert_eq!(status(&a, &base, Some("new-token")), 200);

    // From a token file: re-read on every SIGHUP; an empty one is refused
    // and the token in force stays.
    let token = write(dir.path(), "token", "file-token-1\n");
    let line = format!("token_file = {:?}", token.to_str().unwrap());
    write(dir.path(), "corecache.toml", &config(&line, 2, 48));
    let seen = hup(&server);
    server.wait_log(seen, "SIGHUP: HTTP token replaced");
    assert_eq!(status(&a, &base, Some("file-token-1")), 200);
    assert_eq!(status(&a, &base, Some("new-token")), 401);
    write(dir.path(), "token", "file-token-2\n");
    let seen = hup(&server);
    server.wait_log(seen, "SIGHUP: HTTP token replaced");
    assert_eq!(status(&a, &base, Some("file-token-2")), 200);
    write(dir.path(), "token", "");
    let seen = hup(&server);
    let line = server.wait_log(seen, "keeping the running settings");
    assert!(line.contains("is empty"), "{line}");
    assert_eq!(status(&a, &base, Some("file-token-2")), 200);

    // The debug level set by the first SIGHUP is in force: the shards'
    // debug line at stop is logged.
    assert!(server.stop_with(libc::SIGTERM).success());
    assert!(
        server.log().iter().any(|l| l.contains("shard stopped")),
        "{:?}",
        server.log()
    );
}
