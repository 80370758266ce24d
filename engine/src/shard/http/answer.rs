//! memcached replies → HTTP responses: the other half of the translation
//! layer (see `rest.rs` for the first), and the response writer.
//!
//! Values are answered as `application/octet-stream`: the `Content-Type` a
//! client sent with a PUT is not stored.

use std::io::Write;

use proto::client::{MetaCode, MetaReply, Reply};

use super::metrics;

/// What an HTTP request awaits from its memcached replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Get {
        head: bool,
    },
    /// A PUT; `conditional` when it had `If-Match`.
    Put {
        conditional: bool,
    },
    Delete,
    Arith,
    Flush,
    LegacySet {
        key: Vec<u8>,
        node: String,
    },
    LegacyGet {
        key: Vec<u8>,
        node: String,
    },
    /// `/stats`: five replies.
    Stats,
    /// `/metrics`: the `stats shards` reply.
    Metrics,
    /// Part of a several-request op could not be sent (a full channel): its
    /// first `n` replies are awaited and answered 503.
    Busy(usize),
}

impl Op {
    /// How many memcached replies this request is answered from.
    pub fn replies(&self) -> usize {
        match self {
            Op::Stats => 5,
            Op::Busy(n) => *n,
            _ => 1,
        }
    }

    fn head(&self) -> bool {
        matches!(self, Op::Get { head: true })
    }
}

/// The reason phrase of the statuses this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// One response: status line, `Content-Length` (of the body a GET would get,
/// also for HEAD), `extra` header lines (each ending in `\r\n`), the body
/// unless `head`.
pub fn write(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra: &[u8],
    body: &[u8],
    head: bool,
    close: bool,
) {
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    if !content_type.is_empty() {
        let _ = write!(out, "Content-Type: {content_type}\r\n");
    }
    if status != 204 {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(extra);
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head && status != 204 {
        out.extend_from_slice(body);
    }
}

pub fn json(status: u16, body: &str, head: bool, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    write(
        &mut out,
        status,
        "application/json",
        b"",
        body.as_bytes(),
        head,
        close,
    );
    out
}

/// `{"error": "<message>"}` with `status`.
pub fn error(status: u16, message: &str, head: bool, close: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 16);
    body.extend_from_slice(b"{\"error\": ");
    json_string(&mut body, message.as_bytes());
    body.push(b'}');
    let mut out = Vec::with_capacity(128 + body.len());
    write(
        &mut out,
        status,
        "application/json",
        b"",
        &body,
        head,
        close,
    );
    out
}

pub fn unauthorized(head: bool, close: bool) -> Vec<u8> {
    let body = b"{\"error\": \"missing or wrong bearer token\"}";
    let mut out = Vec::with_capacity(192);
    let extra = b"WWW-Authenticate: Bearer\r\n";
    write(&mut out, 401, "application/json", extra, body, head, close);
    out
}

/// The status page (`GET /`), embedded in the binary.
pub fn page(head: bool, close: bool) -> Vec<u8> {
    let body = include_str!("status.html").as_bytes();
    let mut out = Vec::with_capacity(256 + body.len());
    write(
        &mut out,
        200,
        "text/html; charset=utf-8",
        b"Cache-Control: no-cache\r\n",
        body,
        head,
        close,
    );
    out
}

/// A JSON string of `s`: escaped, bytes that are not UTF-8 replaced.
pub fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The HTTP response to `op` from its memcached `replies` (as many as
/// [`Op::replies`]).
pub fn answer(out: &mut Vec<u8>, op: &Op, replies: &[Reply<'_>], close: bool) {
    let head = op.head();
    let err = |out: &mut Vec<u8>, status: u16, message: &str| {
        out.extend_from_slice(&error(status, message, head, close))
    };
    if let Op::Busy(_) = op {
        return err(out, 503, "busy: try again");
    }
    // Replies any request may get.
    match &replies[0] {
        Reply::ClientError(why) => {
            let status = match op {
                Op::Arith => 409,
                Op::Flush => 403,
                _ => 400,
            };
            return err(out, status, &String::from_utf8_lossy(why));
        }
        Reply::ServerError(why) => {
            let status = if why.starts_with(b"out of memory") {
                507
            } else if why.starts_with(b"object too large") {
                413
            } else {
                500
            };
            return err(out, status, &String::from_utf8_lossy(why));
        }
        _ => {}
    }
    match (op, &replies[0]) {
        (Op::Get { head }, Reply::Meta(m)) if m.code == MetaCode::Va => {
            let mut extra = Vec::with_capacity(64);
            etag(&mut extra, m);
            let _ = write!(
                extra,
                "X-Cache-Flags: {}\r\n",
                m.flags.client_flags().unwrap_or(0)
            );
            let value = m.value.unwrap_or_default();
            write(
                out,
                200,
                "application/octet-stream",
                &extra,
                value,
                *head,
                close,
            );
        }
        (Op::Get { .. } | Op::Delete | Op::Arith, Reply::Meta(m))
            if is(m, MetaCode::En) || is(m, MetaCode::Nf) =>
        {
            err(out, 404, "not found")
        }
        (Op::Put { .. } | Op::Delete, Reply::Meta(m)) if m.code == MetaCode::Hd => {
            let mut extra = Vec::with_capacity(32);
            etag(&mut extra, m);
            write(out, 204, "", &extra, b"", false, close);
        }
        (Op::Put { .. } | Op::Delete, Reply::Meta(m)) if is(m, MetaCode::Ex) => {
            err(out, 412, "the item's ETag does not match If-Match")
        }
        (Op::Put { conditional: true }, Reply::Meta(m))
            if is(m, MetaCode::Nf) || is(m, MetaCode::Ns) =>
        {
            err(out, 412, "no item to match If-Match")
        }
        (Op::Put { .. }, Reply::Meta(m)) if is(m, MetaCode::Ns) => err(out, 507, "not stored"),
        (Op::Arith, Reply::Meta(m)) if m.code == MetaCode::Va => {
            let value = m.value.unwrap_or_default();
            write(out, 200, "text/plain", b"", value, false, close);
        }
        (Op::Flush, Reply::Status(proto::reply::Status::Ok)) => {
            write(out, 204, "", b"", b"", false, close)
        }
        (Op::LegacySet { key, node }, Reply::Meta(m)) if m.code == MetaCode::Hd => {
            let mut body = b"{\"message\": \"Value set successfully\", \"key\": ".to_vec();
            json_string(&mut body, key);
            body.extend_from_slice(b", \"node\": ");
            json_string(&mut body, node.as_bytes());
            body.push(b'}');
            write(out, 200, "application/json", b"", &body, false, close);
        }
        (Op::LegacyGet { key, node }, Reply::Meta(m)) => {
            let (status, mut body) = if m.code == MetaCode::Va {
                (200, b"{\"key\": ".to_vec())
            } else {
                (404, b"{\"error\": \"Key not found\", \"key\": ".to_vec())
            };
            json_string(&mut body, key);
            if let Some(value) = m.value {
                body.extend_from_slice(b", \"value\": ");
                json_string(&mut body, value);
            }
            body.extend_from_slice(b", \"node\": ");
            json_string(&mut body, node.as_bytes());
            body.push(b'}');
            write(out, status, "application/json", b"", &body, false, close);
        }
        (Op::Stats, _) => match metrics::stats_json(replies) {
            Some(body) => write(
                out,
                200,
                "application/json",
                b"Cache-Control: no-cache\r\n",
                &body,
                false,
                close,
            ),
            None => err(out, 502, "unexpected stats reply"),
        },
        (Op::Metrics, Reply::Stats(lines)) => match metrics::prometheus(lines.clone()) {
            Some(body) => write(out, 200, metrics::CONTENT_TYPE, b"", &body, false, close),
            None => err(out, 500, "the metrics could not be encoded"),
        },
        (op, reply) => {
            tracing::debug!(
                ?op,
                ?reply,
                "unexpected memcached reply for an HTTP request"
            );
            err(out, 502, "unexpected reply from the cache")
        }
    }
}

fn is(m: &MetaReply<'_>, code: MetaCode) -> bool {
    m.code == code
}

fn etag(extra: &mut Vec<u8>, m: &MetaReply<'_>) {
    if let Some(cas) = m.flags.cas() {
        let _ = write!(extra, "ETag: \"{cas}\"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::client::{ReplyParse, parse_reply};

    fn answered(op: Op, memcached: &[u8]) -> String {
        let mut replies = Vec::new();
        let mut rest = memcached;
        while !rest.is_empty() {
            match parse_reply(rest) {
                ReplyParse::Complete { reply, consumed } => {
                    replies.push(reply);
                    rest = &rest[consumed..];
                }
                other => panic!("{other:?}"),
            }
        }
        let mut out = Vec::new();
        answer(&mut out, &op, &replies, false);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn replies_become_responses() {
        let node = "node-1".to_string();
        let table: Vec<(Op, &[u8], &str)> = vec![
            (
                Op::Get { head: false },
                b"VA 3 f5 c9\r\nabc\r\n",
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nETag: \"9\"\r\nX-Cache-Flags: 5\r\n\r\nabc",
            ),
            (
                Op::Get { head: true },
                b"VA 3 f5 c9\r\nabc\r\n",
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nETag: \"9\"\r\nX-Cache-Flags: 5\r\n\r\n",
            ),
            (
                Op::Get { head: false },
                b"EN\r\n",
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"error\": \"not found\"}",
            ),
            (
                Op::Put { conditional: false },
                b"HD c12\r\n",
                "HTTP/1.1 204 No Content\r\nETag: \"12\"\r\n\r\n",
            ),
            (Op::Put { conditional: true }, b"EX\r\n", "HTTP/1.1 412 "),
            (Op::Put { conditional: true }, b"NF\r\n", "HTTP/1.1 412 "),
            (Op::Put { conditional: true }, b"NS\r\n", "HTTP/1.1 412 "),
            (
                Op::Put { conditional: false },
                b"SERVER_ERROR object too large for cache\r\n",
                "HTTP/1.1 413 ",
            ),
            (Op::Delete, b"HD\r\n", "HTTP/1.1 204 No Content\r\n\r\n"),
            (Op::Delete, b"NF\r\n", "HTTP/1.1 404 "),
            (
                Op::Arith,
                b"VA 2\r\n42\r\n",
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n42",
            ),
            (
                Op::Arith,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
                "HTTP/1.1 409 ",
            ),
            (Op::Flush, b"OK\r\n", "HTTP/1.1 204 No Content\r\n\r\n"),
            (
                Op::LegacySet {
                    key: b"foo".to_vec(),
                    node: node.clone(),
                },
                b"HD\r\n",
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 69\r\n\r\n{\"message\": \"Value set successfully\", \"key\": \"foo\", \"node\": \"node-1\"}",
            ),
            (
                Op::LegacyGet {
                    key: b"foo".to_vec(),
                    node: node.clone(),
                },
                b"VA 3\r\nbar\r\n",
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 48\r\n\r\n{\"key\": \"foo\", \"value\": \"bar\", \"node\": \"node-1\"}",
            ),
            (
                Op::LegacyGet {
                    key: b"foo".to_vec(),
                    node,
                },
                b"EN\r\n",
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 58\r\n\r\n{\"error\": \"Key not found\", \"key\": \"foo\", \"node\": \"node-1\"}",
            ),
        ];
        for (op, memcached, want) in table {
            let got = answered(op.clone(), memcached);
            assert!(got.starts_with(want), "{op:?}: {got:?}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        json_string(&mut out, b"a\"b\\c\n\x01\xff");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001\u{fffd}\""
        );
    }
}
