//! Server administration: `flush_all`, `version`, `verbosity`, `quit`,
//! `shutdown`, `cache_memlimit`, `slabs`, `lru_crawler`, `lru`, `watch`,
//! `misbehave`, `debugtime`. Syntax errors are decided here exactly as memcached
//! decides them; whether the server allows a command at all (e.g. `shutdown`
//! without `-A`) is the engine's answer.

use crate::cmd::{put_noreply, put_sp_i64, put_sp_u64};
use crate::error::{ClientError, ErrorMessage, ErrorReply, Invalid};
use crate::line::Tokens;
use crate::num::{strtod, strtol, strtoll, strtoul};
use crate::text::{Ctx, Parsed, Stop};
use std::io::Write as _;

/// `flush_all [delay] [noreply]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushAll {
    /// Seconds (or Unix time) until the flush; `None` or <= 0 means now.
    pub delay: Option<i32>,
    pub noreply: bool,
}

/// `verbosity <level> [noreply]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    pub level: u32,
    pub noreply: bool,
}

/// `shutdown [graceful]`: memcached answers `ERROR: shutdown not enabled` unless
/// started with `-A`, before it looks at the argument; so a bad argument is kept
/// here as `Invalid` for the engine to answer `CLIENT_ERROR invalid shutdown mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    Immediate,
    Graceful,
    Invalid,
}

/// `cache_memlimit <megabytes> [noreply]` (the engine answers the range errors:
/// see [`AdminReply::MemlimitTooSmall`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheMemlimit {
    pub megabytes: u32,
    pub noreply: bool,
}

/// `slabs reassign <src> <dst>` / `slabs automove <0|1|2>` / `slabs automove ratio <r>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slabs {
    Reassign { src: i32, dst: i32 },
    Automove { level: u32, noreply: bool },
    AutomoveRatio { ratio: f64, noreply: bool },
}

/// `lru_crawler …`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LruCrawler<'a> {
    /// `crawl <classid,classid|all>` (the list is checked by the engine).
    Crawl(&'a [u8]),
    /// `metadump <classid,…|all|hash>`.
    Metadump(&'a [u8]),
    Tocrawl(u32),
    /// Microseconds, at most 1,000,000.
    Sleep(u32),
    Enable,
    Disable,
}

/// `lru <tune|mode|temp_ttl> …`
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lru {
    pub op: LruOp,
    pub noreply: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LruOp {
    Tune {
        hot_pct: u32,
        warm_pct: u32,
        hot_factor: f64,
        warm_factor: f64,
    },
    /// `true` for `segmented`, `false` for `flat`.
    Segmented(bool),
    TempTtl(i32),
}

/// `watch [event…]`: a bit per event class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub events: u16,
    pub noreply: bool,
}

/// Event class names accepted by `watch`, in bit order.
pub const WATCH_EVENTS: [&str; 9] = [
    "rawcmds",
    "evictions",
    "fetchers",
    "mutations",
    "sysevents",
    "connevents",
    "proxyreqs",
    "proxyevents",
    "proxyuser",
];

/// `debugtime <p|r|seconds>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugTime {
    Pause,
    Resume,
    Advance(i64),
}

/// The admin requests, as this family parses them; each is a [`crate::Request`]
/// variant of the same name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Admin<'a> {
    FlushAll(FlushAll),
    Version,
    Verbosity(Verbosity),
    Quit,
    Shutdown(ShutdownMode),
    CacheMemlimit(CacheMemlimit),
    Slabs(Slabs),
    LruCrawler(LruCrawler<'a>),
    Lru(Lru),
    Watch(Watch),
    Misbehave,
    RefreshCerts,
    DebugTime(DebugTime),
    ClusterLink(&'a [u8]),
}

pub(crate) fn parse<'a>(t: &Tokens<'a>, cx: &Ctx<'a>) -> Parsed<'a, Admin<'a>> {
    let n = t.len();
    let error = |reply: bool| cx.invalid(ErrorReply::Error, reply);
    let noreply = t.noreply();
    let req = match t.get(0) {
        b"flush_all" => {
            if !(1..=3).contains(&n) {
                return error(true);
            }
            let delay = if n != if noreply { 2 } else { 1 } {
                match strtol(t.get(1)) {
                    Some(d) => Some(d),
                    None => return cx.invalid(ClientError::InvalidExptime, !noreply),
                }
            } else {
                None
            };
            Admin::FlushAll(FlushAll { delay, noreply })
        }
        b"version" => Admin::Version,
        // corecache's own: a node announcing a peer link (see `Request::ClusterLink`).
        b"cluster_link" if n == 2 => Admin::ClusterLink(t.get(1)),
        b"quit" => Admin::Quit,
        b"misbehave" => Admin::Misbehave,
        b"refresh_certs" => Admin::RefreshCerts,
        b"verbosity" => {
            if n != 2 && n != 3 {
                return error(true);
            }
            match strtoul(t.get(1)) {
                Some(level) => Admin::Verbosity(Verbosity { level, noreply }),
                None => return cx.invalid(ClientError::BadCommandLineFormat, !noreply),
            }
        }
        b"shutdown" => Admin::Shutdown(match (n, n > 1 && t.get(1) == b"graceful") {
            (1, _) => ShutdownMode::Immediate,
            (2, true) => ShutdownMode::Graceful,
            _ => ShutdownMode::Invalid,
        }),
        b"cache_memlimit" => {
            if n != 2 && n != 3 {
                return error(true);
            }
            match strtoul(t.get(1)) {
                Some(megabytes) => Admin::CacheMemlimit(CacheMemlimit { megabytes, noreply }),
                None => return error(!noreply),
            }
        }
        b"slabs" => {
            if n == 4 && t.get(1) == b"reassign" {
                match (strtol(t.get(2)), strtol(t.get(3))) {
                    (Some(src), Some(dst)) => Admin::Slabs(Slabs::Reassign { src, dst }),
                    _ => return cx.invalid(ClientError::BadCommandLineFormat, true),
                }
            } else if n >= 3 && t.get(1) == b"automove" {
                if t.get(2) == b"ratio" {
                    match (n >= 4).then(|| strtod(t.get(3))).flatten() {
                        Some(ratio) => Admin::Slabs(Slabs::AutomoveRatio { ratio, noreply }),
                        None => return error(!noreply),
                    }
                } else {
                    match strtoul(t.get(2)) {
                        Some(level @ 0..=2) => Admin::Slabs(Slabs::Automove { level, noreply }),
                        Some(_) => return error(!noreply),
                        None => {
                            return cx.invalid(ClientError::BadCommandLineFormat, !noreply);
                        }
                    }
                }
            } else {
                return error(true);
            }
        }
        b"lru_crawler" => {
            let sub = if n > 1 { t.get(1) } else { b"" };
            let op = match (n, sub) {
                (3, b"crawl") => LruCrawler::Crawl(t.get(2)),
                (3, b"metadump") => LruCrawler::Metadump(t.get(2)),
                (3, b"tocrawl") => match strtoul(t.get(2)) {
                    Some(v) => LruCrawler::Tocrawl(v),
                    None => return cx.invalid(ClientError::BadCommandLineFormat, true),
                },
                (3, b"sleep") => match strtoul(t.get(2)) {
                    Some(v) if v <= 1_000_000 => LruCrawler::Sleep(v),
                    Some(_) => return cx.invalid(ClientError::CrawlerSleepTooLong, true),
                    None => return cx.invalid(ClientError::BadCommandLineFormat, true),
                },
                (2, b"enable") => LruCrawler::Enable,
                (2, b"disable") => LruCrawler::Disable,
                _ => return error(true),
            };
            Admin::LruCrawler(op)
        }
        b"lru" => {
            if n < 2 {
                return error(true);
            }
            let op = match t.get(1) {
                b"tune" if n >= 6 => {
                    let (Some(hot_pct), Some(warm_pct), Some(hot_factor), Some(warm_factor)) = (
                        strtoul(t.get(2)),
                        strtoul(t.get(3)),
                        strtod(t.get(4)),
                        strtod(t.get(5)),
                    ) else {
                        return error(!noreply);
                    };
                    // memcached adds the two as 32-bit unsigned, wrapping.
                    if hot_pct.wrapping_add(warm_pct) > 80 {
                        return cx.invalid(ErrorMessage::LruPercentsTooHigh, !noreply);
                    }
                    // Written as memcached tests it, so that NaN passes as there.
                    if warm_factor <= 0.0 || hot_factor <= 0.0 {
                        return cx.invalid(ErrorMessage::LruFactorsNotPositive, !noreply);
                    }
                    LruOp::Tune {
                        hot_pct,
                        warm_pct,
                        hot_factor,
                        warm_factor,
                    }
                }
                b"mode" if n >= 3 => match t.get(2) {
                    b"flat" => LruOp::Segmented(false),
                    b"segmented" => LruOp::Segmented(true),
                    _ => return error(!noreply),
                },
                b"temp_ttl" if n >= 3 => match strtol(t.get(2)) {
                    Some(ttl) => LruOp::TempTtl(ttl),
                    None => return error(!noreply),
                },
                _ => return error(!noreply),
            };
            Admin::Lru(Lru { op, noreply })
        }
        b"watch" => {
            let mut events = 0u16;
            for i in 1..n {
                let name = t.get(i);
                match WATCH_EVENTS.iter().position(|e| e.as_bytes() == name) {
                    Some(bit) => events |= 1 << bit,
                    // `noreply` itself lands here, as in memcached.
                    None => return error(!noreply),
                }
            }
            if n == 1 {
                events = 1 << 2; // fetchers
            }
            Admin::Watch(Watch { events, noreply })
        }
        b"debugtime" => Admin::DebugTime(match (n > 1).then(|| t.get(1)) {
            Some(b"p") => DebugTime::Pause,
            Some(b"r") => DebugTime::Resume,
            Some(v) => match strtoll(v) {
                Some(d) => DebugTime::Advance(d),
                None => return error(true),
            },
            None => return error(true),
        }),
        // memcached hangs up without a word on an unknown command whose last
        // token starts with "HTTP/": an HTTP client on the wrong port.
        _ if t.get(n - 1).starts_with(b"HTTP/") => {
            let mut hang_up = Invalid::line(ErrorReply::Error, cx.next, false);
            hang_up.close = true;
            return Err(Stop::Invalid(hang_up));
        }
        _ => return error(true),
    };
    cx.done(req)
}

impl Admin<'_> {
    /// Append the request line (what [`crate::Request::encode`] writes for these).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Admin::FlushAll(f) => {
                out.extend_from_slice(b"flush_all");
                if let Some(d) = f.delay {
                    put_sp_i64(out, d.into());
                }
                put_noreply(out, f.noreply);
            }
            Admin::Version => out.extend_from_slice(b"version"),
            Admin::ClusterLink(name) => {
                out.extend_from_slice(b"cluster_link ");
                out.extend_from_slice(name);
            }
            Admin::Quit => out.extend_from_slice(b"quit"),
            Admin::Misbehave => out.extend_from_slice(b"misbehave"),
            Admin::RefreshCerts => out.extend_from_slice(b"refresh_certs"),
            Admin::Verbosity(v) => {
                out.extend_from_slice(b"verbosity");
                put_sp_u64(out, v.level.into());
                put_noreply(out, v.noreply);
            }
            Admin::Shutdown(m) => out.extend_from_slice(match m {
                ShutdownMode::Immediate => b"shutdown".as_slice(),
                ShutdownMode::Graceful => b"shutdown graceful",
                ShutdownMode::Invalid => b"shutdown invalid",
            }),
            Admin::CacheMemlimit(c) => {
                out.extend_from_slice(b"cache_memlimit");
                put_sp_u64(out, c.megabytes.into());
                put_noreply(out, c.noreply);
            }
            Admin::Slabs(s) => match s {
                Slabs::Reassign { src, dst } => {
                    out.extend_from_slice(b"slabs reassign");
                    put_sp_i64(out, src.into());
                    put_sp_i64(out, dst.into());
                }
                Slabs::Automove { level, noreply } => {
                    out.extend_from_slice(b"slabs automove");
                    put_sp_u64(out, level.into());
                    put_noreply(out, noreply);
                }
                Slabs::AutomoveRatio { ratio, noreply } => {
                    let _ = write!(out, "slabs automove ratio {ratio:?}");
                    put_noreply(out, noreply);
                }
            },
            Admin::LruCrawler(c) => {
                out.extend_from_slice(b"lru_crawler ");
                match c {
                    LruCrawler::Crawl(l) => {
                        out.extend_from_slice(b"crawl ");
                        out.extend_from_slice(l);
                    }
                    LruCrawler::Metadump(l) => {
                        out.extend_from_slice(b"metadump ");
                        out.extend_from_slice(l);
                    }
                    LruCrawler::Tocrawl(v) => {
                        out.extend_from_slice(b"tocrawl");
                        put_sp_u64(out, v.into());
                    }
                    LruCrawler::Sleep(v) => {
                        out.extend_from_slice(b"sleep");
                        put_sp_u64(out, v.into());
                    }
                    LruCrawler::Enable => out.extend_from_slice(b"enable"),
                    LruCrawler::Disable => out.extend_from_slice(b"disable"),
                }
            }
            Admin::Lru(l) => {
                match l.op {
                    LruOp::Tune {
                        hot_pct,
                        warm_pct,
                        hot_factor,
                        warm_factor,
                    } => {
                        let _ = write!(
                            out,
                            "lru tune {hot_pct} {warm_pct} {hot_factor:?} {warm_factor:?}"
                        );
                    }
                    LruOp::Segmented(s) => out.extend_from_slice(if s {
                        b"lru mode segmented".as_slice()
                    } else {
                        b"lru mode flat"
                    }),
                    LruOp::TempTtl(ttl) => {
                        out.extend_from_slice(b"lru temp_ttl");
                        put_sp_i64(out, ttl.into());
                    }
                }
                put_noreply(out, l.noreply);
            }
            Admin::Watch(w) => {
                out.extend_from_slice(b"watch");
                for (bit, name) in WATCH_EVENTS.iter().enumerate() {
                    if w.events & (1 << bit) != 0 {
                        out.push(b' ');
                        out.extend_from_slice(name.as_bytes());
                    }
                }
            }
            Admin::DebugTime(d) => match d {
                DebugTime::Pause => out.extend_from_slice(b"debugtime p"),
                DebugTime::Resume => out.extend_from_slice(b"debugtime r"),
                DebugTime::Advance(s) => {
                    out.extend_from_slice(b"debugtime");
                    put_sp_i64(out, s);
                }
            },
        }
        out.extend_from_slice(b"\r\n");
    }
}

macro_rules! admin_replies {
    ($($(#[$m:meta])* $v:ident => $s:literal,)*) => {
        /// Status lines of admin commands that are not errors in memcached's
        /// three classes (the text is fixed).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AdminReply { $($(#[$m])* $v,)* }
        impl AdminReply {
            /// The line without `\r\n`.
            pub fn line(&self) -> &'static str {
                match self { $(AdminReply::$v => $s,)* }
            }
            /// Append the line.
            pub fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(self.line().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    };
}

admin_replies! {
    ReassignBusy => "BUSY currently processing reassign request",
    ReassignBadClass => "BADCLASS invalid src or dst class id",
    ReassignNoSpare => "NOSPARE source class has no spare pages",
    ReassignSame => "SAME src and dst class are identical",
    CrawlerBusy => "BUSY currently processing crawler request",
    CrawlerBadClass => "BADCLASS invalid class id",
    CrawlerNotStarted => "NOTSTARTED no items to crawl",
    /// `cache_memlimit` below 8.
    MemlimitTooSmall => "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
    /// `cache_memlimit` above 1,000,000,000 (megabytes were meant).
    MemlimitNotBytes => "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes",
    MemlimitFailed => "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust",
    WatcherTooMany => "WATCHER_TOO_MANY log watcher limit reached",
    WatcherFailed => "WATCHER_FAILED failed to add log watcher",
}
