//! The HTTP token from a file (`--http-token-file`, `[http] token_file`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, run_to_exit};

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
