#!/usr/bin/env bash
# Memory per item: corecache's store vs memcached 1.6, same items.
#
# Loads ITEMS items (32-byte keys, 100-byte values; `--mixed` draws values of 50..300
# bytes) into (1) one corecache store inside the `store_mem` benchmark process and
# (2) memcached -t 1 -m 1024 through `mc_load` over TCP, then reports resident bytes per
# item and the overhead over key + value. Installs memcached when missing.
#
# Usage: scripts/bench-store-memory.sh [ITEMS] [--mixed]
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-1000000}
MIXED=${2:-}
if ! command -v memcached >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null; }
    command -v systemctl >/dev/null 2>&1 && systemctl disable --now memcached >/dev/null 2>&1 || true
  else
    echo "memcached is not installed and cannot be installed here (need root and apt-get)" >&2
    exit 1
  fi
fi
cargo build --release -q -p benches --bin store_mem --bin mc_load
echo "== load: $(cat /proc/loadavg)"
echo "== corecache store (in-process, default config, memory_limit 1024 MiB)"
taskset -c 1 target/release/store_mem --items "$ITEMS" --limit-mib 1024 $MIXED

# A free port on loopback.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
memcached -t 1 -m 1024 -p "$PORT" -U 0 -l 127.0.0.1 -u "$(id -un)" &
MC=$!
trap 'kill $MC 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.05
done
BASE=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$MC/status)
echo "== memcached $(memcached -V | awk '{print $2}') -t 1 -m 1024 (pid $MC, rss before load $BASE bytes)"
target/release/mc_load "127.0.0.1:$PORT" --items "$ITEMS" $MIXED
RSS=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$MC/status)
if [[ -n "$MIXED" ]]; then RAW=207; else RAW=132; fi
awk -v rss="$RSS" -v n="$ITEMS" -v raw="$RAW" -v base="$BASE" 'BEGIN {
  printf "memcached rss            %d bytes\n", rss
  printf "memcached rss bytes/item %.1f\n", rss / n
  printf "memcached overhead/item  %.1f  (rss/item - key+value, key+value = %d)\n", rss / n - raw, raw
  printf "  without its baseline   %.1f\n", (rss - base) / n - raw
}'
