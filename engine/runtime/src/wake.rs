//! Cross-ring wake-ups. A shard that leaves messages for another shard posts
//! one completion onto the other's ring (IORING_OP_MSG_RING); the `pending`
//! flag makes that at most one wake-up in flight per target, however many
//! messages follow.
//!
//! Ordering argument: the sender publishes its messages, then swaps `pending`
//! to true and sends a wake-up only if it was false. The receiver, on the
//! wake-up, stores false and only then drains. A message published before a
//! swap that saw `true` is seen by the drain that follows the receiver's
//! store; a swap after that store sees `false` and sends a new wake-up.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The address of a ring that others can wake, shareable across threads.
#[derive(Clone, Debug)]
pub struct WakeTarget {
    ring_fd: RawFd,
    pending: Arc<AtomicBool>,
}

impl WakeTarget {
    pub fn new(ring_fd: RawFd) -> WakeTarget {
        WakeTarget {
            ring_fd,
            pending: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn ring_fd(&self) -> RawFd {
        self.ring_fd
    }

    /// Sender side, after publishing messages: whether a wake-up must be sent.
    pub fn claim(&self) -> bool {
        !self.pending.swap(true, Ordering::SeqCst)
    }

    /// Receiver side, on a wake-up and before draining.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_claim_sends_until_cleared() {
        let t = WakeTarget::new(-1);
        assert!(t.claim());
        assert!(!t.claim());
        t.clear();
        assert!(t.claim());
    }
}
