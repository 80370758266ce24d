#!/usr/bin/env bash
# Where a server's CPU goes per request under the engine benchmark's depth-16 load
# (docs/store.md, "The depth-16 loss profiled"): the server pinned to one CPU, the
# loadgen to the other (32 connections, depth 16, 90/10 get/set, 100-byte values,
# 100k keys prefilled); `perf record` samples the server at 4000 Hz for 5 s of the
# load, and the report turns samples into ns of CPU per request, by DSO and by
# user-space symbol. Run it for two binaries back to back to compare them.
#
#   bash scripts/profile-engine.sh                        # target/release/corecache
#   BIN=/path/to/older/corecache bash scripts/profile-engine.sh
#   MIN_NS=0.5 OUT=target/profile bash scripts/profile-engine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
MIN_NS=${MIN_NS:-1.0}
OUT=${OUT:-target/profile-engine}
command -v perf >/dev/null || { echo "profile-engine: needs perf (linux-perf)" >&2; exit 1; }
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
bench_setup "$OUT"
BIN=${BIN:-target/release/corecache}
PORT=$(free_port)
taskset -c "$SERVER_CPU" "$BIN" -p "$PORT" -t 1 --cores "$SERVER_CPU" -m 1024 2>/dev/null &
SERVER=$!
pids+=("$SERVER")
wait_port "$PORT"
# The samples start 4 s after the server is up: past the prefill and the 2 s warm-up.
(sleep 4; perf record -q -o "$OUT/perf.data" -F 4000 -g -p "$SERVER" -- sleep 5 >/dev/null 2>&1) &
REC=$!
taskset -c "$CLIENT_CPU" "$LG" compare --no-progress --target "server=127.0.0.1:$PORT" \
  --cores 1 --conns 32 --depth 16 --rounds 1 --duration 10s --warmup 2s --prefill \
  --keys 100000 --value-size 100 --ratio 9:1 --json "$OUT/load.json" >/dev/null
wait "$REC"
RATE=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rounds'][0]['throughput'])" "$OUT/load.json")
REQS=$(python3 -c "import sys; print(float(sys.argv[1]) * 5)" "$RATE")
echo "$BIN: $(printf '%.0f' "$RATE") req/s; ns of CPU per request (perf samples / 4000 Hz / requests in 5 s)"
perf report -i "$OUT/perf.data" --no-children --stdio --no-inline -g none -n --sort dso 2>/dev/null |
  awk -v r="$REQS" '/^ +[0-9]/ {printf "  %7.1f ns  %s\n", $2 / 4000 / r * 1e9, $3}'
perf report -i "$OUT/perf.data" --no-children --stdio --no-inline -g none -n --sort dso,sym 2>/dev/null |
  awk -v r="$REQS" -v min="$MIN_NS" '/^ +[0-9]/ && !/kernel/ {
    ns = $2 / 4000 / r * 1e9; if (ns < min) next
    $1 = ""; $2 = ""; $3 = ""; $4 = ""; sub(/^ +/, ""); printf "  %7.1f ns  %s\n", ns, $0 }'
