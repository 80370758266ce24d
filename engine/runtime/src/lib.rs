//! The per-thread io_uring completion loop's building blocks, shared by the
//! server's shards and the load generator.
//!
//! This is deliberately not an executor: each thread owns one [`Ring`], drives
//! it with one `io_uring_enter` per loop turn ([`Ring::submit_and_wait`]) and
//! dispatches completions by their [`Token`]. Receives are multishot and draw
//! from a provided [`BufRing`], so an idle connection holds no buffer; sends
//! are queued during the turn and submitted together; other threads wake this
//! one by posting a completion onto its ring ([`WakeTarget`]).
//!
//! ```text
//!   loop turn:  submit queued SQEs + wait  ──►  drain CQEs  ──►  dispatch by Token
//!                     ▲                                              │
//!                     └──── queue sends, re-arms, wake-ups ◄─────────┘
//! ```
//! Measured against glommio's sockets on this machine before the first line
//! was written (see docs/architecture.md): this shape of loop did ~2x the
//! requests per second at a tenth of the syscalls.

mod bufring;
mod ring;
pub mod socket;
mod token;
mod wake;

pub use bufring::BufRing;
pub use ring::{
    Completion, Ring, RingConfig, RingError, RingMode, memlock_limit, raise_memlock_limit,
};
pub use token::{Token, next_generation};
pub use wake::WakeTarget;

/// Re-exported so that users build entries with the same crate version.
pub use io_uring::{opcode, squeue, types};

#[cfg(test)]
mod tests;
