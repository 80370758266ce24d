//! corecache's server library: the io_uring runtime, the per-shard store and the
//! shard loop that joins them to the memcached protocol.

pub mod auth;
pub mod collapse;
pub mod config;
pub mod logger;
pub mod membership;
pub mod reload;
pub mod restart;
pub mod server;
pub mod shard;
pub mod shared;
pub mod tls;
