//! The load generator's own CPU use, so that a result can say whether the
//! generator, not the server, was the bottleneck.

use std::time::Duration;

/// CPU time (user + system) the calling thread has used.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_as_cpu_time_and_sleep_does_not() {
        let t0 = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        let t1 = thread_cpu_time();
        assert!(
            t1 - t0 < Duration::from_millis(15),
            "sleep cost {:?}",
            t1 - t0
        );
        // Spin until 20 ms of CPU are charged; on a shared machine that may
        // take longer than 20 ms of wall time, but not 5 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut x = 0u64;
        while thread_cpu_time() - t1 < Duration::from_millis(20) {
            x = x.wrapping_add(std::hint::black_box(1));
            assert!(
                std::time::Instant::now() < deadline,
                "CPU time never advanced ({x})"
            );
        }
    }
}
