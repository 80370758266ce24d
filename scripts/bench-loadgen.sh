#!/usr/bin/env bash
# The loadgen measurements of docs/benchmarks.md ("loadgen" section), rerunnable
# by anyone: builds the release binary, then runs scripts/bench_loadgen.py,
# which pins the server to one CPU and the load to the other, alternates the
# subjects, repeats, and prints medians. Needs memcached and memcaslap
# (scripts/install-test-deps.sh) and python3.
#
#   scripts/bench-loadgen.sh                 # 3 rounds of 8 s, server cpu0, load cpu1
#   ROUNDS=5 SECONDS_PER_RUN=10 scripts/bench-loadgen.sh
#   SERVER_CPU=0 CLIENT_CPU=1 OUT=target/bench-loadgen scripts/bench-loadgen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo build --release -p loadgen --locked
exec python3 scripts/bench_loadgen.py "$@"
