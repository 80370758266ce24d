//! A shard: one pinned thread, its io_uring loop, its connections and its store.

pub mod mesh;
pub mod order;
pub mod route;
