//! The null server's counters: one cache-line-padded block per thread,
//! written only by its thread (relaxed atomics, no contention) and summed
//! when a client asks for `stats`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Default)]
#[repr(align(128))]
pub struct ThreadStats {
    pub cmd_get: AtomicU64,
    pub cmd_set: AtomicU64,
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
}

impl ThreadStats {
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

pub struct Stats {
    pub threads: Vec<ThreadStats>,
    pub started: Instant,
}

impl Stats {
    pub fn new(threads: usize) -> Stats {
        Stats {
            threads: (0..threads).map(|_| ThreadStats::default()).collect(),
            started: Instant::now(),
        }
    }

    fn sum(&self, f: impl Fn(&ThreadStats) -> &AtomicU64) -> u64 {
        self.threads
            .iter()
            .map(|t| f(t).load(Ordering::Relaxed))
            .sum()
    }

    /// memcached's field names, so tools that read memcached's stats work.
    pub fn write(&self, out: &mut Vec<u8>) {
        let get = self.sum(|t| &t.cmd_get);
        let fields: [(&str, u64); 9] = [
            ("pid", std::process::id() as u64),
            ("uptime", self.started.elapsed().as_secs()),
            ("cmd_get", get),
            ("cmd_set", self.sum(|t| &t.cmd_set)),
            ("get_hits", get),
            ("get_misses", 0),
            ("curr_connections", self.sum(|t| &t.curr_connections)),
            ("total_connections", self.sum(|t| &t.total_connections)),
            ("threads", self.threads.len() as u64),
        ];
        for (name, v) in fields {
            out.extend_from_slice(b"STAT ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"STAT version 1.6.0-corecache-null\r\nEND\r\n");
    }
}
