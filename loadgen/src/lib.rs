//! corecache-loadgen: a memcached load generator that can settle arguments.
//!
//! ```text
//!   main thread: CLI, collector          client threads (one per --cores entry, pinned)
//!   ┌──────────────────────────┐         ┌───────────────────────────────────────────┐
//!   │ progress line, summary,  │◄─mpsc───│ io_uring loop (runtime):          │
//!   │ --json, --hdr-log,       │ interval│   N connections, multishot recv into a    │
//!   │ compare, plot            │ reports │   provided buffer ring, sends batched and  │
//!   └──────────────────────────┘         │   submitted once per turn; closed loop or │
//!                                        │   open loop on an intended-time schedule  │
//!                                        └───────────────────────────────────────────┘
//! ```
//! Each client thread owns its ring, connections, workload generator and
//! histograms; nothing is shared while the load runs. Once per reporting
//! interval a thread sends the collector a copy of its interval histograms
//! and counters, so merging happens off the hot path.
//!
//! Modules: [`spec`] (flag syntaxes), [`workload`] (keys, sizes, mix, zipf),
//! [`verify`] (value checksums), [`schedule`] (open-loop intended times),
//! [`metrics`] (histograms, counters, results, interval log), [`wire`]
//! (encoders and parsers), [`client`] (the load threads), [`null_server`],
//! [`compare`], [`plot`].

pub mod cli;
pub mod client;
pub mod compare;
pub mod cpu;
pub mod metrics;
pub mod null_server;
pub mod plot;
pub mod schedule;
pub mod server_stats;
pub mod spec;
pub mod verify;
pub mod wire;
pub mod workload;
