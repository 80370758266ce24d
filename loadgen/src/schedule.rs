//! The open-loop schedule: request k of a thread is *due* at
//! `start + phase + k / rate`, whether or not the server has answered the
//! ones before it. Latency is measured from that intended time, so a server
//! that stalls for 200 ms is charged for every request that should have gone
//! out during the stall, not just for the few that were in flight (the
//! "coordinated omission" a closed-loop client commits).

/// One thread's arithmetic schedule, in nanoseconds on the run's clock.
#[derive(Clone, Debug)]
pub struct Schedule {
    start_ns: u64,
    interval_ns: f64,
    next: u64,
}

impl Schedule {
    /// `rate` requests per second starting at `start_ns` (plus `phase` of an
    /// interval, in 0..1, so that threads interleave instead of bunching).
    pub fn new(start_ns: u64, rate: f64, phase: f64) -> Schedule {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        let interval_ns = 1e9 / rate;
        Schedule {
            start_ns: start_ns + (phase.clamp(0.0, 1.0) * interval_ns) as u64,
            interval_ns,
            next: 0,
        }
    }

    /// The intended send time of request `k`.
    pub fn due(&self, k: u64) -> u64 {
        self.start_ns + (k as f64 * self.interval_ns) as u64
    }

    /// The intended time of the next request not yet taken.
    pub fn next_due(&self) -> u64 {
        self.due(self.next)
    }

    /// Takes the next request if it is due at `now`, returning its intended time.
    #[inline]
    pub fn take(&mut self, now: u64) -> Option<u64> {
        let due = self.next_due();
        if due <= now {
            self.next += 1;
            Some(due)
        } else {
            None
        }
    }

    /// How many requests are due at `now` but not yet taken.
    pub fn backlog(&self, now: u64) -> u64 {
        if now < self.start_ns {
            return 0;
        }
        let due_count = ((now - self.start_ns) as f64 / self.interval_ns) as u64 + 1;
        due_count.saturating_sub(self.next)
    }

    pub fn taken(&self) -> u64 {
        self.next
    }
}

/// Latency of a request that was due at `intended` and answered at `done`.
#[inline]
pub fn latency(intended: u64, done: u64) -> u64 {
    done.saturating_sub(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_due_at_the_rate() {
        let mut s = Schedule::new(1_000, 1000.0, 0.0);
        assert_eq!(s.take(999), None);
        assert_eq!(s.take(1_000), Some(1_000));
        assert_eq!(s.take(1_000), None);
        assert_eq!(s.next_due(), 1_001_000);
        // 10.5 ms later, ten more are due and one is not.
        let now = 1_000 + 10_500_000;
        assert_eq!(s.backlog(now), 10);
        let mut taken = Vec::new();
        while let Some(t) = s.take(now) {
            taken.push(t);
        }
        assert_eq!(taken.len(), 10);
        assert_eq!(taken[9], 1_000 + 10_000_000);
        assert_eq!(s.backlog(now), 0);
    }

    #[test]
    fn phase_shifts_within_one_interval() {
        let s = Schedule::new(0, 100.0, 0.5);
        assert_eq!(s.due(0), 5_000_000);
        assert_eq!(s.due(1), 15_000_000);
    }

    /// A single connection at depth 1 against a server that answers in 10 µs
    /// but stalls from 100 ms to 300 ms. Measured from the intended time,
    /// every request due during the stall shows its wait; measured from the
    /// actual send time (what a closed-loop client sees) only one does.
    #[test]
    fn a_stall_shows_in_intended_time_latency() {
        const MS: u64 = 1_000_000;
        let service = 10_000;
        let mut s = Schedule::new(0, 1000.0, 0.0); // one request per ms
        let mut free_at = 0u64; // when the connection can send again
        let mut from_intended = Vec::new();
        let mut from_send = Vec::new();
        for _ in 0..500 {
            let intended = s.next_due();
            let now = intended.max(free_at);
            assert_eq!(s.take(now), Some(intended));
            let send = now;
            let start = if (100 * MS..300 * MS).contains(&send) {
                300 * MS
            } else {
                send
            };
            let done = start + service;
            free_at = done;
            from_intended.push(latency(intended, done));
            from_send.push(latency(send, done));
        }
        let slow = |v: &[u64]| v.iter().filter(|&&l| l >= 50 * MS).count();
        // Requests due in [100, 250] ms waited >= 50 ms: about 150 of 500.
        assert!(
            (145..=155).contains(&slow(&from_intended)),
            "{}",
            slow(&from_intended)
        );
        assert_eq!(slow(&from_send), 1);
        // So p99 from the intended time is well over 100 ms.
        let mut sorted = from_intended.clone();
        sorted.sort_unstable();
        assert!(sorted[sorted.len() * 99 / 100] > 150 * MS);
    }
}
