//! What the null server answers: every get hits with the same value, every
//! store succeeds, nothing is stored. Requests are parsed by `proto::parse`
//! and answered with `proto`'s reply encoders, so the bytes are memcached's.

use proto::Request;
use proto::meta::{MdOutcome, MgItem, MgOutcome, MsOutcome};
use proto::reply::{self, ErrorReply, Status};

use super::stats::{Stats, ThreadStats};

pub enum After {
    Continue,
    Close,
}

pub const VERSION: &str = "1.6.0-corecache-null";

/// Appends the reply to `request` to `out`, counting it in `mine`.
pub fn answer(
    request: Request,
    value: &[u8],
    out: &mut Vec<u8>,
    mine: &ThreadStats,
    all: &Stats,
) -> After {
    let quiet = request.noreply();
    match request {
        Request::Get(g) => {
            let cas = g.kind.with_cas().then_some(1);
            let mut n = 0;
            for key in g.keys {
                n += 1;
                reply::encode_value(out, key, 0, value, cas);
            }
            reply::encode_end(out);
            ThreadStats::add(&mine.cmd_get, n);
        }
        Request::Store(_) => {
            ThreadStats::add(&mine.cmd_set, 1);
            if !quiet {
                Status::Stored.encode(out);
            }
        }
        Request::MetaGet(m) => {
            ThreadStats::add(&mine.cmd_get, 1);
            let item = MgItem {
                key: m.key.raw(),
                key_binary: m.key.is_base64(),
                value,
                ..MgItem::default()
            };
            reply::encode_mg(out, &m, &MgOutcome::Hit(item));
        }
        Request::MetaSet(m) => {
            ThreadStats::add(&mine.cmd_set, 1);
            reply::encode_ms(out, &m, &MsOutcome::Stored { cas: 1 });
        }
        Request::MetaDelete(m) => reply::encode_md(out, &m, MdOutcome::Deleted),
        Request::MetaNoop => reply::encode_mn(out),
        Request::Delete(_) if !quiet => Status::Deleted.encode(out),
        Request::Touch(_) if !quiet => Status::Touched.encode(out),
        Request::Arith(_) if !quiet => reply::encode_number(out, 0),
        Request::FlushAll(_) | Request::Verbosity(_) if !quiet => Status::Ok.encode(out),
        Request::Stats(_) => all.write(out),
        Request::Version => reply::encode_version(out, VERSION),
        Request::Quit => return After::Close,
        // Silenced replies, and what a null server has no answer for.
        Request::Delete(_)
        | Request::Touch(_)
        | Request::Arith(_)
        | Request::FlushAll(_)
        | Request::Verbosity(_) => {}
        _ => ErrorReply::Error.encode(out),
    }
    After::Continue
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Limits, Parse, parse};

    fn reply(req: &[u8]) -> Vec<u8> {
        let all = Stats::new(1);
        let mut out = Vec::new();
        let Parse::Complete { request, .. } = parse(req, &Limits::default()) else {
            panic!("{req:?}")
        };
        answer(request, b"abc", &mut out, &all.threads[0], &all);
        out
    }

    #[test]
    fn table_of_answers() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"get a b\r\n",
                b"VALUE a 0 3\r\nabc\r\nVALUE b 0 3\r\nabc\r\nEND\r\n",
            ),
            (b"gets a\r\n", b"VALUE a 0 3 1\r\nabc\r\nEND\r\n"),
            (b"set k 0 0 1\r\nx\r\n", b"STORED\r\n"),
            (b"set k 0 0 1 noreply\r\nx\r\n", b""),
            (b"mg k v k\r\n", b"VA 3 kk\r\nabc\r\n"),
            (b"mg k O9 v\r\n", b"VA 3 O9\r\nabc\r\n"),
            (b"mg k\r\n", b"HD\r\n"),
            (b"ms k 1\r\nx\r\n", b"HD\r\n"),
            (b"ms k 1 q\r\nx\r\n", b""),
            (b"mn\r\n", b"MN\r\n"),
            (b"version\r\n", b"VERSION 1.6.0-corecache-null\r\n"),
        ];
        for (req, want) in cases {
            assert_eq!(reply(req), *want, "{:?}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn stats_count_keys_and_sets() {
        let all = Stats::new(2);
        let mut out = Vec::new();
        for req in [
            &b"get a b c\r\n"[..],
            b"set k 0 0 1\r\nx\r\n",
            b"mg k v\r\n",
        ] {
            let Parse::Complete { request, .. } = parse(req, &Limits::default()) else {
                panic!()
            };
            answer(request, b"v", &mut out, &all.threads[1], &all);
        }
        out.clear();
        all.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("STAT cmd_get 4\r\n"), "{text}");
        assert!(text.contains("STAT cmd_set 1\r\n"), "{text}");
        assert!(text.ends_with("END\r\n"));
    }
}
