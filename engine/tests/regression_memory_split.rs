//! Regression: `-m` is the whole server's item memory, split over the shards,
//! whether the shard count comes from `-t` or from the cores. Each shard used
//! to count the shards from the CPU set of its own (already pinned) thread,
//! saw one, and took all of `-m`: without `-t`, a 2-core host held twice `-m`.

mod common;

use common::{Server, stat};

fn limit(args: &[&str]) -> (u64, u64) {
    let server = Server::start(args);
    let mut c = server.connect();
    let s = c.stats("");
    (stat(&s, "limit_maxbytes"), stat(&s, "threads"))
}

#[test]
fn the_memory_limit_is_split_over_shards_counted_from_the_cores() {
    let (bytes, shards) = limit(&["-m", "32"]);
    assert!(shards >= 1);
    // Each shard gets limit / shards, rounded down to whole bytes.
    let want = (32u64 << 20) / shards * shards;
    assert_eq!(bytes, want, "{shards} shards");
}

#[test]
fn the_memory_limit_is_split_over_shards_named_by_t() {
    for t in ["1", "2", "3"] {
        let (bytes, shards) = limit(&["-m", "30", "-t", t]);
        assert_eq!(shards.to_string(), t);
        assert_eq!(bytes, (30u64 << 20) / shards * shards, "-t {t}");
    }
}
