#!/usr/bin/env bash
# Store benchmarks: criterion micro-benchmarks (get hit, set of 100 bytes), the policy
# hit-ratio table (zipf 0.9 and 1.1, cache at 10% of the key space) and the memory per
# item against memcached. The machine may be shared: the load average is printed before
# each part, and everything runs pinned to core 1.
#
# Usage: scripts/bench-store.sh [criterion|hitratio|memory|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
if [[ $what == criterion || $what == all ]]; then
  echo "== criterion, load: $(cat /proc/loadavg)"
  taskset -c 1 cargo bench -p benches --bench store
fi
if [[ $what == hitratio || $what == all ]]; then
  cargo build --release -q -p benches --bin hit_ratio
  echo "== hit ratio, load: $(cat /proc/loadavg)"
  taskset -c 1 target/release/hit_ratio --keys 1000000 --requests 20000000
fi
if [[ $what == memory || $what == all ]]; then
  bash scripts/bench-store-memory.sh 1000000
  bash scripts/bench-store-memory.sh 1000000 --mixed
fi
