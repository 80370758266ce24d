#!/usr/bin/env bash
# The HTTP port's measurements of docs/benchmarks.md ("HTTP port" section).
#
# 1. REST GET and PUT (wrk, keep-alive, depth 1 and pipelined) against memcached text
#    get and set (the loadgen) on the same corecache: one shard pinned to SERVER_CPU,
#    the load on CLIENT_CPU, 32 connections, 100k keys of 32 bytes prefilled with
#    100-byte values; the two clients alternate every round, medians are printed.
#    The pipelined wrk run repeats one batch of DEPTH requests per connection (wrk's
#    pipelining sends one fixed string), so it reads DEPTH keys per connection.
# 2. The cost of the latency histograms: two servers on SERVER_CPU, histograms on and
#    off (http.latency_histograms), under `corecache-loadgen compare` (alternating
#    rounds, 90/10 get/set, 32 connections, depth 16 and depth 1).
#
#   bash scripts/bench-http.sh                    # 3 rounds of 5 s
#   ROUNDS=5 DURATION=8s DEPTH=16 bash scripts/bench-http.sh
#   HISTOGRAMS_ONLY=1 bash scripts/bench-http.sh  # part 2 alone
#   SCRAPE_ONLY=1 bash scripts/bench-http.sh      # part 3 alone
# 3. The cost of a /metrics scrape every second on p99: one server, the loadgen (90/10,
#    32 connections, depth 1 and DEPTH) with and without a scraper (curl of /metrics once a
#    second, on CLIENT_CPU) in alternating order each round; medians of p99 and throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
DEPTH=${DEPTH:-16}
CONNS=${CONNS:-32}
OUT=${OUT:-target/bench-http}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || true
fi
command -v wrk >/dev/null 2>&1 || { echo "bench-http: needs wrk (apt-get install wrk)" >&2; exit 1; }
bench_setup "$OUT"

start_corecache() { # port http-port log [extra args]
  local port=$1 http=$2 log=$3
  shift 3
  taskset -c "$SERVER_CPU" target/release/corecache -p "$port" -t 1 --cores "$SERVER_CPU" -m 1024 \
    --http-port "$http" "$@" 2>"$log" &
  pids+=("$!")
  wait_port "$port"
  wait_port "$http"
}

# wrk scripts: keys as the loadgen names them (k + zero-padded index, 32 bytes).
cat >"$OUT/rest.lua" <<'LUA'
local method = os.getenv("METHOD") or "GET"
local depth = tonumber(os.getenv("DEPTH") or "1")
local body = string.rep("v", 100)
local function one()
  local path = string.format("/v1/keys/k%031d", math.random(0, 99999))
  if method == "PUT" then
    return wrk.format("PUT", path, nil, body)
  end
  return wrk.format("GET", path)
end
local batch
init = function(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  if depth > 1 then
    local r = {}
    for i = 1, depth do r[i] = one() end
    batch = table.concat(r)
  end
end
request = function()
  if batch then return batch end
  return one()
end
LUA


echo "# $(date -u +%FT%TZ) $(uname -r) load $(cut -d' ' -f1-3 /proc/loadavg); server cpu$SERVER_CPU, load cpu$CLIENT_CPU"
P=$(free_port)
H=$(free_port)
start_corecache "$P" "$H" "$OUT/corecache.log"
taskset -c "$CLIENT_CPU" "$LG" run --no-progress --target "127.0.0.1:$P" --cores "$CLIENT_CPU" \
  --conns "$CONNS" --prefill --keys 100000 --value-size 100 --duration 1s --warmup 0s >/dev/null
if [[ -z ${HISTOGRAMS_ONLY:-} && -z ${SCRAPE_ONLY:-} ]]; then
echo "## REST vs memcached text, $CONNS connections, same server (req/s, median of $ROUNDS)"
printf '| operation | depth | memcached text | REST | REST / text |\n|---|---|---|---|---|\n'
for op in get set; do
  for depth in 1 "$DEPTH"; do
    mc=()
    rest=()
    ratio=$([[ $op == get ]] && echo 1:0 || echo 0:1)
    method=$([[ $op == get ]] && echo GET || echo PUT)
    for _ in $(seq "$ROUNDS"); do
      taskset -c "$CLIENT_CPU" "$LG" run --no-progress --target "127.0.0.1:$P" --cores "$CLIENT_CPU" \
        --conns "$CONNS" --depth "$depth" --keys 100000 --value-size 100 --ratio "$ratio" \
        --duration "$DURATION" --warmup 1s --json "$OUT/mc-$op-d$depth.json" >/dev/null
      mc+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput"])' "$OUT/mc-$op-d$depth.json")")
      r=$(METHOD=$method DEPTH=$depth taskset -c "$CLIENT_CPU" wrk -t 1 -c "$CONNS" -d "$DURATION" \
        -s "$OUT/rest.lua" "http://127.0.0.1:$H" | tee "$OUT/rest-$op-d$depth.txt" | awk '/^Requests\/sec:/ {print $2}')
      rest+=("$r")
    done
    m=$(printf '%s\n' "${mc[@]}" | median)
    r=$(printf '%s\n' "${rest[@]}" | median)
    printf '| %s | %s | %.0f | %.0f | %.2f |\n' "$op" "$depth" "$m" "$r" "$(echo "$r / $m" | bc -l)"
  done
done
fi

if [[ -z ${SCRAPE_ONLY:-} ]]; then
echo "## latency histograms on vs off (corecache-loadgen compare, 90/10 get/set, $CONNS connections)"
P2=$(free_port)
H2=$(free_port)
printf '[http]\nlatency_histograms = false\n' >"$OUT/off.toml"
start_corecache "$P2" "$H2" "$OUT/corecache-off.log" --config "$OUT/off.toml"
for depth in "$DEPTH" 1; do
  echo "### depth $depth"
  "$LG" compare --no-progress --target "on=127.0.0.1:$P" --target "off=127.0.0.1:$P2" \
    --cores "$CLIENT_CPU" --conns "$CONNS" --depth "$depth" --rounds "$ROUNDS" \
    --duration "$DURATION" --warmup 2s --prefill --keys 100000 --value-size 100 --ratio 9:1 \
    --json "$OUT/histograms-d$depth.json"
done
fi
[[ -z ${HISTOGRAMS_ONLY:-} ]] || exit 0

echo "## a /metrics scrape every second: p99 with and without (loadgen run, 90/10, $CONNS connections)"
scrape_loop() { # http port; runs until killed
  while true; do
    taskset -c "$CLIENT_CPU" curl -s -o /dev/null "http://127.0.0.1:$1/metrics" || true
    sleep 1
  done
}
stat_of() { # json key: p99 in µs or throughput
  python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
if sys.argv[2] == "p99":
    print(dict(j["ops"]["all"]["percentiles_ns"])["p99"] / 1000)
else:
    print(j["throughput"])' "$1" "$2"
}
for depth in 1 "$DEPTH"; do
  for r in $(seq "$ROUNDS"); do
    order=(none scrape)
    ((r % 2 == 0)) && order=(scrape none)
    for mode in "${order[@]}"; do
      scraper=""
      if [[ $mode == scrape ]]; then
        scrape_loop "$H" &
        scraper=$!
      fi
      taskset -c "$CLIENT_CPU" "$LG" run --no-progress --target "127.0.0.1:$P" --cores "$CLIENT_CPU" \
        --conns "$CONNS" --depth "$depth" --keys 100000 --value-size 100 --ratio 9:1 \
        --duration "$DURATION" --warmup 1s --json "$OUT/scrape-$mode-d$depth-r$r.json" >/dev/null
      [[ -n $scraper ]] && { kill "$scraper"; wait "$scraper" 2>/dev/null || true; }
    done
  done
  for mode in none scrape; do
    p99=$(for r in $(seq "$ROUNDS"); do stat_of "$OUT/scrape-$mode-d$depth-r$r.json" p99; done | median)
    tput=$(for r in $(seq "$ROUNDS"); do stat_of "$OUT/scrape-$mode-d$depth-r$r.json" throughput; done | median)
    printf 'depth %-3s %-7s p99 %8.1f µs  %10.0f req/s\n' "$depth" "$mode" "$p99" "$tput"
  done
done
