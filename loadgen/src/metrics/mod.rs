//! Measurement: per-operation HDR histograms, counters, the run summary and
//! the HdrHistogram interval log.

pub mod counters;
pub mod hdrlog;
pub mod hist;
pub mod summary;

pub use counters::{Counters, Errors};
pub use hist::OpHists;
pub use summary::{CpuUse, OpSummary, RunResult};
