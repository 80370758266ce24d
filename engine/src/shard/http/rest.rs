//! HTTP request → what to do: answer here (health, the status page, every
//! refusal), or the equivalent memcached request whose reply [`super::answer`]
//! turns back into HTTP. This is one half of the translation layer; the
//! memcached bytes built here go through the same request path (routing,
//! cross-shard and cross-node forwarding) as a memcached client's.
//!
//! | HTTP | memcached |
//! |---|---|
//! | `GET`/`HEAD /v1/keys/{k}` | `mg k v f c` |
//! | `PUT /v1/keys/{k}` | `ms k <len> T<ttl> F<flags> c` (+ `C<cas>` for `If-Match: "<cas>"`, `MR` for `If-Match: *`) |
//! | `DELETE /v1/keys/{k}` | `md k` (+ `C<cas>`) |
//! | `POST /v1/keys/{k}/incr?by=N`, `/decr` | `ma k D<N> v` (+ `MD`) |
//! | `POST /v1/flush` | `flush_all` |
//! | `POST /set?key=k&value=v` | `ms k <len> T0` |
//! | `GET /get?key=k` | `mg k v` |
//! | `GET /stats` | `stats`, `stats settings`, `stats slabs`, `stats items`, `stats shards` |
//! | `GET /metrics` | `stats shards` |

use std::io::Write;

use super::answer::{self, Op};
use super::frame::{Request, decimal};

/// The longest TTL taken as seconds from now: memcached reads a larger
/// exptime as a unix time, which a REST client does not mean.
pub const MAX_TTL: u64 = 30 * 24 * 3600;

/// What routing needs besides the request.
pub struct Context<'a> {
    pub token: Option<&'a str>,
    pub max_key_length: usize,
    /// The largest value memcached would store (413 past it).
    pub max_value: usize,
    pub node: &'a str,
    /// Whether cluster membership has settled: no member is only presumed
    /// live (each was heard from, or the start-up grace is over). Always true
    /// without gossip.
    pub settled: bool,
}

/// What to do with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// The whole HTTP response, made here.
    Direct(Vec<u8>),
    /// Run `request` (memcached text, one or more requests) and answer from
    /// its replies as `op` says.
    Memcached { request: Vec<u8>, op: Op },
}

/// Routes one request.
pub fn route(req: &Request<'_>, cx: &Context<'_>) -> Action {
    let head = req.method == "HEAD";
    let direct = |status: u16, message: &str| {
        Action::Direct(answer::error(status, message, head, req.close))
    };
    if req.path != "/health" && !authorized(req.authorization, cx.token) {
        return Action::Direct(answer::unauthorized(head, req.close));
    }
    let get = matches!(req.method, "GET" | "HEAD");
    let post = req.method == "POST";
    match req.path {
        "/health" if get => {
            return Action::Direct(answer::json(200, "{\"status\": \"ok\"}", head, req.close));
        }
        "/ready" if get && !cx.settled => {
            let body = "{\"ready\": false, \"reason\": \"cluster membership has not settled\"}";
            return Action::Direct(answer::json(503, body, head, req.close));
        }
        "/ready" if get => {
            return Action::Direct(answer::json(200, "{\"ready\": true}", head, req.close));
        }
        "/" if get => return Action::Direct(answer::page(head, req.close)),
        // No HEAD where the answer comes from memcached replies (only a
        // key's GET knows to leave the body out): 405.
        "/stats" if req.method == "GET" => {
            return memcached(
                b"stats\r\nstats settings\r\nstats slabs\r\nstats items\r\nstats shards\r\n"
                    .to_vec(),
                Op::Stats,
            );
        }
        "/metrics" if req.method == "GET" => {
            return memcached(b"stats shards\r\n".to_vec(), Op::Metrics);
        }
        "/v1/flush" if post => return memcached(b"flush_all\r\n".to_vec(), Op::Flush),
        "/set" if post => return legacy_set(req, cx),
        "/get" if req.method == "GET" => return legacy_get(req, cx),
        "/health" | "/ready" | "/" | "/stats" | "/metrics" | "/v1/flush" | "/set" | "/get" => {
            return direct(405, "method not allowed");
        }
        _ => {}
    }
    let Some(rest) = req.path.strip_prefix("/v1/keys/") else {
        return direct(404, "no such endpoint");
    };
    let (raw_key, arith) = match rest.rsplit_once('/') {
        Some((k, "incr")) => (k, Some(false)),
        Some((k, "decr")) => (k, Some(true)),
        Some(_) => return direct(404, "no such endpoint"),
        None => (rest, None),
    };
    let key = match key(raw_key, cx.max_key_length) {
        Ok(k) => k,
        Err(why) => return direct(400, why),
    };
    let query = |name: &str| query_param(req.query, name);
    let mut line = Vec::with_capacity(key.len() + 48);
    match (req.method, arith) {
        ("POST", Some(decr)) => {
            let by = match query("by") {
                None => 1,
                Some(v) => match decimal(&v).filter(|_| v.len() <= 20) {
                    Some(n) => n as u64,
                    None => return direct(400, "by must be a non-negative integer"),
                },
            };
            meta(&mut line, b"ma ", &key);
            let _ = write!(line, "{} D{by} v\r\n", if decr { " MD" } else { "" });
            memcached(line, Op::Arith)
        }
        (_, Some(_)) => direct(405, "method not allowed"),
        ("GET" | "HEAD", None) => {
            meta(&mut line, b"mg ", &key);
            line.extend_from_slice(b" v f c\r\n");
            memcached(line, Op::Get { head })
        }
        ("PUT", None) => {
            if req.body.len() > cx.max_value {
                return direct(413, "value larger than the largest item");
            }
            let ttl = match ttl(req) {
                Ok(t) => t,
                Err(why) => return direct(400, why),
            };
            let flags = match req.flags {
                None => 0,
                Some(f) => match decimal(f).and_then(|f| u32::try_from(f).ok()) {
                    Some(f) => f,
                    None => return direct(400, "X-Cache-Flags must be an integer of 32 bits"),
                },
            };
            let condition = match if_match(req.if_match) {
                Ok(c) => c,
                Err(why) => return direct(400, why),
            };
            meta(&mut line, b"ms ", &key);
            let _ = write!(line, " {} T{ttl} F{flags} c", req.body.len());
            push_condition(&mut line, condition);
            line.extend_from_slice(b"\r\n");
            line.extend_from_slice(req.body);
            line.extend_from_slice(b"\r\n");
            memcached(
                line,
                Op::Put {
                    conditional: condition.is_some(),
                },
            )
        }
        ("DELETE", None) => {
            let condition = match if_match(req.if_match) {
                Ok(Some(Condition::Exists)) => None,
                Ok(c) => c,
                Err(why) => return direct(400, why),
            };
            meta(&mut line, b"md ", &key);
            push_condition(&mut line, condition);
            line.extend_from_slice(b"\r\n");
            memcached(line, Op::Delete)
        }
        _ => direct(405, "method not allowed"),
    }
}

fn memcached(request: Vec<u8>, op: Op) -> Action {
    Action::Memcached { request, op }
}

fn meta(line: &mut Vec<u8>, cmd: &[u8], key: &[u8]) {
    line.extend_from_slice(cmd);
    line.extend_from_slice(key);
}

/// `POST /set?key=foo&value=bar`, the legacy API.
fn legacy_set(req: &Request<'_>, cx: &Context<'_>) -> Action {
    let (key, value) = match legacy_key(req, cx) {
        Ok(k) => (k, query_param(req.query, "value")),
        Err(a) => return a,
    };
    let Some(value) = value else {
        return Action::Direct(answer::error(400, "missing value", false, req.close));
    };
    if value.len() > cx.max_value {
        return Action::Direct(answer::error(
            413,
            "value larger than the largest item",
            false,
            req.close,
        ));
    }
    let mut line = Vec::with_capacity(key.len() + value.len() + 32);
    meta(&mut line, b"ms ", &key);
    let _ = write!(line, " {} T0\r\n", value.len());
    line.extend_from_slice(&value);
    line.extend_from_slice(b"\r\n");
    memcached(
        line,
        Op::LegacySet {
            key,
            node: cx.node.to_string(),
        },
    )
}

/// `GET /get?key=foo`, the legacy API.
fn legacy_get(req: &Request<'_>, cx: &Context<'_>) -> Action {
    let key = match legacy_key(req, cx) {
        Ok(k) => k,
        Err(a) => return a,
    };
    let mut line = Vec::with_capacity(key.len() + 8);
    meta(&mut line, b"mg ", &key);
    line.extend_from_slice(b" v\r\n");
    memcached(
        line,
        Op::LegacyGet {
            key,
            node: cx.node.to_string(),
        },
    )
}

fn legacy_key(req: &Request<'_>, cx: &Context<'_>) -> Result<Vec<u8>, Action> {
    let head = req.method == "HEAD";
    let Some(raw) = query_param(req.query, "key") else {
        return Err(Action::Direct(answer::error(
            400,
            "missing key",
            head,
            req.close,
        )));
    };
    check_key(&raw, cx.max_key_length)
        .map(|()| raw)
        .map_err(|why| Action::Direct(answer::error(400, why, head, req.close)))
}

/// A path segment, percent-decoded, checked against memcached's key rules.
pub fn key(raw: &str, max: usize) -> Result<Vec<u8>, &'static str> {
    let key = percent_decode(raw.as_bytes(), false).ok_or("bad percent-encoding in the key")?;
    check_key(&key, max)?;
    Ok(key)
}

/// memcached's rules: 1..=max bytes, none a control character or a space.
fn check_key(key: &[u8], max: usize) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty key");
    }
    if key.len() > max {
        return Err("key longer than the maximum key length");
    }
    if key.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err("keys may not hold spaces or control characters");
    }
    Ok(())
}

/// Decodes `%XX` escapes (and `+` as a space in a query); `None` for a bad escape.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The decoded value of the first `name=` in a query string (a parameter
/// with a bad escape counts as absent).
pub fn query_param(query: Option<&str>, name: &str) -> Option<Vec<u8>> {
    query?.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| percent_decode(v.as_bytes(), true))?
    })
}

/// The TTL of a PUT: `?ttl=` first, else `Cache-Control: max-age=`, else none.
fn ttl(req: &Request<'_>) -> Result<u64, &'static str> {
    let given = match query_param(req.query, "ttl") {
        Some(t) => Some(t),
        None => req.cache_control.and_then(|cc| {
            cc.split(|&b| b == b',')
                .find_map(|d| d.trim_ascii().strip_prefix(b"max-age="))
                .map(<[u8]>::to_vec)
        }),
    };
    match given {
        None => Ok(0),
        Some(t) => match decimal(&t) {
            Some(t) if t as u64 <= MAX_TTL => Ok(t as u64),
            _ => Err("ttl must be an integer number of seconds, at most 2592000 (30 days)"),
        },
    }
}

/// What `If-Match` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `*`: the key exists.
    Exists,
    /// `"<cas>"`: the item has this CAS.
    Cas(u64),
}

fn if_match(value: Option<&[u8]>) -> Result<Option<Condition>, &'static str> {
    let Some(v) = value else { return Ok(None) };
    if v == b"*" {
        return Ok(Some(Condition::Exists));
    }
    let inner = v
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v);
    match decimal(inner) {
        Some(cas) => Ok(Some(Condition::Cas(cas as u64))),
        None => Err("If-Match must be an ETag this server gave (\"<number>\") or *"),
    }
}

fn push_condition(line: &mut Vec<u8>, condition: Option<Condition>) {
    match condition {
        None => {}
        Some(Condition::Exists) => line.extend_from_slice(b" MR"),
        Some(Condition::Cas(cas)) => {
            let _ = write!(line, " C{cas}");
        }
    }
}

/// Whether the request may pass: no token is set, or it carries
/// `Authorization: Bearer <token>` (compared in constant time).
fn authorized(header: Option<&[u8]>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let Some(given) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
        return false;
    };
    crate::auth::constant_time_eq(given.trim_ascii(), token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CX: Context<'static> = Context {
        token: None,
        max_key_length: 250,
        max_value: 1 << 20,
        node: "node-1",
        settled: true,
    };

    fn request<'a>(method: &'a str, path: &'a str, query: Option<&'a str>) -> Request<'a> {
        Request {
            method,
            path,
            query,
            authorization: None,
            if_match: None,
            cache_control: None,
            flags: None,
            body: b"",
            close: false,
        }
    }

    fn memcached_bytes(a: Action) -> String {
        match a {
            Action::Memcached { request, .. } => String::from_utf8(request).unwrap(),
            Action::Direct(d) => panic!("answered directly: {}", String::from_utf8_lossy(&d)),
        }
    }

    fn status(a: Action) -> u16 {
        match a {
            Action::Direct(d) => std::str::from_utf8(&d[9..12]).unwrap().parse().unwrap(),
            Action::Memcached { request, .. } => {
                panic!("went to memcached: {}", String::from_utf8_lossy(&request))
            }
        }
    }

    #[test]
    fn rest_requests_become_meta_requests() {
        let table: &[(&str, &str, Option<&str>, &str)] = &[
            ("GET", "/v1/keys/a%20b", None, "ERR"),
            ("GET", "/v1/keys/k%2Fx", None, "mg k/x v f c\r\n"),
            ("HEAD", "/v1/keys/k", None, "mg k v f c\r\n"),
            ("DELETE", "/v1/keys/k", None, "md k\r\n"),
            ("POST", "/v1/keys/n/incr", Some("by=5"), "ma n D5 v\r\n"),
            ("POST", "/v1/keys/n/decr", None, "ma n MD D1 v\r\n"),
            ("POST", "/v1/flush", None, "flush_all\r\n"),
            (
                "POST",
                "/set",
                Some("key=foo&value=b%26r+x"),
                "ms foo 5 T0\r\nb&r x\r\n",
            ),
            ("GET", "/get", Some("key=foo"), "mg foo v\r\n"),
        ];
        for &(method, path, query, want) in table {
            let a = route(&request(method, path, query), &CX);
            if want == "ERR" {
                assert_eq!(status(a), 400, "{method} {path}");
            } else {
                assert_eq!(memcached_bytes(a), want, "{method} {path}");
            }
        }
    }

    #[test]
    fn a_put_carries_ttl_flags_and_its_condition() {
        let mut r = request("PUT", "/v1/keys/k", Some("ttl=60"));
        r.body = b"hello";
        r.flags = Some(b"7");
        r.if_match = Some(b"\"42\"");
        assert_eq!(
            memcached_bytes(route(&r, &CX)),
            "ms k 5 T60 F7 c C42\r\nhello\r\n"
        );
        r.query = None;
        r.cache_control = Some(b"public, max-age=9");
        r.if_match = Some(b"*");
        assert_eq!(
            memcached_bytes(route(&r, &CX)),
            "ms k 5 T9 F7 c MR\r\nhello\r\n"
        );
        r.cache_control = None;
        r.if_match = None;
        r.flags = None;
        assert_eq!(
            memcached_bytes(route(&r, &CX)),
            "ms k 5 T0 F0 c\r\nhello\r\n"
        );
        for (query, flags, if_match) in [
            (Some("ttl=-1"), None, None),
            (Some("ttl=2592001"), None, None),
            (None, Some(&b"4294967296"[..]), None),
            (None, None, Some(&b"W/\"1\""[..])),
        ] {
            r.query = query;
            r.flags = flags;
            r.if_match = if_match;
            assert_eq!(
                status(route(&r, &CX)),
                400,
                "{query:?} {flags:?} {if_match:?}"
            );
        }
    }

    #[test]
    fn bad_keys_methods_and_paths_are_refused() {
        let long = format!("/v1/keys/{}", "k".repeat(251));
        assert_eq!(status(route(&request("GET", &long, None), &CX)), 400);
        assert_eq!(
            status(route(&request("GET", "/v1/keys/%0A", None), &CX)),
            400
        );
        assert_eq!(
            status(route(&request("GET", "/v1/keys/%zz", None), &CX)),
            400
        );
        assert_eq!(status(route(&request("GET", "/v1/keys/", None), &CX)), 400);
        assert_eq!(
            status(route(&request("PATCH", "/v1/keys/k", None), &CX)),
            405
        );
        assert_eq!(
            status(route(&request("GET", "/v1/keys/k/incr", None), &CX)),
            405
        );
        assert_eq!(status(route(&request("GET", "/nope", None), &CX)), 404);
        assert_eq!(status(route(&request("GET", "/set", None), &CX)), 405);
        assert_eq!(status(route(&request("HEAD", "/metrics", None), &CX)), 405);
        assert_eq!(
            status(route(&request("POST", "/set", Some("key=a")), &CX)),
            400
        );
    }

    #[test]
    fn a_token_guards_everything_but_health() {
        let cx = Context {
            token: Some("s3cret"),
            ..CX
        };
        assert_eq!(status(route(&request("GET", "/ready", None), &cx)), 401);
        assert_eq!(status(route(&request("GET", "/health", None), &cx)), 200);
        let mut r = request("GET", "/ready", None);
        r.authorization = Some(b"Bearer s3cre");
        assert_eq!(status(route(&r, &cx)), 401);
        r.authorization = Some(b"Bearer s3cret");
        assert_eq!(status(route(&r, &cx)), 200);
        let unsettled = Context {
            settled: false,
            ..CX
        };
        assert_eq!(
            status(route(&request("GET", "/ready", None), &unsettled)),
            503
        );
        assert_eq!(
            status(route(&request("GET", "/health", None), &unsettled)),
            200
        );
        assert!(
            crate::auth::constant_time_eq(b"ab", b"ab")
                && !crate::auth::constant_time_eq(b"ab", b"ac")
        );
    }
}
