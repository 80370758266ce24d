#!/usr/bin/env bash
# The "Peer TLS" figure of docs/benchmarks.md: throughput of forwarded requests with peer
# links in TLS against the same with plaintext links, everything else equal.
#
# Two 2-node clusters run side by side, both under -Z with the test certificates of
# engine/src/tls/testdata/peer: "tls-links" (the default, --cluster-tls on) and "plain-links"
# (--cluster-tls off, members at notls: listeners). In each, node a has weight 1 and node b
# weight 1000, which leaves a with no ring points (checked below): every key the loadgen sends
# to a is forwarded to b. The bundled loadgen (no TLS of its own) talks to a's notls: client
# listener, so the only TLS in the path is the a->b link. a runs on SERVER_CPU, b and the
# loadgen on CLIENT_CPU (a 2-core machine has no third core), each node -t 1, static
# membership. `compare` alternates the two targets every round and prints medians over
# ROUNDS rounds and the ratio to plain-links; 32 connections, depth 1 and DEPTH, 90/10
# get/set, 100-byte values, 100k keys prefilled.
#
#   bash scripts/bench-peer-tls.sh                  # 5 rounds of 8 s
#   ROUNDS=3 DURATION=5s bash scripts/bench-peer-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8s}
DEPTH=${DEPTH:-16}
CONNS=${CONNS:-32}
OUT=${OUT:-target/bench-peer-tls}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
bench_setup "$OUT"
d=engine/src/tls/testdata/peer
ssl() { echo "ssl_chain_cert=$d/$1.pem,ssl_key=$d/$1.key,ssl_ca_cert=$d/ca.pem"; }

# node NAME CPU LOG PEERS ARGS...: one node, -t 1 pinned to CPU.
node() {
  local name=$1 cpu=$2 log=$3 peers=$4
  shift 4
  taskset -c "$cpu" target/release/corecache -t 1 --cores "$cpu" -m 256 -U 0 \
    --cluster-node "$name" --cluster-peers "$peers" --cluster-membership static "$@" 2>"$log" &
  pids+=("$!")
}

# tls-links: members at their TLS listeners; a's client listener is notls.
T_A=$(free_port) T_B=$(free_port) T_CLIENT=$(free_port)
peers="a=127.0.0.1:$T_A:1,b=127.0.0.1:$T_B:1000"
node a "$SERVER_CPU" "$OUT/tls-a.log" "$peers" -p "$T_A" -l 127.0.0.1 -l "notls:127.0.0.1:$T_CLIENT" \
  -Z -o "$(ssl node0)"
node b "$CLIENT_CPU" "$OUT/tls-b.log" "$peers" -p "$T_B" -Z -o "$(ssl node1)"
# plain-links: members at notls listeners (the client talks to a's), TLS ports unused.
P_A=$(free_port) P_B=$(free_port) P_ATLS=$(free_port) P_BTLS=$(free_port)
peers="a=127.0.0.1:$P_A:1,b=127.0.0.1:$P_B:1000"
node a "$SERVER_CPU" "$OUT/plain-a.log" "$peers" -p "$P_ATLS" -l 127.0.0.1 -l "notls:127.0.0.1:$P_A" \
  -Z -o "$(ssl node0)" --cluster-tls off
node b "$CLIENT_CPU" "$OUT/plain-b.log" "$peers" -p "$P_BTLS" -l 127.0.0.1 -l "notls:127.0.0.1:$P_B" \
  -Z -o "$(ssl node1)" --cluster-tls off
for p in "$T_A" "$T_B" "$T_CLIENT" "$P_A" "$P_B"; do wait_port "$p"; done

# stats_cluster PORT: `stats cluster` of the plaintext listener at PORT.
stats_cluster() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats cluster\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
print(buf.decode().replace("STAT ", "").replace("\r", ""), end="")
PY
}
for port in "$T_CLIENT" "$P_A"; do
  points=$(stats_cluster "$port" | awk '$1 == "member:a:points" { print $2 }')
  if [[ $points != 0 ]]; then
    echo "node a owns $points ring points; every key must be b's" >&2
    exit 1
  fi
done

echo "# $(date -u +%FT%TZ) $(uname -r) load $(cut -d' ' -f1-3 /proc/loadavg); a on cpu$SERVER_CPU, b and the loadgen on cpu$CLIENT_CPU"
for depth in 1 "$DEPTH"; do
  echo "## $CONNS connections, depth $depth: every request forwarded a -> b"
  "$LG" compare --no-progress --target "plain-links=127.0.0.1:$P_A" --target "tls-links=127.0.0.1:$T_CLIENT" \
    --cores "$CLIENT_CPU" --conns "$CONNS" --depth "$depth" --rounds "$ROUNDS" \
    --duration "$DURATION" --warmup 2s --prefill --keys 100000 --value-size 100 --ratio 9:1 \
    --json "$OUT/d$depth.json"
done
for t in "tls-links $T_CLIENT" "plain-links $P_A"; do
  set -- $t
  echo "## $1: node a's link to b"
  stats_cluster "$2" | grep -E '^link:b:(forwarded|failed|tls_handshakes|tls_failures|links_up) '
done
