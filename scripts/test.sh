#!/usr/bin/env bash
# The project's test command (README): installs what the tests talk to (the reference
# memcached, perl's prove), runs every test of the workspace, then memcached 1.6.18's own
# test suite against the release binary (scripts/memcached-t.sh, lists in
# scripts/memcached-t/), in the clear and over TLS. Fails when either part fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
cargo build --release --locked --bin corecache
bash scripts/memcached-t.sh
bash scripts/memcached-t.sh --tls
