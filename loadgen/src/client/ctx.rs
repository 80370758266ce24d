//! What a client thread's connections share: the counters and histograms
//! they record into, and how a finished request is accounted.

use crate::metrics::{Counters, OpHists};
use crate::schedule::latency;
use crate::verify;
use crate::wire::Protocol;
use crate::workload::OpKind;

/// Which part of the run a request was *sent* in; it is accounted there,
/// whenever its reply arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Prefill = 0,
    Warmup = 1,
    Measured = 2,
}

/// One request in flight.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub kind: OpKind,
    pub width: u16,
    /// Intended send time (open loop) or actual issue time (closed loop), ns.
    pub intended: u64,
    pub phase: Phase,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Get { hits: u32 },
    Stored,
    NotStored,
    Error,
    ClientError,
    ServerError,
}

/// Why requests were lost without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    Timeout,
    Connection,
    Unanswered,
}

pub struct Ctx {
    pub protocol: Protocol,
    pub verify: bool,
    /// Indexed by [`Phase`].
    pub counters: [Counters; 3],
    /// Warm-up and measured requests (prefill is not timed).
    pub warmup: OpHists,
    pub measured: OpHists,
    /// Replies of any phase since the last report, for the progress line.
    pub replies_any: u64,
}

impl Ctx {
    pub fn new(protocol: Protocol, verify: bool) -> Ctx {
        Ctx {
            protocol,
            verify,
            counters: Default::default(),
            warmup: OpHists::default(),
            measured: OpHists::default(),
            replies_any: 0,
        }
    }

    pub fn sent(&mut self, p: &Pending) {
        let c = &mut self.counters[p.phase as usize];
        c.requests += 1;
        match p.kind {
            OpKind::Get => {
                c.gets += 1;
                c.get_keys += p.width as u64;
            }
            OpKind::Set => c.sets += 1,
        }
    }

    pub fn complete(&mut self, p: &Pending, outcome: Outcome, now: u64) {
        self.replies_any += 1;
        let c = &mut self.counters[p.phase as usize];
        c.replies += 1;
        match outcome {
            Outcome::Get { hits } => {
                c.hits += hits as u64;
                c.misses += (p.width as u64).saturating_sub(hits as u64);
            }
            Outcome::Stored => c.stored += 1,
            Outcome::NotStored => c.not_stored += 1,
            Outcome::Error => c.errors.error += 1,
            Outcome::ClientError => c.errors.client_error += 1,
            Outcome::ServerError => c.errors.server_error += 1,
        }
        let ns = latency(p.intended, now);
        match p.phase {
            Phase::Prefill => {}
            Phase::Warmup => self.warmup.record(p.kind, ns),
            Phase::Measured => self.measured.record(p.kind, ns),
        }
    }

    pub fn lost(&mut self, p: &Pending, why: Loss) {
        let e = &mut self.counters[p.phase as usize].errors;
        match why {
            Loss::Timeout => e.timeout += 1,
            Loss::Connection => e.connection += 1,
            Loss::Unanswered => e.unanswered += 1,
        }
    }

    /// A reply that does not parse or does not fit the request in flight.
    pub fn protocol_error(&mut self, phase: Phase) {
        self.counters[phase as usize].errors.protocol += 1;
    }

    /// Checks a get hit under `--verify`.
    pub fn check_value(&mut self, phase: Phase, key: Option<&[u8]>, value: &[u8]) {
        if !self.verify {
            return;
        }
        let ok = key.is_some_and(|k| verify::check_value(k, value).is_ok());
        if !ok {
            self.counters[phase as usize].errors.verify += 1;
        }
    }
}
