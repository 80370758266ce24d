//! The storage engine one shard owns.
