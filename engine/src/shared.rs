//! What every shard thread sees of the process: the configuration, the
//! addresses bound, and the few atomics that are the only shared mutable state
//! (the connection count that enforces `-c` across shards, the stop flag and
//! its drain count, the verbosity the `verbosity` command sets), and the
//! settings SIGHUP replaces ([`Reloadable`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::auth::Auth;
use crate::config::{ClusterPlan, Config};
use crate::membership::view::Published;

/// Read-mostly state every shard sees.
pub struct Shared {
    pub config: Config,
    pub shards: usize,
    pub started: Instant,
    pub started_unix: u64,
    pub connections: AtomicUsize,
    pub stopping: AtomicBool,
    /// Shards that have closed all their connections while stopping; a shard
    /// keeps answering its peers until every shard has drained.
    pub drained: AtomicUsize,
    pub verbosity: AtomicU8,
    pub tcp_addrs: Vec<SocketAddr>,
    pub udp_addrs: Vec<SocketAddr>,
    /// The HTTP port's address, when it is on.
    pub http_addr: Option<SocketAddr>,
    /// The cluster this node is part of, `None` for a single node.
    pub cluster: Option<ClusterPlan>,
    /// Every member's address (resolved at start), by ring index.
    pub cluster_addrs: Vec<SocketAddr>,
    /// The live members and the ring over them, published by the gossip
    /// thread (`None` for one node; never changes with static membership).
    pub membership: Option<Published>,
    /// -Y: the ascii authentication file.
    pub ascii_auth: Option<Auth>,
    /// -S: the SASL PLAIN password file.
    pub sasl_auth: Option<Auth>,
    /// The unix socket served instead of TCP and UDP (-s).
    pub unix_path: Option<std::path::PathBuf>,
    /// -Z: the certificates TLS listeners hand out.
    pub tls: Option<Arc<crate::tls::Certs>>,
    /// Where shards send the carved regions of their THP arenas (crate::collapse).
    pub collapse: Option<std::sync::mpsc::Sender<store::HugeRegion>>,
    /// The HTTP port's bearer token (`http.token` or `http.token_file`);
    /// SIGHUP replaces it.
    pub http_token: Reloadable<Option<String>>,
    /// Log watchers (`watch`): the mask shards check per event, and the
    /// logger thread's intake (crate::logger).
    pub logger: crate::logger::Logger,
    /// `debugtime`'s shift of every shard's clock, with `-o debug_time`
    /// (`server.debug_time`) only.
    pub debug_clock: Option<DebugClock>,
}

impl Shared {
    /// Whether a new connection must authenticate before anything else.
    pub fn auth_required(&self) -> bool {
        self.ascii_auth.is_some() || self.sasl_auth.is_some()
    }
}

/// A value the main thread replaces (on SIGHUP) and the shards read without
/// taking a lock on their request path:
///
/// ```text
///   main thread ── replace(v) ──► Reloadable { version: AtomicU64, value: Mutex<Arc<T>> }
///                                      │ shard, when it needs the value: version changed?
///                                      └──► yes (rare): lock, clone the Arc ─► its Current<T>
/// ```
#[derive(Debug)]
pub struct Reloadable<T> {
    version: AtomicU64,
    value: Mutex<Arc<T>>,
}

impl<T> Reloadable<T> {
    pub fn new(value: T) -> Reloadable<T> {
        Reloadable {
            version: AtomicU64::new(1),
            value: Mutex::new(Arc::new(value)),
        }
    }

    pub fn load(&self) -> Arc<T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, value: T) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// A shard's own copy, current as of now.
    pub fn current(&self) -> Current<T> {
        let version = self.version.load(Ordering::Acquire);
        Current {
            value: self.load(),
            version,
        }
    }
}

/// A shard's copy of a [`Reloadable`] value and the version it came from.
#[derive(Debug)]
pub struct Current<T> {
    value: Arc<T>,
    version: u64,
}

impl<T> Current<T> {
    /// The value, after taking the new one if it was replaced: one atomic
    /// load when it was not.
    #[inline]
    pub fn refresh(&mut self, from: &Reloadable<T>) -> &T {
        let version = from.version.load(Ordering::Acquire);
        if version != self.version {
            // Version first, then the value: a replace between the two is
            // seen again on the next refresh, never lost.
            self.version = version;
            self.value = from.load();
        }
        &self.value
    }
}

/// memcached's `debugtime` (a command of its debug builds): a shift of the
/// store clock every shard reads once per loop turn (two relaxed loads), and a
/// pause that holds it still.
///
/// As memcached: `debugtime N` moves the clock by N seconds (negative too),
/// `debugtime p` stops it where it is, `debugtime r` lets it run again from
/// the real time plus the shifts so far (time paused is not made up for).
#[derive(Debug)]
pub struct DebugClock {
    /// Seconds added to the real time since start.
    shift: AtomicI64,
    /// The real seconds since start at which the clock was paused, or
    /// `RUNNING`.
    paused_at: AtomicU64,
}

const RUNNING: u64 = u64::MAX;

impl Default for DebugClock {
    fn default() -> Self {
        DebugClock {
            shift: AtomicI64::new(0),
            paused_at: AtomicU64::new(RUNNING),
        }
    }
}

impl DebugClock {
    /// The clock's seconds since start, given the real ones (never below 0).
    #[inline]
    pub fn seconds(&self, real: u64) -> u64 {
        let paused = self.paused_at.load(Ordering::Relaxed);
        let base = if paused == RUNNING { real } else { paused };
        (base as i64)
            .saturating_add(self.shift.load(Ordering::Relaxed))
            .max(0) as u64
    }

    /// `debugtime N`.
    pub fn shift_by(&self, seconds: i64) {
        self.shift.fetch_add(seconds, Ordering::Relaxed);
    }

    /// `debugtime p`, at `real` seconds since start; a paused clock stays paused.
    pub fn pause(&self, real: u64) {
        let _ =
            self.paused_at
                .compare_exchange(RUNNING, real, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// `debugtime r`.
    pub fn resume(&self) {
        self.paused_at.store(RUNNING, Ordering::Relaxed);
    }
}

/// Asks the process to stop as if it had received SIGTERM (the `shutdown`
/// command): the main thread's signal wait sees it and drains every shard.
pub fn request_stop() {
    // SAFETY: kill with our own pid and a standard signal.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_current_copy_follows_each_replace() {
        let shared = Reloadable::new(Some("a".to_string()));
        let mut mine = shared.current();
        assert_eq!(mine.refresh(&shared).as_deref(), Some("a"));
        shared.replace(None);
        assert_eq!(mine.refresh(&shared).as_deref(), None);
        shared.replace(Some("b".into()));
        shared.replace(Some("c".into()));
        assert_eq!(mine.refresh(&shared).as_deref(), Some("c"));
        assert_eq!(mine.refresh(&shared).as_deref(), Some("c"));
    }

    #[test]
    fn the_debug_clock_shifts_pauses_and_resumes_as_memcached() {
        let d = DebugClock::default();
        assert_eq!(d.seconds(10), 10);
        d.shift_by(3);
        d.shift_by(4);
        assert_eq!(d.seconds(10), 17, "shifts add up");
        d.pause(11);
        assert_eq!(d.seconds(15), 18, "paused at 11 + 7");
        d.pause(14);
        assert_eq!(d.seconds(15), 18, "a second pause moves nothing");
        d.shift_by(2);
        assert_eq!(d.seconds(20), 20, "a shift moves a paused clock too");
        d.resume();
        assert_eq!(d.seconds(30), 39, "the real time again, plus the shifts");
        d.shift_by(-100);
        assert_eq!(d.seconds(30), 0, "never before the start");
    }
}
