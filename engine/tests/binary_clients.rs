//! The binary protocol through the client libraries that speak it, each run
//! against memcached first (so the scripts' expectations are memcached's) and
//! then against a 2-shard corecache: python-binary-memcached, pylibmc in
//! binary mode and Ruby's dalli 3.0, which speaks nothing else. Each script
//! (tests/clients/) covers set/get, 1000-key multi-gets over both shards,
//! add/replace/append, counters, CAS, touch, delete, stats and flush.
//!
//! The libraries come from Debian (scripts/install-test-deps.sh); a test whose
//! interpreter or library is missing says so and does not run.

mod common;

use common::scripts::{against_both, available};

#[test]
fn python_binary_memcached() {
    if available("/usr/bin/python3", &["-c", "import bmemcached"]) {
        against_both(
            "bmemcached",
            "/usr/bin/python3",
            "bmemcached_roundtrip.py",
            &[],
        );
    }
}

#[test]
fn pylibmc_in_binary_mode() {
    if available("/usr/bin/python3", &["-c", "import pylibmc"]) {
        against_both(
            "pylibmc-binary",
            "/usr/bin/python3",
            "pylibmc_binary.py",
            &[],
        );
    }
}

#[test]
fn dalli() {
    if available("/usr/bin/ruby", &["-e", "require 'dalli'"]) {
        against_both("dalli", "/usr/bin/ruby", "dalli_roundtrip.rb", &[]);
    }
}
