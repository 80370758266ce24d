#!/usr/bin/env bash
# Syscalls per request (docs/benchmarks.md, engine section): corecache, memcached
# 1.6 (-t 1) and the loadgen's null server, each pinned to one CPU and driven by
# the loadgen from the other (32 connections, 90/10 get/set, 100-byte values,
# 100k keys prefilled). While the load runs, `perf stat` counts the server's
# raw_syscalls:sys_enter events over a 3 s window; the requests in that window
# come from the server's own `stats` (cmd_get + cmd_set) or, for the null server
# that keeps no stats, from the loadgen's measured rate times the window.
#
#   bash scripts/bench-syscalls.sh            # depth 1 and 16
#   DEPTHS=16 bash scripts/bench-syscalls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
DEPTHS=${DEPTHS:-"1 16"}
WINDOW=3
command -v perf >/dev/null || { echo "bench-syscalls: needs perf (linux-perf)" >&2; exit 1; }
bash scripts/install-test-deps.sh
cargo build --release --locked -q -p engine -p loadgen
LG=target/release/corecache-loadgen
OUT=$(mktemp -d)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-syscalls: nothing listens on port $1" >&2
  exit 1
}
requests() { # port -> cmd_get + cmd_set, or nothing when the server has no stats
  python3 - "$1" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"stats\r\n")
b = b""
while not b.endswith(b"END\r\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    b += chunk
d = dict(l.split()[1:3] for l in b.decode().splitlines() if l.startswith("STAT"))
print(int(d["cmd_get"]) + int(d["cmd_set"]))
PY
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT

CC=$(free_port)
taskset -c "$SERVER_CPU" target/release/corecache -p "$CC" -t 1 --cores "$SERVER_CPU" -m 1024 2>/dev/null &
pids+=($!); CC_PID=$!
MC=$(free_port)
user=(); [[ $(id -u) -eq 0 ]] && user=(-u root)
taskset -c "$SERVER_CPU" memcached "${user[@]}" -l 127.0.0.1 -p "$MC" -U 0 -t 1 -m 1024 &
pids+=($!); MC_PID=$!
NULL=$(free_port)
taskset -c "$SERVER_CPU" "$LG" null-server --listen "127.0.0.1:$NULL" --cores "$SERVER_CPU" >/dev/null 2>&1 &
pids+=($!); NULL_PID=$!
wait_port "$CC"; wait_port "$MC"; wait_port "$NULL"

echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); server cpu$SERVER_CPU, load cpu$CLIENT_CPU"
printf '| server | depth | syscalls | requests | syscalls/request |\n|---|---|---|---|---|\n'
for depth in $DEPTHS; do
  for s in "corecache $CC $CC_PID" "memcached $MC $MC_PID" "null $NULL $NULL_PID"; do
    read -r name port pid <<<"$s"
    # The loadgen prefills (well under 1 s for 100k keys), warms up for 1 s, then
    # measures for 7 s; the perf window (4 s in, 3 s long) lies inside that.
    "$LG" run --no-progress --target "127.0.0.1:$port" --cores "$CLIENT_CPU" --conns 32 \
      --depth "$depth" --duration 7s --warmup 1s --prefill --keys 100000 --value-size 100 \
      --ratio 9:1 --json "$OUT/$name-$depth.json" >/dev/null 2>&1 &
    lg=$!
    sleep 4
    a=$(requests "$port")
    perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$OUT/perf" -- sleep "$WINDOW" >/dev/null 2>&1
    b=$(requests "$port")
    wait $lg
    calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$OUT/perf")
    if [[ -n "$a" && -n "$b" ]]; then
      n=$((b - a))
    else
      n=$(python3 -c "import json; print(int(json.load(open('$OUT/$name-$depth.json'))['throughput'] * $WINDOW))")
    fi
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$depth" "$calls" "$n" \
      "$(python3 -c "print(round($calls / max(1, $n), 3))")"
  done
done
