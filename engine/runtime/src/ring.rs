//! One io_uring per thread: set-up with the fastest flags the kernel accepts,
//! queueing that never fails for a full submission queue, and one
//! `io_uring_enter` per loop turn that both submits and waits.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::token::Token;

/// How a ring was set up; reported in logs and `stats settings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingMode {
    /// SINGLE_ISSUER | DEFER_TASKRUN: completions are produced only when this
    /// thread enters the kernel, with no interrupts of the running loop.
    DeferTaskrun,
    /// COOP_TASKRUN | TASKRUN_FLAG, for kernels without DEFER_TASKRUN.
    CoopTaskrun,
    /// No optional flags.
    Plain,
}

impl RingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RingMode::DeferTaskrun => "single_issuer+defer_taskrun",
            RingMode::CoopTaskrun => "coop_taskrun",
            RingMode::Plain => "plain",
        }
    }
}

/// Sizes of one ring.
#[derive(Clone, Copy, Debug)]
pub struct RingConfig {
    /// Submission queue entries (a power of two; the kernel rounds up).
    pub sq_entries: u32,
    /// Completion queue entries; larger than the SQ because multishot
    /// operations post many completions for one submission.
    pub cq_entries: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            sq_entries: 1024,
            cq_entries: 8192,
        }
    }
}

/// Errors creating a ring, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(
        "io_uring setup failed: the locked-memory limit (ulimit -l = {limit_kib} KiB) is too low for a ring of {sq} entries; raise it (ulimit -l, or LimitMEMLOCK= in the systemd unit) or lower the ring size"
    )]
    Memlock { limit_kib: u64, sq: u32 },
    #[error(
        "io_uring is not available ({0}); corecache needs Linux >= 6.0 with io_uring enabled (check /proc/sys/kernel/io_uring_disabled)"
    )]
    Unavailable(io::Error),
    #[error("io_uring setup failed: {0}")]
    Other(io::Error),
}

/// A completion, copied out of the completion queue so the queue can be
/// released before the completion is handled.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    pub fn token(&self) -> Token {
        Token::from_user_data(self.user_data)
    }

    /// The provided buffer the kernel filled, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// Whether a multishot operation stays armed after this completion.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// One thread's io_uring.
pub struct Ring {
    ring: IoUring,
    mode: RingMode,
}

impl Ring {
    /// Creates a ring with SINGLE_ISSUER | DEFER_TASKRUN, falling back to
    /// COOP_TASKRUN and then to no flags on kernels that refuse them. Must be
    /// called on the thread that will use the ring.
    pub fn new(config: RingConfig) -> Result<Ring, RingError> {
        raise_memlock_limit();
        let mut last = None;
        for mode in [
            RingMode::DeferTaskrun,
            RingMode::CoopTaskrun,
            RingMode::Plain,
        ] {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(config.cq_entries).setup_submit_all();
            match mode {
                RingMode::DeferTaskrun => builder.setup_single_issuer().setup_defer_taskrun(),
                RingMode::CoopTaskrun => builder.setup_coop_taskrun().setup_taskrun_flag(),
                RingMode::Plain => &mut builder,
            };
            match builder.build(config.sq_entries) {
                Ok(ring) => return Ok(Ring { ring, mode }),
                // EINVAL: a flag this kernel does not know; try the next set.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                Err(e) => return Err(classify_setup_error(e, config.sq_entries)),
            }
        }
        Err(classify_setup_error(
            last.expect("at least one attempt"),
            config.sq_entries,
        ))
    }

    pub fn mode(&self) -> RingMode {
        self.mode
    }

    /// The ring's file descriptor, the address other rings send wake-ups to.
    pub fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Queues `entry`, submitting what is queued first if the submission
    /// queue is full.
    ///
    /// # Safety
    /// Every buffer, address or structure `entry` points to must stay valid
    /// and unmoved until its completion has been seen (or, for entries with
    /// `SKIP_SUCCESS`, until the operation cannot run any more).
    pub unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees the entry's memory outlives the operation.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.submit()?;
        }
    }

    /// Submits what is queued without waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued and waits until at least `want` completions are
    /// ready or `timeout` passes. A timeout, a signal or a full completion
    /// queue is not an error: the caller drains what is there.
    pub fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        let result = match timeout {
            None => self.ring.submit_and_wait(want),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves every ready completion into `out` (appending).
    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        let cq = self.ring.completion();
        out.reserve(cq.len());
        for cqe in cq {
            out.push(Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }

    /// Queues a wake-up: a completion carrying `token` and `value` appears on
    /// the ring whose fd is `target`. Only a failure posts a completion here
    /// (with `failure` as its token).
    pub fn queue_msg_ring(
        &mut self,
        target: RawFd,
        token: Token,
        value: i32,
        failure: Token,
    ) -> io::Result<()> {
        let entry = opcode::MsgRingData::new(types::Fd(target), value, token.to_user_data(), None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(failure.to_user_data());
        // SAFETY: MSG_RING carries no pointers to our memory.
        unsafe { self.push(&entry) }
    }

    /// Queues a multishot receive on `fd` into the provided buffers of `group`;
    /// every completion carries `token`.
    ///
    /// # Safety
    /// The buffer ring registered as `group` must stay registered (and its
    /// memory mapped) until the receive has ended.
    pub unsafe fn queue_recv_multi(
        &mut self,
        fd: RawFd,
        group: u16,
        token: Token,
    ) -> io::Result<()> {
        let entry = opcode::RecvMulti::new(types::Fd(fd), group)
            .build()
            .user_data(token.to_user_data());
        // SAFETY: the receive writes only into the provided buffers, which the
        // caller keeps alive.
        unsafe { self.push(&entry) }
    }

    /// Queues a send of `buf` on `fd` with `flags` (e.g. MSG_NOSIGNAL).
    ///
    /// # Safety
    /// `buf` must stay valid and unmoved, and must not be written, until the
    /// send's completion has been seen.
    pub unsafe fn queue_send(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        flags: i32,
        token: Token,
    ) -> io::Result<()> {
        let entry = opcode::Send::new(types::Fd(fd), buf.as_ptr(), buf.len() as u32)
            .flags(flags)
            .build()
            .user_data(token.to_user_data());
        // SAFETY: the caller keeps `buf` alive and unchanged until completion.
        unsafe { self.push(&entry) }
    }

    /// Queues a cancellation of every operation on `fd`; completes with
    /// `token` (or not at all when `SKIP_SUCCESS` applies and it worked).
    pub fn queue_cancel_fd(&mut self, fd: RawFd, token: Token) -> io::Result<()> {
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token.to_user_data());
        // SAFETY: the cancel builder is copied into the entry; nothing is borrowed.
        unsafe { self.push(&entry) }
    }

    /// Queues a cancellation of the operation with `target`'s user data.
    pub fn queue_cancel(&mut self, target: Token, token: Token) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(target.to_user_data())
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(token.to_user_data());
        // SAFETY: nothing is borrowed by a cancel.
        unsafe { self.push(&entry) }
    }

    pub(crate) fn raw(&self) -> &IoUring {
        &self.ring
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

fn classify_setup_error(e: io::Error, sq: u32) -> RingError {
    match e.raw_os_error() {
        Some(libc::ENOMEM) => RingError::Memlock {
            limit_kib: memlock_limit().0 / 1024,
            sq,
        },
        Some(libc::ENOSYS | libc::EPERM) => RingError::Unavailable(e),
        _ => RingError::Other(e),
    }
}

/// The locked-memory limit (soft, hard) in bytes; `u64::MAX` means unlimited.
pub fn memlock_limit() -> (u64, u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } != 0 {
        return (0, 0);
    }
    (rl.rlim_cur, rl.rlim_max)
}

/// Raises the soft locked-memory limit to the hard limit, which any process
/// may do. Older kernels charge rings and buffer rings to it.
pub fn raise_memlock_limit() {
    let (soft, hard) = memlock_limit();
    if soft < hard {
        let rl = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct we pass.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rl) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nop_round_trip_carries_the_token() {
        let mut ring = Ring::new(RingConfig {
            sq_entries: 8,
            cq_entries: 16,
        })
        .unwrap();
        let token = Token::new(3, 42, 7);
        let nop = opcode::Nop::new().build().user_data(token.to_user_data());
        // SAFETY: a NOP references no memory.
        unsafe { ring.push(&nop).unwrap() };
        ring.submit_and_wait(1, None).unwrap();
        let mut out = Vec::new();
        ring.drain(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].token(), token);
        assert_eq!(out[0].result, 0);
    }

    #[test]
    fn push_submits_when_the_queue_is_full() {
        let mut ring = Ring::new(RingConfig {
            sq_entries: 4,
            cq_entries: 64,
        })
        .unwrap();
        for i in 0..20u32 {
            let nop = opcode::Nop::new()
                .build()
                .user_data(Token::new(1, i, 0).to_user_data());
            // SAFETY: a NOP references no memory.
            unsafe { ring.push(&nop).unwrap() };
        }
        let mut out = Vec::new();
        while out.len() < 20 {
            ring.submit_and_wait(1, Some(Duration::from_secs(5)))
                .unwrap();
            ring.drain(&mut out);
        }
        let mut slots: Vec<u32> = out.iter().map(|c| c.token().slot).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn wait_with_timeout_returns_without_completions() {
        let mut ring = Ring::new(RingConfig::default()).unwrap();
        let start = std::time::Instant::now();
        ring.submit_and_wait(1, Some(Duration::from_millis(20)))
            .unwrap();
        let mut out = Vec::new();
        ring.drain(&mut out);
        assert!(out.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(15));
    }

    #[test]
    fn msg_ring_wakes_a_ring_on_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut ring = Ring::new(RingConfig::default()).unwrap();
            tx.send(ring.fd()).unwrap();
            let mut out = Vec::new();
            while out.is_empty() {
                ring.submit_and_wait(1, Some(Duration::from_secs(10)))
                    .unwrap();
                ring.drain(&mut out);
            }
            done_rx.recv().unwrap();
            (out[0].token(), out[0].result)
        });
        let target = rx.recv().unwrap();
        let mut ring = Ring::new(RingConfig::default()).unwrap();
        ring.queue_msg_ring(target, Token::new(9, 5, 1), 77, Token::op(200))
            .unwrap();
        ring.submit().unwrap();
        let (token, value) = {
            done_tx.send(()).unwrap();
            waiter.join().unwrap()
        };
        assert_eq!(token, Token::new(9, 5, 1));
        assert_eq!(value, 77);
        // Success is skipped: the sender sees no completion of its own.
        ring.submit_and_wait(0, None).unwrap();
        let mut own = Vec::new();
        ring.drain(&mut own);
        assert!(own.is_empty(), "unexpected completions {own:?}");
    }
}
