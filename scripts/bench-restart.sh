#!/usr/bin/env bash
# Warm restart figures of docs/benchmarks.md ("warm restart"): for each item count, fill a
# corecache started with -e on tmpfs (the loadgen's prefill: 100-byte values), stop it with
# SIGUSR1, start it again over the same file, and read off its log: the shutdown (stop
# signal to saved meta), each shard's index rebuild (checksum of the arena, walk of every
# chunk, index inserts) and the whole start-up (exec to "corecache ready").
#
#   bash scripts/bench-restart.sh                  # 1M and 10M items, 2 shards
#   COUNTS="1000000" SHARDS=1 bash scripts/bench-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-"1000000 10000000"}
SHARDS=${SHARDS:-2}
DIR=${DIR:-/dev/shm}
OUT=${OUT:-target/bench-restart}
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
cargo build --release --locked -p engine -p loadgen
mkdir -p "$OUT"
CC=target/release/corecache
LG=target/release/corecache-loadgen
file="$DIR/corecache-bench-restart.$$"
trap 'rm -f "$file" "$file.meta"; kill "${pid:-0}" 2>/dev/null || true' EXIT

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
start() { # start <log>: starts the server, waits for "corecache ready"; sets pid, ready_ms
  local t0; t0=$(date +%s%N)
  "$CC" -p "$port" -U 0 -t "$SHARDS" -m "$mem" -e "$file" >/dev/null 2>"$1" &
  pid=$!
  until grep -q "corecache ready" "$1"; do
    kill -0 "$pid" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.01
  done
  ready_ms=$(ms_since "$t0")
}

echo "# $(date -u +%FT%TZ) $(uname -r); $SHARDS shards; memory file in $DIR"
printf '| items | fill | shutdown (signal to meta saved) | rebuild per shard (ms) | start-up to ready (ms) | restored |\n'
printf '|---|---|---|---|---|---|\n'
for n in $COUNTS; do
  rm -f "$file" "$file.meta"
  port=$(free_port)
  # ~170 bytes an item (100-byte value, 10-byte key, header, chunk rounding) plus room.
  mem=$(( n * 200 / 1048576 + 256 ))
  start "$OUT/fill-$n.log"
  t0=$(date +%s%N)
  "$LG" run --no-progress --target "127.0.0.1:$port" --prefill --keys "$n" --value-size 100 \
    --ratio 0:1 --duration 1s --warmup 0s --conns 4 >"$OUT/load-$n.txt"
  fill_ms=$(ms_since "$t0")
  kill -USR1 "$pid"; wait "$pid"
  saved=$(grep -o 'meta_bytes=[0-9]* ms=[0-9.]*' "$OUT/fill-$n.log" | sed 's/.*ms=//')
  start "$OUT/restart-$n.log"
  rebuild=$(grep -o 'items=[0-9]* dropped_expired_or_flushed=[0-9]* ms=[0-9.]*' "$OUT/restart-$n.log" \
    | sed 's/.* ms=//' | paste -sd/ -)
  items=$(grep -o 'items=[0-9]*' "$OUT/restart-$n.log" | cut -d= -f2 | paste -sd+ - | python3 -c 'print(eval(input()))')
  kill "$pid"; wait "$pid" || true
  printf '| %s | %s ms | %s ms | %s | %s | %s |\n' "$n" "$fill_ms" "$saved" "$rebuild" "$ready_ms" "$items"
done
