//! The status page (`GET /`) loaded in headless Chromium: it polls `/stats`
//! and renders the numbers, which are checked in the DOM Chromium dumps; a
//! screenshot is saved as target/tmp/status.png. Skips, saying so, when
//! Chromium is not installed (scripts/install-test-deps.sh installs it).

mod common;

use std::process::Command;

use common::Server;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Runs headless Chromium on `url` with `what` (`--dump-dom` or
/// `--screenshot=...`) and a fresh profile; returns its stdout.
fn run(browser: &str, url: &str, what: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1100,700",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(what)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` in a dumped DOM.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let rest = &dom[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    &rest[open..open + close]
}

#[test]
fn the_status_page_renders_the_server_s_numbers() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium is not installed (scripts/install-test-deps.sh)");
        return;
    };
    // Every request timed, for the latency table.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("corecache.toml");
    std::fs::write(&config, "[http]\nlatency_sample = 1\n").unwrap();
    let server = Server::start(&[
        "-t",
        "2",
        "--http-port",
        "0",
        "--config",
        config.to_str().unwrap(),
    ]);
    let mut c = server.connect();
    for i in 0..10 {
        c.set(&format!("page-{i}"), b"0123456789");
    }
    // 7 hits and 3 misses: a hit ratio of 70.0 %.
    for i in 0..7 {
        assert!(c.get(&format!("page-{i}")).is_some());
    }
    for i in 0..3 {
        assert!(c.get(&format!("absent-{i}")).is_none());
    }
    let url = format!("http://{}/", server.http.unwrap());
    let dom = run(browser, &url, "--dump-dom");
    assert!(
        dom.contains("data-rendered=\""),
        "the page never rendered /stats: {dom}"
    );
    assert_eq!(text_of(&dom, "hit"), "70.0 %");
    assert_eq!(text_of(&dom, "items"), "10");
    assert_eq!(text_of(&dom, "evictions"), "0");
    let conns: u64 = text_of(&dom, "conns")
        .parse()
        .expect("a number of connections");
    assert!(conns >= 1, "the memcached connection is open");
    assert!(
        text_of(&dom, "mem").ends_with("/ 64.0 MiB"),
        "{}",
        text_of(&dom, "mem")
    );
    assert!(text_of(&dom, "meta").contains("2 shards"));
    assert_eq!(text_of(&dom, "error"), "");
    // The latency table: a row per shard and family that ran requests; the
    // 10 sets over two shards, each with its percentiles.
    let set_rows: Vec<&str> = dom.split("<tr class=\"lat-set\">").skip(1).collect();
    assert!(!set_rows.is_empty(), "no latency row for set: {dom}");
    let timed: u64 = set_rows
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row
                .split("<td>")
                .skip(1)
                .map(|c| &c[..c.find('<').unwrap()])
                .collect();
            assert!(
                cells[3].starts_with("≤ ") || cells[3].starts_with("> "),
                "{cells:?}"
            );
            cells[2].parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(timed, 10, "the sets, timed on the shards that ran them");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status.png");
    let _ = std::fs::remove_file(&shot);
    run(browser, &url, &format!("--screenshot={}", shot.display()));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
