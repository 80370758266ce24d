//! The HTTP port (docs/http.md) over real sockets, with a real HTTP client
//! (`ureq`) and raw bytes where the exact bytes matter: REST round trips and
//! errors, the store shared with the memcached port across shards, the legacy
//! endpoints byte for byte, `/metrics` read by a Prometheus text parser, the
//! token, pipelining, and malformed or oversized requests.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Conn, Server, show};

fn start(extra: &[&str]) -> (Server, String) {
    let mut args = vec!["-t", "2", "--http-port", "0"];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let http = server.http.expect("the server logged its HTTP address");
    (server, format!("http://{http}"))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

struct Got {
    status: u16,
    etag: Option<String>,
    flags: Option<String>,
    body: Vec<u8>,
}

fn got(mut r: ureq::http::Response<ureq::Body>) -> Got {
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (etag, flags) = (header("etag"), header("x-cache-flags"));
    Got {
        status: r.status().as_u16(),
        etag,
        flags,
        body: r.body_mut().read_to_vec().unwrap(),
    }
}

fn get(a: &ureq::Agent, url: &str) -> Got {
    got(a.get(url).call().unwrap())
}

fn put(a: &ureq::Agent, url: &str, body: &[u8]) -> Got {
    got(a.put(url).send(body).unwrap())
}

fn error_of(g: &Got) -> String {
    let v: serde_json::Value = serde_json::from_slice(&g.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(&g.body)));
    v["error"].as_str().expect("an error field").to_string()
}

#[test]
fn rest_round_trips_and_their_errors() {
    let (_server, base) = start(&[]);
    let a = agent();
    let key = |k: &str| format!("{base}/v1/keys/{k}");

    let miss = get(&a, &key("nothing"));
    assert_eq!(miss.status, 404);
    assert_eq!(error_of(&miss), "not found");

    let r = got(a
        .put(key("k%2F1"))
        .header("X-Cache-Flags", "7")
        .send(&b"hello"[..])
        .unwrap());
    assert_eq!(r.status, 204);
    let etag = r.etag.expect("a PUT answers the new ETag");
    let g = get(&a, &key("k%2F1"));
    assert_eq!((g.status, g.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(g.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(g.flags.as_deref(), Some("7"));
    let h = got(a.head(key("k%2F1")).call().unwrap());
    assert_eq!((h.status, h.body.len()), (200, 0));

    // If-Match: the ETag of the item, or 412.
    let stale = got(a
        .put(key("k%2F1"))
        .header("If-Match", "\"1\"")
        .send(&b"x"[..])
        .unwrap());
    assert_eq!(stale.status, 412, "{}", show(&stale.body));
    let ok = got(a
        .put(key("k%2F1"))
        .header("If-Match", &etag)
        .send(&b"v2"[..])
        .unwrap());
    assert_eq!(ok.status, 204);
    assert_ne!(ok.etag.as_deref(), Some(etag.as_str()), "a new CAS");
    assert_eq!(get(&a, &key("k%2F1")).body, b"v2");
    let absent = got(a
        .put(key("absent"))
        .header("If-Match", "*")
        .send(&b"x"[..])
        .unwrap());
    assert_eq!(absent.status, 412);
    assert_eq!(get(&a, &key("absent")).status, 404);

    // incr / decr.
    put(&a, &key("n"), b"10");
    let incr = got(a
        .post(format!("{}/incr?by=5", key("n")))
        .send_empty()
        .unwrap());
    assert_eq!((incr.status, incr.body.as_slice()), (200, &b"15"[..]));
    let decr = got(a.post(format!("{}/decr", key("n"))).send_empty().unwrap());
    assert_eq!(decr.body, b"14");
    let nan = got(a
        .post(format!("{}/incr", key("k%2F1")))
        .send_empty()
        .unwrap());
    assert_eq!(nan.status, 409);
    let none = got(a.post(format!("{}/incr", key("zzz"))).send_empty().unwrap());
    assert_eq!(none.status, 404);

    // TTL: an item put with a TTL in the past... is not a thing; one with
    // max-age keeps its value now and is gone after it.
    let short = got(a
        .put(key("short"))
        .header("Cache-Control", "max-age=1")
        .send(&b"s"[..])
        .unwrap());
    assert_eq!(short.status, 204);
    assert_eq!(get(&a, &key("short")).status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(&a, &key("short")).status == 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "max-age=1 never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(put(&a, &format!("{}?ttl=abc", key("t")), b"x").status, 400);

    // DELETE, then flush.
    assert_eq!(got(a.delete(key("n")).call().unwrap()).status, 204);
    assert_eq!(got(a.delete(key("n")).call().unwrap()).status, 404);
    assert_eq!(
        got(a.post(format!("{base}/v1/flush")).send_empty().unwrap()).status,
        204
    );
    assert_eq!(get(&a, &key("k%2F1")).status, 404);

    // Bad keys: 400 with a JSON error.
    for bad in ["a%20b", "%0A", &"k".repeat(251), "%zz"] {
        let g = get(&a, &key(bad));
        assert_eq!(g.status, 400, "{bad}");
        assert!(!error_of(&g).is_empty());
    }
    assert_eq!(get(&a, &format!("{base}/nope")).status, 404);
    assert_eq!(
        got(a.delete(format!("{base}/stats")).call().unwrap()).status,
        405
    );
    assert_eq!(get(&a, &format!("{base}/health")).status, 200);
    assert_eq!(get(&a, &format!("{base}/ready")).status, 200);
}

#[test]
fn a_key_set_over_http_is_read_over_memcached_and_back_on_every_shard() {
    let (server, base) = start(&[]);
    let a = agent();
    let mut mc = server.connect();
    // Enough keys that both shards own some, whichever shard each HTTP
    // connection landed on.
    for i in 0..64 {
        let k = format!("shared-{i}");
        assert_eq!(
            put(
                &a,
                &format!("{base}/v1/keys/{k}"),
                format!("h{i}").as_bytes()
            )
            .status,
            204
        );
        assert_eq!(mc.get(&k), Some(format!("h{i}").into_bytes()), "{k}");
        mc.set(&format!("m-{i}"), format!("m{i}").as_bytes());
        let g = get(&a, &format!("{base}/v1/keys/m-{i}"));
        assert_eq!((g.status, g.body), (200, format!("m{i}").into_bytes()));
    }
    let stats: std::collections::HashMap<_, _> = mc.stats("").into_iter().collect();
    assert!(
        stats["cross_shard_requests"].parse::<u64>().unwrap() > 0,
        "no request crossed shards"
    );
}

/// The legacy endpoints, byte for byte, over one keep-alive connection.
#[test]
fn the_legacy_endpoints_answer_exactly_the_old_shapes() {
    let (server, _) = start(&[]);
    let mut c = Conn::connect(server.http.unwrap());
    let table: &[(&[u8], &[u8])] = &[
        (
            b"POST /set?key=foo&value=bar HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 69\r\n\r\n{\"message\": \"Value set successfully\", \"key\": \"foo\", \"node\": \"node-1\"}",
        ),
        (
            b"GET /get?key=foo HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 48\r\n\r\n{\"key\": \"foo\", \"value\": \"bar\", \"node\": \"node-1\"}",
        ),
        (
            b"GET /get?key=nope HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 59\r\n\r\n{\"error\": \"Key not found\", \"key\": \"nope\", \"node\": \"node-1\"}",
        ),
    ];
    for (request, want) in table {
        c.send(request);
        assert_eq!(show(&c.read_n(want.len())), show(want));
    }
    // Pipelined: the three again in one write, answered in order.
    let all: Vec<u8> = table.iter().flat_map(|(r, _)| r.iter().copied()).collect();
    c.send(&all);
    for (_, want) in table {
        assert_eq!(show(&c.read_n(want.len())), show(want));
    }
    let mut mc = server.connect();
    assert_eq!(mc.get("foo").as_deref(), Some(&b"bar"[..]));
}

#[test]
fn metrics_are_prometheus_text_with_types_and_a_shard_label() {
    // Every request timed (the default is one in 16), so that the counts are exact.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("corecache.toml");
    std::fs::write(&config, "[http]\nlatency_sample = 1\n").unwrap();
    let (_server, base) = start(&["--config", config.to_str().unwrap()]);
    let a = agent();
    for i in 0..20 {
        put(&a, &format!("{base}/v1/keys/m{i}"), b"v");
        get(&a, &format!("{base}/v1/keys/m{i}"));
    }
    let mut r = a.get(format!("{base}/metrics")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.body_mut().read_to_string().unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
    let hits: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corecache_get_hits_total")
        .collect();
    let shards: std::collections::BTreeSet<_> = hits
        .iter()
        .map(|s| s.labels.get("shard").expect("a shard label").to_string())
        .collect();
    assert_eq!(shards.into_iter().collect::<Vec<_>>(), ["0", "1"]);
    let total: f64 = hits
        .iter()
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            ref other => panic!("get_hits is not a counter: {other:?}"),
        })
        .sum();
    assert_eq!(total, 20.0);
    let conns = scrape
        .samples
        .iter()
        .find(|s| s.metric == "corecache_curr_connections")
        .expect("curr_connections");
    assert!(matches!(conns.value, prometheus_parse::Value::Gauge(_)));
    assert!(
        scrape.docs.contains_key("corecache_get_hits_total"),
        "HELP lines"
    );
    // Latency histograms: the REST requests ran as meta commands, 40 of them
    // (20 PUT, 20 GET) over the two shards.
    let meta: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "corecache_request_duration_seconds"
                && s.labels.get("family") == Some("meta")
        })
        .collect();
    let timed: f64 = meta
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                let inf = buckets.last().expect("buckets");
                assert!(inf.less_than.is_infinite());
                assert!(
                    buckets.windows(2).all(|w| w[0].count <= w[1].count),
                    "cumulative"
                );
                inf.count
            }
            other => panic!("not a histogram: {other:?}"),
        })
        .sum();
    assert_eq!(timed, 40.0);

    let mut s = a.get(format!("{base}/stats")).call().unwrap();
    let stats: serde_json::Value =
        serde_json::from_slice(&s.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(stats["stats"]["get_hits"], 20);
    assert!(stats["settings"]["maxbytes"].is_u64());
    assert!(stats["shards"]["0:get_hits"].is_u64() && stats["shards"]["1:get_hits"].is_u64());
    assert!(stats["shards"]["0:latency:meta"].is_string());
    assert!(stats["slabs"]["active_slabs"].as_u64().unwrap() >= 1);
    assert!(
        stats["items"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with(":number"))
    );
}

#[test]
fn a_token_is_required_on_every_path_but_health() {
    let (_server, base) = start(&["--http-token", "s3cret"]);
    let a = agent();
    for path in [
        "/metrics",
        "/stats",
        "/ready",
        "/",
        "/v1/keys/k",
        "/get?key=k",
    ] {
        let r = get(&a, &format!("{base}{path}"));
        assert_eq!(r.status, 401, "{path}");
        let wrong = got(a
            .get(format!("{base}{path}"))
            .header("Authorization", "Bearer s3cres")
            .call()
            .unwrap());
        assert_eq!(wrong.status, 401, "{path}");
    }
    assert_eq!(get(&a, &format!("{base}/health")).status, 200);
    let ok = got(a
        .get(format!("{base}/metrics"))
        .header("Authorization", "Bearer s3cret")
        .call()
        .unwrap());
    assert_eq!(ok.status, 200);
}

fn status_line(c: &mut Conn) -> String {
    String::from_utf8_lossy(&c.read_line()).into_owned()
}

/// Reads one response's status line and headers, then the connection's end.
fn refused(addr: SocketAddr, request: &[u8]) -> (String, Vec<u8>) {
    let mut c = Conn::connect(addr);
    c.send(request);
    let status = status_line(&mut c);
    let rest = c.read_to_eof();
    (status, rest)
}

#[test]
fn malformed_and_oversized_requests_get_a_clear_4xx_and_memcached_goes_on() {
    let (server, _) = start(&[]);
    let http = server.http.unwrap();
    let table: &[(&[u8], &str)] = &[
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n",
            "413",
        ),
        (
            b"PUT /v1/keys/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "411",
        ),
        (b"GET /\x01 HTTP/1.1\r\n\r\n", "400"),
        (b"NOT A REQUEST LINE\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", "400"),
    ];
    for (request, status) in table {
        let (line, rest) = refused(http, request);
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status} ")),
            "{}: {line}",
            show(request)
        );
        let rest = String::from_utf8_lossy(&rest);
        assert!(rest.contains("Connection: close\r\n"), "{rest}");
        assert!(rest.contains("{\"error\": "), "{rest}");
    }
    // Slowloris: headers dribbled a few bytes at a time never end. Past 32
    // header lines, or past the header bound within one line, the server
    // answers 431 and hangs up.
    for chunk in [
        &b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"[..],
        b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let mut c = Conn::connect(http);
        c.send(b"GET / HTTP/1.1\r\nX-Long: ");
        let mut sent = 0;
        while sent <= 8 << 10 {
            if std::io::Write::write_all(&mut c.stream, chunk).is_err() {
                break; // the server has answered and closed
            }
            sent += chunk.len();
            std::thread::sleep(Duration::from_millis(1));
        }
        let line = status_line(&mut c);
        assert!(
            line.starts_with("HTTP/1.1 431 "),
            "{line} after {sent} bytes"
        );
    }
    // A huge body is refused before it is read, whatever arrives after.
    let mut big = Conn::connect(http);
    big.send(b"PUT /v1/keys/big HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n");
    big.send(&vec![b'x'; 256 << 10]);
    assert!(status_line(&mut big).starts_with("HTTP/1.1 413 "));

    let mut mc = server.connect();
    mc.set("still", b"here");
    assert_eq!(mc.get("still").as_deref(), Some(&b"here"[..]));
    let rss = server.rss_kib();
    assert!(
        rss < 512 << 10,
        "RSS {rss} KiB after the oversized requests"
    );
}

/// One raw response: status code, header lines (lower-cased names), body
/// (read by its Content-Length).
fn read_response(c: &mut Conn) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let line = status_line(c);
    let code = line[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let h = status_line(c);
        if h == "\r\n" {
            break;
        }
        let (name, value) = h.trim_end().split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    (code, headers, c.read_n(length))
}

/// Keep-alive with pipelined REST requests, answered in order, some for
/// keys on the other shard.
#[test]
fn pipelined_rest_requests_are_answered_in_order() {
    let (server, _) = start(&[]);
    let mut c = Conn::connect(server.http.unwrap());
    let mut batch = Vec::new();
    for i in 0..20 {
        let body = format!("value-{i}");
        batch.extend_from_slice(
            format!(
                "PUT /v1/keys/p{i} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        batch.extend_from_slice(format!("GET /v1/keys/p{i} HTTP/1.1\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"GET /v1/keys/p0 HTTP/1.1\r\nConnection: close\r\n\r\n");
    c.send(&batch);
    for i in 0..20 {
        let (code, headers, _) = read_response(&mut c);
        assert_eq!(code, 204, "PUT {i}");
        let etag = headers
            .iter()
            .find(|(n, _)| n == "etag")
            .map(|(_, v)| v.clone());
        let (code, got_headers, body) = read_response(&mut c);
        assert_eq!((code, show(&body)), (200, format!("value-{i}")), "GET {i}");
        let got_etag = got_headers
            .iter()
            .find(|(n, _)| n == "etag")
            .map(|(_, v)| v.clone());
        assert_eq!(got_etag, etag, "GET {i} sees the PUT's CAS");
    }
    let (code, headers, body) = read_response(&mut c);
    assert_eq!((code, body.as_slice()), (200, &b"value-0"[..]));
    assert!(headers.contains(&("connection".to_string(), "close".to_string())));
    assert!(
        c.read_to_eof().is_empty(),
        "closed after the request that asked"
    );
}

/// The timed requests (`_count`) of every latency histogram in a scrape, by
/// (shard, family).
fn latency_counts(
    a: &ureq::Agent,
    base: &str,
) -> std::collections::BTreeMap<(String, String), f64> {
    let mut r = a.get(format!("{base}/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "corecache_request_duration_seconds")
        .map(|s| {
            let key = (
                s.labels.get("shard").unwrap().to_string(),
                s.labels.get("family").unwrap().to_string(),
            );
            match &s.value {
                prometheus_parse::Value::Histogram(b) => (key, b.last().unwrap().count),
                other => panic!("not a histogram: {other:?}"),
            }
        })
        .collect()
}

#[test]
fn latency_is_kept_by_the_entry_shard_with_multi_gets_and_keyless_commands() {
    // Every request timed, two shards: half of the keys are the other
    // shard's, so their requests cross the mesh and back.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("corecache.toml");
    std::fs::write(&config, "[http]\nlatency_sample = 1\n").unwrap();
    let (server, base) = start(&["--config", config.to_str().unwrap()]);
    let mut c = server.connect();
    for i in 0..40 {
        c.set(&format!("x{i}"), b"v");
    }
    for i in 0..40 {
        assert_eq!(c.get(&format!("x{i}")).as_deref(), Some(&b"v"[..]));
    }
    for _ in 0..10 {
        c.send(b"get x0 x1 x2 x3 x4 x5 x6 x7\r\n");
        let reply = c.read_through(b"END\r\n");
        assert_eq!(common::parse_values(&reply).len(), 8);
    }
    for _ in 0..5 {
        c.send(b"version\r\n");
        assert!(c.read_line().starts_with(b"VERSION "));
    }
    // Gathered from both shards: its reply comes back through the queue.
    assert!(!c.stats("").is_empty());
    let counts = latency_counts(&agent(), &base);
    let of = |shard: &str, family: &str| {
        counts
            .get(&(shard.to_string(), family.to_string()))
            .copied()
            .unwrap_or(0.0)
    };
    // Every request counts once, on the shard the connection is on,
    // whichever shard owned its keys.
    let (entry, other) = if of("0", "get") > 0.0 {
        ("0", "1")
    } else {
        ("1", "0")
    };
    assert_eq!(
        (of(entry, "get"), of(other, "get")),
        (50.0, 0.0),
        "{counts:?}"
    );
    assert_eq!(
        (of(entry, "set"), of(other, "set")),
        (40.0, 0.0),
        "{counts:?}"
    );
    // version x5 and stats here; the scrape's own `stats shards` is `other`
    // too, on whichever shard took the HTTP connection.
    assert!(of(entry, "other") >= 6.0, "{counts:?}");
    assert!(of(entry, "other") + of(other, "other") <= 7.0, "{counts:?}");
}

#[test]
fn a_request_forwarded_to_another_node_is_timed_on_the_node_it_entered() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("corecache.toml");
    std::fs::write(&config, "[http]\nlatency_sample = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let cluster = common::cluster::Cluster::start(2, &["--http-port", "0", "--config", config]);
    let mut c = cluster.connect(0);
    for i in 0..20 {
        let key = cluster.key_on(1, &format!("far{i}"));
        c.set(&key, b"v");
        assert_eq!(c.get(&key).as_deref(), Some(&b"v"[..]));
    }
    let total = |node: usize, family: &str| -> f64 {
        let http = cluster.nodes[node].server.as_ref().unwrap().http.unwrap();
        latency_counts(&agent(), &format!("http://{http}"))
            .iter()
            .filter(|((_, f), _)| f == family)
            .map(|(_, n)| n)
            .sum()
    };
    // The entry node timed each round trip over the peer link once; the
    // owner counts them once more, as entries of its peer-link connection.
    assert_eq!((total(0, "get"), total(0, "set")), (20.0, 20.0));
    assert_eq!((total(1, "get"), total(1, "set")), (20.0, 20.0));
}
