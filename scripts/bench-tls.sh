#!/usr/bin/env bash
# TLS figures of docs/benchmarks.md ("TLS" section), with memtier_benchmark as the independent
# client (scripts/install-memtier.sh builds it).
#
# 1. Throughput and p99: corecache -Z and memcached 1.6.18 -Z, each with a notls: listener
#    beside its TLS one, so that "plain" is the same server process in the clear. One server
#    thread pinned to SERVER_CPU, memtier (1 thread, CONNS connections, memcache_text, 10%
#    sets of 100-byte values over 100k keys, prefilled) on CLIENT_CPU, at depth 1 and DEPTH.
#    The four targets alternate every round; medians of ROUNDS rounds are printed.
# 2. Handshakes per second per core: memtier reconnecting after every request (a full TLS 1.3
#    handshake per request, no resumption), and the server's CPU time over the run from
#    /proc/PID/stat: handshakes per server CPU second; with the test RSA-2048 certificate, and
#    again (at the end, on a second pair of servers) with an ECDSA P-256 one made here.
# 3. Memory per idle TLS connection: RSS growth of each server after IDLE connections have
#    finished a handshake and one request, against as many plain connections.
#
#   bash scripts/bench-tls.sh                        # 3 rounds of 5 s
#   ROUNDS=5 DURATION=8 bash scripts/bench-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
DEPTH=${DEPTH:-16}
CONNS=${CONNS:-32}
IDLE=${IDLE:-2000}
OUT=${OUT:-target/bench-tls}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
require_memcached
MT=$(bash scripts/install-memtier.sh | tail -1)
cargo build --release --locked --bin corecache
mkdir -p "$OUT"
trap stop_servers EXIT
certs=engine/src/tls/testdata
ssl="ssl_chain_cert=$certs/server.pem,ssl_key=$certs/server.key"
user=()
[[ $(id -u) -eq 0 ]] && user=(-u root)

CC_TLS=$(free_port) CC_PLAIN=$(free_port) MC_TLS=$(free_port) MC_PLAIN=$(free_port)
taskset -c "$SERVER_CPU" target/release/corecache -p "$CC_TLS" -l 127.0.0.1 -l "notls:127.0.0.1:$CC_PLAIN" \
  -U 0 -t 1 --cores "$SERVER_CPU" -m 1024 -c 8192 -Z -o "$ssl" 2>"$OUT/corecache.log" &
CC_PID=$!
pids+=("$CC_PID")
taskset -c "$SERVER_CPU" memcached "${user[@]}" -p "$MC_TLS" -l 127.0.0.1 -l "notls:127.0.0.1:$MC_PLAIN" \
  -U 0 -t 1 -m 1024 -c 8192 -Z -o "$ssl" 2>"$OUT/memcached.log" &
MC_PID=$!
pids+=("$MC_PID")
for p in "$CC_TLS" "$CC_PLAIN" "$MC_TLS" "$MC_PLAIN"; do wait_port "$p"; done

tls_flags() { # target
  case $1 in *-tls) echo "--tls --cacert=$certs/ca.pem --tls-protocols=TLSv1.3" ;; esac
}
port_of() { # target
  case $1 in
    corecache-tls) echo "$CC_TLS" ;; corecache-plain) echo "$CC_PLAIN" ;;
    memcached-tls) echo "$MC_TLS" ;; memcached-plain) echo "$MC_PLAIN" ;;
  esac
}
memtier() { # target log args...
  local target=$1 log=$2
  shift 2
  # shellcheck disable=SC2046
  taskset -c "$CLIENT_CPU" "$MT" -s 127.0.0.1 -p "$(port_of "$target")" $(tls_flags "$target") \
    -P memcache_text -t 1 --data-size 100 --key-prefix k --key-maximum 100000 --hide-histogram \
    "$@" >"$log" 2>&1
}
# Totals line: ops/sec, then p99 latency (ms).
totals() { awk '$1 == "Totals" { print $2, $7 }' "$1"; }

targets=(corecache-tls corecache-plain memcached-tls memcached-plain)
for t in corecache-plain memcached-plain; do
  memtier "$t" "$OUT/fill-$t.txt" -c 1 --ratio 1:0 --key-pattern P:P --requests allkeys
done

echo "== throughput and p99: $CONNS connections, 90% gets, medians of $ROUNDS rounds of $DURATION s"
for depth in 1 "$DEPTH"; do
  for r in $(seq "$ROUNDS"); do
    for t in "${targets[@]}"; do
      memtier "$t" "$OUT/run-$t-d$depth-r$r.txt" -c "$CONNS" --pipeline "$depth" --ratio 1:9 \
        --test-time "$DURATION"
    done
  done
  for t in "${targets[@]}"; do
    ops=$(for r in $(seq "$ROUNDS"); do totals "$OUT/run-$t-d$depth-r$r.txt" | cut -d' ' -f1; done | median)
    p99=$(for r in $(seq "$ROUNDS"); do totals "$OUT/run-$t-d$depth-r$r.txt" | cut -d' ' -f2; done | median)
    printf 'depth %-3s %-16s %12.0f ops/s  p99 %s ms\n' "$depth" "$t" "$ops" "$p99"
    echo "$depth $t $ops $p99" >>"$OUT/summary.txt"
  done
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
handshakes() { # label
  local t pid before after ops cpu
  for t in corecache-tls memcached-tls; do
    pid=$CC_PID
    [[ $t == memcached-* ]] && pid=$MC_PID
    before=$(cpu_ticks "$pid")
    memtier "$t" "$OUT/handshakes-$1-$t.txt" -c "$CONNS" --ratio 0:1 --reconnect-interval 1 --test-time "$DURATION"
    after=$(cpu_ticks "$pid")
    ops=$(totals "$OUT/handshakes-$1-$t.txt" | cut -d' ' -f1)
    cpu=$(awk -v a="$after" -v b="$before" -v hz="$hz" 'BEGIN { printf "%.2f", (a - b) / hz }')
    awk -v t="$t" -v k="$1" -v ops="$ops" -v cpu="$cpu" -v d="$DURATION" \
      'BEGIN { printf "%-8s %-16s %8.0f handshakes/s, server CPU %.2f s of %d s: %.0f per server CPU second\n", k, t, ops, cpu, d, ops * d / cpu }'
  done
}
echo "== handshakes: a new TLS 1.3 connection per request, $CONNS connections, $DURATION s"
handshakes rsa2048

echo "== memory: RSS growth per idle connection, $IDLE connections"
python3 - "$CC_PID" "$CC_TLS" "$CC_PLAIN" "$MC_PID" "$MC_TLS" "$MC_PLAIN" "$IDLE" "$certs/ca.pem" <<'PY'
import resource, socket, ssl, sys, time
cc_pid, cc_tls, cc_plain, mc_pid, mc_tls, mc_plain, n, ca = sys.argv[1:]
n = int(n)
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
ctx = ssl.create_default_context(cafile=ca)

def rss(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def idle(pid, port, tls):
    time.sleep(0.5)
    before = rss(pid)
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", int(port)))
        if tls:
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.sendall(b"version\r\n")
        while not s.recv(64).endswith(b"\r\n"):
            pass
        conns.append(s)
    time.sleep(0.5)
    grown = rss(pid) - before
    for s in conns:
        s.close()
    return grown / n

for name, pid, tls_port, plain_port in (("corecache", cc_pid, cc_tls, cc_plain), ("memcached", mc_pid, mc_tls, mc_plain)):
    plain = idle(pid, plain_port, False)
    tls = idle(pid, tls_port, True)
    print("%-10s plain %7.0f B/connection, TLS %7.0f B/connection" % (name, plain, tls))
PY

# The handshake again with an ECDSA P-256 certificate (made here), on a second pair of servers:
# RSA-2048 signing bounds the first figure for both servers.
openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/ec-ca.key"
openssl req -x509 -new -key "$OUT/ec-ca.key" -subj "/CN=bench-tls CA" -days 2 -out "$OUT/ec-ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/ec.key"
openssl req -new -key "$OUT/ec.key" -subj "/CN=127.0.0.1" -out "$OUT/ec.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$OUT/ec.ext"
openssl x509 -req -in "$OUT/ec.csr" -CA "$OUT/ec-ca.pem" -CAkey "$OUT/ec-ca.key" -CAcreateserial \
  -days 2 -extfile "$OUT/ec.ext" -out "$OUT/ec.pem" 2>/dev/null
stop_servers
pids=()
certs=$OUT ssl="ssl_chain_cert=$OUT/ec.pem,ssl_key=$OUT/ec.key"
tls_flags() { # target
  case $1 in *-tls) echo "--tls --cacert=$OUT/ec-ca.pem --tls-protocols=TLSv1.3" ;; esac
}
CC_TLS=$(free_port) MC_TLS=$(free_port)
taskset -c "$SERVER_CPU" target/release/corecache -p "$CC_TLS" -l 127.0.0.1 -U 0 -t 1 --cores "$SERVER_CPU" \
  -m 1024 -Z -o "$ssl" 2>"$OUT/corecache-ec.log" &
CC_PID=$!
pids+=("$CC_PID")
taskset -c "$SERVER_CPU" memcached "${user[@]}" -p "$MC_TLS" -l 127.0.0.1 -U 0 -t 1 -m 1024 -Z -o "$ssl" \
  2>"$OUT/memcached-ec.log" &
MC_PID=$!
pids+=("$MC_PID")
wait_port "$CC_TLS"
wait_port "$MC_TLS"
handshakes ecdsa256
