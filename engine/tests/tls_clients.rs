//! TLS on the memcached port through a real client stack: pymemcache over
//! Python's ssl module (OpenSSL) against corecache started with -Z and the
//! test certificates of engine/src/tls/testdata, verifying the server against
//! its CA. memcached's own suite covers the rest over TLS
//! (scripts/memcached-t.sh --tls); this checks what it does not: TLS 1.2 and
//! 1.3 clients side by side, large values and multi-gets spanning many
//! records, mutual TLS refusing a client without a certificate, and the
//! HTTP port speaking HTTPS under -Z.

mod common;

use common::Server;
use common::scripts::{available, run};

fn certs() -> String {
    format!("{}/src/tls/testdata", env!("CARGO_MANIFEST_DIR"))
}

fn tls_args(extra: &str) -> Vec<String> {
    let d = certs();
    let mut o = format!("ssl_chain_cert={d}/server.pem,ssl_key={d}/server.key");
    if !extra.is_empty() {
        o.push(',');
        o.push_str(extra);
    }
    ["-t", "2", "-Z", "-o", &o].map(String::from).to_vec()
}

fn pymemcache(mode: &str, extra: &str) {
    if !available("/usr/bin/python3", &["-c", "import pymemcache, ssl"]) {
        return;
    }
    let args = tls_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    assert!(
        server.log().iter().any(|l| l.contains("tls=rustls")),
        "the log names the TLS path: {:?}",
        server.log()
    );
    if let Err(e) = run(
        "/usr/bin/python3",
        "tls_pymemcache.py",
        &[mode, &certs()],
        server.addr,
    ) {
        panic!("{e}\nserver log:\n{}", server.log().join("\n"));
    }
}

#[test]
fn pymemcache_over_tls_1_2_and_1_3_sets_gets_and_multi_gets() {
    pymemcache("basic", "");
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate_and_serves_one_with() {
    let ca = format!("{}/ca.pem", certs());
    pymemcache("mtls", &format!("ssl_verify_mode=2,ssl_ca_cert={ca}"));
}

#[test]
fn with_tls_on_the_http_port_speaks_https_and_shares_the_store() {
    if !available("/usr/bin/python3", &["-c", "import pymemcache, ssl"]) {
        return;
    }
    let args = tls_args("");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--http-port", "0"]);
    let server = Server::start(&args);
    let http = server.http.expect("an HTTP port");
    let mc = server.addr.to_string();
    if let Err(e) = run(
        "/usr/bin/python3",
        "tls_pymemcache.py",
        &["https", &certs(), &mc],
        http,
    ) {
        panic!("{e}\nserver log:\n{}", server.log().join("\n"));
    }
}
