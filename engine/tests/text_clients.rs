//! A 1000-key multi-get of 100-byte keys (a ~101 KB get line, which corecache
//! used to refuse past 64 KiB) through the text-protocol client libraries that
//! send one line for it: pymemcache, pylibmc and python-memcached, each run
//! against memcached first, then a 2-shard corecache. The libraries come from
//! Debian (scripts/install-test-deps.sh); a missing one is said and skipped.

mod common;

use common::scripts::{against_both, available};

fn multiget(library: &str, module: &str) {
    if available("/usr/bin/python3", &["-c", &format!("import {module}")]) {
        against_both(library, "/usr/bin/python3", "multiget_1000.py", &[library]);
    }
}

#[test]
fn pymemcache_gets_every_key_of_a_1000_key_multi_get() {
    multiget("pymemcache", "pymemcache");
}

#[test]
fn pylibmc_gets_every_key_of_a_1000_key_multi_get() {
    multiget("pylibmc", "pylibmc");
}

#[test]
fn python_memcached_gets_every_key_of_a_1000_key_multi_get() {
    multiget("python-memcached", "memcache");
}
