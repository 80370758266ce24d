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
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
require_memcached
cargo build --release --locked -q -p engine -p loadgen
LG=target/release/corecache-loadgen
OUT=$(mktemp -d)

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
cleanup() { stop_servers; rm -rf "$OUT"; }
trap cleanup EXIT
start_servers "$SERVER_CPU" /dev/null /dev/null

echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); server cpu$SERVER_CPU, load cpu$CLIENT_CPU"
printf '| server | depth | syscalls | requests | syscalls/request |\n|---|---|---|---|---|\n'
for depth in $DEPTHS; do
  for s in "corecache $CC_PORT $CC_PID" "memcached $MC_PORT $MC_PID" "null $NULL_PORT $NULL_PID"; do
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
