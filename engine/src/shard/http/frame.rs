//! Finding one HTTP/1.1 request in a connection's bytes: the request line and
//! headers with `httparse`, then the body by `Content-Length`. Pure: bytes in,
//! a framed request (borrowing the bytes), "incomplete" or a refusal that
//! already knows its status code.
//!
//! Bounds: the request line and headers fit in `max_header` bytes (431 past
//! it, and for more than [`MAX_HEADERS`] headers); a body is at most
//! `max_body` bytes (413). Chunked request bodies are refused with 411
//! (Length Required): every endpoint takes a small body whose length the
//! client knows.

/// Headers one request may carry.
pub const MAX_HEADERS: usize = 32;

/// The bounds of one request.
#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    pub max_header: usize,
    pub max_body: usize,
}

/// One request, borrowing the connection's bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, still percent-encoded, without the query.
    pub path: &'a str,
    /// The query string after `?`, if any.
    pub query: Option<&'a str>,
    pub authorization: Option<&'a [u8]>,
    pub if_match: Option<&'a [u8]>,
    pub cache_control: Option<&'a [u8]>,
    pub flags: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// The client asked to close after this request (or spoke HTTP/1.0
    /// without keep-alive).
    pub close: bool,
}

/// A request the server refuses before routing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Complete {
        request: Request<'a>,
        consumed: usize,
    },
    /// More bytes needed: `need` is the whole request's length when it is
    /// known (the headers are in, the body is arriving), else 0.
    Incomplete { need: usize },
    /// Answer with this status and close the connection.
    Refused(Refusal),
}

const fn refuse(status: u16, reason: &'static str) -> Frame<'static> {
    Frame::Refused(Refusal { status, reason })
}

/// Frames the request at the start of `buf`.
pub fn frame<'a>(buf: &'a [u8], limits: FrameLimits) -> Frame<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > limits.max_header => {
            return refuse(431, "request header fields too large");
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_header => {
            return refuse(431, "request header fields too large");
        }
        Ok(httparse::Status::Partial) => return Frame::Incomplete { need: 0 },
        Err(httparse::Error::TooManyHeaders) => {
            return refuse(431, "too many request header fields");
        }
        Err(_) => return refuse(400, "malformed request"),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return refuse(400, "malformed request");
    };
    let mut request = Request {
        method,
        path: target,
        query: None,
        authorization: None,
        if_match: None,
        cache_control: None,
        flags: None,
        body: &[],
        close: version == 0,
    };
    if let Some((path, query)) = target.split_once('?') {
        request.path = path;
        request.query = Some(query);
    }
    if !request.path.starts_with('/') {
        return refuse(400, "the request target must be an absolute path");
    }
    let mut length: Option<usize> = None;
    for h in req.headers.iter() {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = decimal(value) else {
                return refuse(400, "bad Content-Length");
            };
            if length.is_some_and(|l| l != n) {
                return refuse(400, "conflicting Content-Length headers");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return refuse(
                411,
                "chunked request bodies are not accepted: send Content-Length",
            );
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(value, b"close") {
                request.close = true;
            } else if has_token(value, b"keep-alive") {
                request.close = false;
            }
        } else if name.eq_ignore_ascii_case("authorization") {
            request.authorization = Some(value);
        } else if name.eq_ignore_ascii_case("if-match") {
            request.if_match = Some(value);
        } else if name.eq_ignore_ascii_case("cache-control") {
            request.cache_control = Some(value);
        } else if name.eq_ignore_ascii_case("x-cache-flags") {
            request.flags = Some(value);
        }
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body {
        return refuse(413, "request body too large");
    }
    let total = head_len + length;
    if buf.len() < total {
        return Frame::Incomplete { need: total };
    }
    request.body = &buf[head_len..total];
    Frame::Complete {
        request,
        consumed: total,
    }
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// A non-negative decimal of at most 18 digits (no sign, no spaces).
pub fn decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits {
        max_header: 256,
        max_body: 16,
    };

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match frame(buf, LIMITS) {
            Frame::Complete { request, consumed } => (request, consumed),
            other => panic!("not complete: {other:?}"),
        }
    }

    fn status(buf: &[u8]) -> u16 {
        match frame(buf, LIMITS) {
            Frame::Refused(r) => r.status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_request_with_a_body_is_framed_by_content_length() {
        let buf =
            b"PUT /v1/keys/a?ttl=5 HTTP/1.1\r\nContent-Length: 3\r\nIf-Match: \"7\"\r\n\r\nabcGET";
        let (r, n) = complete(buf);
        assert_eq!(n, buf.len() - 3, "the next request is not consumed");
        assert_eq!(
            (r.method, r.path, r.query),
            ("PUT", "/v1/keys/a", Some("ttl=5"))
        );
        assert_eq!(r.body, b"abc");
        assert_eq!(r.if_match, Some(&b"\"7\""[..]));
        assert!(!r.close);
    }

    #[test]
    fn incomplete_headers_and_bodies_say_what_is_known() {
        assert_eq!(
            frame(b"GET / HTTP/1.1\r\nHost: x\r\n", LIMITS),
            Frame::Incomplete { need: 0 }
        );
        let head = b"PUT /k HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
        assert_eq!(
            frame(head, LIMITS),
            Frame::Incomplete {
                need: head.len() + 3
            }
        );
    }

    #[test]
    fn bounds_and_malformed_requests_are_refused_with_their_status() {
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(300));
        assert_eq!(
            status(long.as_bytes()),
            431,
            "headers over the bound, even unfinished"
        );
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("h{i}: v\r\n"));
        }
        let big = FrameLimits {
            max_header: 1 << 16,
            ..LIMITS
        };
        assert!(matches!(
            frame(many.as_bytes(), big),
            Frame::Refused(Refusal { status: 431, .. })
        ));
        assert_eq!(
            status(b"PUT /k HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"PUT /k HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"PUT /k HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"PUT /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(status(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://x/ HTTP/1.1\r\n\r\n"), 400);
    }

    #[test]
    fn connection_close_and_http_1_0_close_after_the_reply() {
        assert!(
            complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .0
                .close
        );
        assert!(complete(b"GET / HTTP/1.0\r\n\r\n").0.close);
        assert!(
            !complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .close
        );
    }
}
