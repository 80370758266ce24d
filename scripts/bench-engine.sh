#!/usr/bin/env bash
# The engine measurements of docs/benchmarks.md ("engine" section): corecache,
# memcached 1.6 (-t 1) and the loadgen's null server (the same io_uring loop
# with no storage: the ceiling of this network path) pinned to one CPU, the
# load generator pinned to the other, 90/10 get/set, 100-byte values, 100k
# keys prefilled, at 32 and 256 connections and pipeline depths 1 and 16.
# `compare` alternates the servers every round and prints medians and ratios.
#
#   bash scripts/bench-engine.sh                      # 3 rounds of 8 s each
#   ROUNDS=5 DURATION=10s bash scripts/bench-engine.sh
#   SERVER_CPU=0 CLIENT_CPU=1 OUT=target/bench-engine SHAPES="32:1 256:16" bash scripts/bench-engine.sh
#   BASELINE=/path/to/older/corecache bash scripts/bench-engine.sh   # A/B: adds it as a fourth target
#   BASELINE=target/release/corecache BASELINE_ARGS="-e /dev/shm/cc-ab" bash scripts/bench-engine.sh
#                                                     # A/B of a setting: the same binary with extra flags
#   PROTOCOL=binary bash scripts/bench-engine.sh      # memcached's binary protocol (no null server: it speaks text)
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
OUT=${OUT:-target/bench-engine}
SHAPES=${SHAPES:-"32:1 256:1 32:16 256:16"}
EXTRA=${EXTRA:-}
BASELINE=${BASELINE:-}
BASELINE_ARGS=${BASELINE_ARGS:-}
PROTOCOL=${PROTOCOL:-text}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
require_memcached
bench_setup "$OUT"
start_servers "$SERVER_CPU" "$OUT/corecache.log" "$OUT/null.log"
targets=(--target "corecache=127.0.0.1:$CC_PORT" --target "memcached=127.0.0.1:$MC_PORT")
[[ $PROTOCOL == binary ]] || targets+=(--target "null=127.0.0.1:$NULL_PORT")
if [[ -n $BASELINE ]]; then
  BASE_PORT=$(free_port)
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" "$BASELINE" -p "$BASE_PORT" -t 1 --cores "$SERVER_CPU" -m 1024 $BASELINE_ARGS \
    2>"$OUT/baseline.log" &
  pids+=("$!")
  wait_port "$BASE_PORT"
  targets+=(--target "baseline=127.0.0.1:$BASE_PORT")
fi

echo "# $(date -u +%FT%TZ) $(uname -r) load $(cut -d' ' -f1-3 /proc/loadavg); server cpu$SERVER_CPU, load cpu$CLIENT_CPU; protocol $PROTOCOL"
for shape in $SHAPES; do
  conns=${shape%:*}
  depth=${shape#*:}
  echo "## $conns connections, depth $depth"
  # shellcheck disable=SC2086
  "$LG" compare --no-progress "${targets[@]}" \
    --cores "$CLIENT_CPU" --conns "$conns" --depth "$depth" --rounds "$ROUNDS" --protocol "$PROTOCOL" \
    --duration "$DURATION" --warmup 2s --prefill --keys 100000 --value-size 100 --ratio 9:1 \
    --json "$OUT/c$conns-d$depth.json" $EXTRA
  "$LG" plot "$OUT/c$conns-d$depth.json" -o "$OUT/c$conns-d$depth.svg" --png "$OUT/c$conns-d$depth.png" \
    --title "get+set latency, $conns conns, depth $depth (server cpu$SERVER_CPU, load cpu$CLIENT_CPU)" >/dev/null
done
