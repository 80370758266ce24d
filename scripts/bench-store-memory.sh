#!/usr/bin/env bash
# Memory per item: corecache's store vs memcached 1.6, same items.
#
# Loads ITEMS items (32-byte keys, 100-byte values; `--mixed` draws values of 50..300
# bytes) into (1) one corecache store inside the `store_mem` benchmark process,
# (2) the corecache server, -t 1 -m 1024, and (3) memcached -t 1 -m 1024, the servers
# through `mc_load` over TCP, then reports resident bytes per item and the overhead over
# key + value. Installs memcached when missing (scripts/install-test-deps.sh).
#
# Usage: scripts/bench-store-memory.sh [ITEMS] [--mixed]
#   BIN=DIR: use the store_mem, mc_load and corecache binaries in DIR instead of
#   building target/release (an A/B of two builds, one after the other).
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-1000000}
MIXED=${2:-}
# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
require_memcached
if [[ -z "${BIN:-}" ]]; then
  cargo build --release -q -p benches --bin store_mem --bin mc_load
  cargo build --release -q -p engine --bin corecache
fi
BIN=${BIN:-target/release}
echo "== load: $(cat /proc/loadavg)"
echo "== corecache store (in-process, default config, memory_limit 1024 MiB)"
taskset -c 1 "$BIN"/store_mem --items "$ITEMS" --limit-mib 1024 $MIXED

if [[ -n "$MIXED" ]]; then RAW=207; else RAW=132; fi

report() { # name rss base
  awk -v name="$1" -v rss="$2" -v base="$3" -v n="$ITEMS" -v raw="$RAW" 'BEGIN {
    printf "%s rss            %d bytes\n", name, rss
    printf "%s rss bytes/item %.1f\n", name, rss / n
    printf "%s overhead/item  %.1f  (rss/item - key+value, key+value = %d)\n", name, rss / n - raw, raw
    printf "  without its baseline   %.1f\n", (rss - base) / n - raw
  }'
}
# Waits (up to 30 s) until the server reports hash_is_expanding 0: both servers grow
# their hash table incrementally, and during a move the old table is still resident.
settle() {
  python3 - "$1" <<'PY'
import socket, sys, time
deadline = time.time() + 30
while time.time() < deadline:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"stats\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        buf += s.recv(65536)
    s.close()
    if b"STAT hash_is_expanding 0\r\n" in buf:
        sys.exit(0)
    time.sleep(0.2)
print("hash table still expanding after 30 s", file=sys.stderr)
PY
}
# Rss from smaps_rollup (exact); VmRSS in /proc/PID/status lags unmaps by a second or more.
rss_of() { awk '/^Rss:/ {print $2 * 1024}' "/proc/$1/smaps_rollup"; }

# Loads the items into the server on PORT (process PID, named NAME), waits for its hash
# table to settle and reports its resident bytes per item.
measure() { # name port pid
  wait_port "$2"
  local base
  base=$(rss_of "$3")
  echo "== $1 (pid $3, rss before load $base bytes)"
  taskset -c 1 "$BIN"/mc_load "127.0.0.1:$2" --items "$ITEMS" $MIXED
  settle "$2"
  report "${1%% *}" "$(rss_of "$3")" "$base"
  kill "$3"
}
trap stop_servers EXIT

PORT=$(free_port)
taskset -c 0 "$BIN"/corecache -t 1 -m 1024 -p "$PORT" -l 127.0.0.1 2>/dev/null &
pids+=($!)
measure "corecache server -t 1 -m 1024" "$PORT" $!

PORT=$(free_port)
taskset -c 0 memcached -t 1 -m 1024 -p "$PORT" -U 0 -l 127.0.0.1 -u "$(id -un)" &
pids+=($!)
measure "memcached $(memcached -V | awk '{print $2}') -t 1 -m 1024" "$PORT" $!
