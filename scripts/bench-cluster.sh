#!/usr/bin/env bash
# The "cluster: forwarding cost and nutcracker" figures of docs/benchmarks.md (issue 11).
#
# Part "forward": a 2-node cluster (a, b; -t 1 each, static membership, forwarding on,
# equal weights). The loadgen talks to a only and keeps either the keys the ring places on
# a (`--key-owner a`: local) or on b (`--key-owner b`: each one forwarded a -> b). For each
# run the script reads utime+stime of a and b from /proc/PID/stat before and after, and
# divides by the replies of the whole run (warm-up and window): the entry node's CPU per
# request, local against forwarded (the issue's goal: forwarded <= 1.5x local). a's
# `stats cluster` `link:b:forwarded` is read around each run as a check that local keys
# were not forwarded and remote ones were.
#
# Part "proxy": 3 corecache nodes (--cluster-forward off) behind one nutcracker (twemproxy,
# `distribution: ketama`, `hash: md5`) against 3 memcached 1.6 nodes behind another, same
# run, alternating. CPU per request of the proxy and of the 3 nodes (summed).
#
# Nodes (and the proxies) on NODE_CPU, the loadgen on CLIENT_CPU, each under taskset; free
# ports on 127.0.0.1. Every round runs each kind once per depth, alternating the order
# (A B, B A, ...). 32 connections, 90/10 get/set, 100-byte values, 100k keys prefilled.
# Prints markdown tables of the medians (and writes them to $OUT/summary.md).
#
#   bash scripts/bench-cluster.sh                     # 3 rounds of 6 s, depths 1 and 16
#   ROUNDS=5 DURATION=8s bash scripts/bench-cluster.sh
#   PARTS=forward DEPTHS=16 bash scripts/bench-cluster.sh
#   B_CPU=1 bash scripts/bench-cluster.sh             # node b beside the loadgen instead
#   PARTS=forward RATES="1:30000 16:150000" bash scripts/bench-cluster.sh
#                         # open loop at a fixed total rate per depth: local and forwarded keys
#                         # compared at the same load (CPU per request depends on the batching)
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_CPU=${NODE_CPU:-0}
B_CPU=${B_CPU:-$NODE_CPU}
PROXY_CPU=${PROXY_CPU:-$NODE_CPU}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-6s}
WARMUP=${WARMUP:-1s}
DEPTHS=${DEPTHS:-"1 16"}
CONNS=${CONNS:-32}
PARTS=${PARTS:-"forward proxy"}
RATES=${RATES:-}
OUT=${OUT:-target/bench-cluster}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
require_memcached
if [[ $PARTS == *proxy* ]] && ! command -v nutcracker >/dev/null 2>&1; then
  echo "$(basename "$0"): needs nutcracker (scripts/install-test-deps.sh installs it)" >&2
  exit 1
fi
bench_setup "$OUT" fresh
user=()
[[ $(id -u) -eq 0 ]] && user=(-u root)
WORKLOAD=(--cores "$CLIENT_CPU" --conns "$CONNS" --keys 100000 --value-size 100 --ratio 9:1)

# ticks PID...: utime+stime of the processes, summed, in clock ticks.
ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$t"
}

# measure PART DEPTH KIND ROUND ENTRY_PID "OTHER_PIDS" FWD_PORT LOADGEN-ARGS...: one
# `run`, with the CPU ticks of the entry process and of the others around it, and a's
# forwarded counter (FWD_PORT "" for none), appended to $OUT/runs.tsv.
measure() {
  local part=$1 depth=$2 kind=$3 round=$4 entry=$5 others=$6 fwd_port=$7
  shift 7
  local json="$OUT/$part-d$depth-$kind-r$round.json" e0 o0 f0=0 e1 o1 f1=0
  [[ -n $fwd_port ]] && f0=$(stat_of "$fwd_port" cluster link:b:forwarded)
  e0=$(ticks "$entry")
  # shellcheck disable=SC2086
  o0=$(ticks $others)
  timeout 120 "$LG" run --no-progress "${WORKLOAD[@]}" --depth "$depth" --duration "$DURATION" \
    --warmup "$WARMUP" --json "$json" "$@" >"${json%.json}.txt"
  e1=$(ticks "$entry")
  # shellcheck disable=SC2086
  o1=$(ticks $others)
  [[ -n $fwd_port ]] && f1=$(stat_of "$fwd_port" cluster link:b:forwarded)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$depth" "$kind" "$round" "$json" \
    $((e1 - e0)) $((o1 - o0)) $((f1 - f0)) >>"$OUT/runs.tsv"
  echo "  $part depth $depth $kind round $round: $(grep -m1 'measured after' "${json%.json}.txt" | sed 's/^ *//')"
}

# rate_of DEPTH: `--rate R` when RATES has DEPTH:R.
rate_of() {
  local e
  for e in $RATES; do [[ ${e%%:*} == "$1" ]] && echo "--rate ${e#*:}"; done
  return 0
}

# prefill PORT: every key set once through PORT (and a short run after it).
prefill() {
  timeout 120 "$LG" run --no-progress "${WORKLOAD[@]}" --prefill --duration 1s --warmup 0s \
    --target "127.0.0.1:$1" >"$OUT/prefill-$1.txt"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus; uptime:$(uptime | sed 's/.*up/ up/')"
echo "# commit $(git rev-parse --short HEAD); nodes on cpu$NODE_CPU (b on cpu$B_CPU, proxies on cpu$PROXY_CPU), loadgen on cpu$CLIENT_CPU"

if [[ $PARTS == *forward* ]]; then
  A=$(free_port) B=$(free_port)
  peers="a=127.0.0.1:$A,b=127.0.0.1:$B"
  taskset -c "$NODE_CPU" target/release/corecache -p "$A" -l 127.0.0.1 -U 0 -t 1 --cores "$NODE_CPU" -m 256 \
    --cluster-node a --cluster-peers "$peers" --cluster-membership static 2>"$OUT/a.log" &
  A_PID=$!
  pids+=("$A_PID")
  taskset -c "$B_CPU" target/release/corecache -p "$B" -l 127.0.0.1 -U 0 -t 1 --cores "$B_CPU" -m 256 \
    --cluster-node b --cluster-peers "$peers" --cluster-membership static 2>"$OUT/b.log" &
  B_PID=$!
  pids+=("$B_PID")
  wait_port "$A"
  wait_port "$B"
  prefill "$A"
  echo "## forward: loadgen -> a; local = --key-owner a, remote = --key-owner b (a forwards to b)${RATES:+; open loop, depth:rate $RATES}"
  for round in $(seq "$ROUNDS"); do
    for depth in $DEPTHS; do
      kinds=(local remote)
      ((round % 2 == 0)) && kinds=(remote local)
      for kind in "${kinds[@]}"; do
        owner=a
        [[ $kind == remote ]] && owner=b
        # shellcheck disable=SC2046
        measure forward "$depth" "$kind" "$round" "$A_PID" "$B_PID" "$A" --target "127.0.0.1:$A" \
          --key-owner "$owner" --cluster-peers "$peers" $(rate_of "$depth")
      done
    done
  done
fi

if [[ $PARTS == *proxy* ]]; then
  cc=() mc=() cc_pids=() mc_pids=()
  for i in 1 2 3; do cc+=("$(free_port)"); mc+=("$(free_port)"); done
  peers="c1=127.0.0.1:${cc[0]},c2=127.0.0.1:${cc[1]},c3=127.0.0.1:${cc[2]}"
  for i in 0 1 2; do
    taskset -c "$NODE_CPU" target/release/corecache -p "${cc[$i]}" -l 127.0.0.1 -U 0 -t 1 --cores "$NODE_CPU" \
      -m 256 --cluster-node "c$((i + 1))" --cluster-peers "$peers" --cluster-membership static \
      --cluster-forward off 2>"$OUT/c$((i + 1)).log" &
    cc_pids+=("$!")
    taskset -c "$NODE_CPU" memcached "${user[@]}" -l 127.0.0.1 -p "${mc[$i]}" -U 0 -t 1 -m 256 &
    mc_pids+=("$!")
  done
  pids+=("${cc_pids[@]}" "${mc_pids[@]}")
  # proxy NAME PORTS...: a nutcracker in front of the nodes at PORTS; sets PROXY_PORT, PROXY_PID.
  proxy() {
    local name=$1 conf
    shift
    PROXY_PORT=$(free_port)
    conf="$OUT/nutcracker-$name.yml"
    {
      printf '%s:\n  listen: 127.0.0.1:%s\n  hash: md5\n  distribution: ketama\n' "$name" "$PROXY_PORT"
      printf '  timeout: 2000\n  auto_eject_hosts: false\n  servers:\n'
      for p in "$@"; do printf '    - 127.0.0.1:%s:1\n' "$p"; done
    } >"$conf"
    # Its stats port too (default 22222, which a second one would find taken).
    taskset -c "$PROXY_CPU" nutcracker -c "$conf" -o "$OUT/nutcracker-$name.log" -a 127.0.0.1 \
      -s "$(free_port)" &
    PROXY_PID=$!
    pids+=("$PROXY_PID")
  }
  proxy corecache "${cc[@]}"
  CCP=$PROXY_PORT CCP_PID=$PROXY_PID
  proxy memcached "${mc[@]}"
  MCP=$PROXY_PORT MCP_PID=$PROXY_PID
  for p in "${cc[@]}" "${mc[@]}" "$CCP" "$MCP"; do wait_port "$p"; done
  prefill "$CCP"
  prefill "$MCP"
  echo "## proxy: loadgen -> nutcracker -> 3 nodes (corecache --cluster-forward off, or memcached)"
  for round in $(seq "$ROUNDS"); do
    for depth in $DEPTHS; do
      kinds=(corecache memcached)
      ((round % 2 == 0)) && kinds=(memcached corecache)
      for kind in "${kinds[@]}"; do
        if [[ $kind == corecache ]]; then
          measure proxy "$depth" corecache "$round" "$CCP_PID" "${cc_pids[*]}" "" --target "127.0.0.1:$CCP"
        else
          measure proxy "$depth" memcached "$round" "$MCP_PID" "${mc_pids[*]}" "" --target "127.0.0.1:$MCP"
        fi
      done
    done
  done
  # Every key on the node corecache's ring names: nothing was refused as another's.
  for p in "${cc[@]}"; do
    echo "  corecache node 127.0.0.1:$p: curr_items $(stat_of "$p" "" curr_items)"
  done
fi

python3 - "$OUT/runs.tsv" "$(getconf CLK_TCK)" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
from collections import defaultdict

tsv, hz = sys.argv[1], float(sys.argv[2])
runs = defaultdict(list)  # (part, depth, kind) -> [row]
for line in open(tsv):
    part, depth, kind, rnd, path, entry, others, fwd = line.rstrip("\n").split("\t")
    r = json.load(open(path))
    replies = r["whole_run"]["replies"]
    pct = dict(r["ops"]["all"]["percentiles_ns"])
    errors = sum(r["counters"]["errors"].values()) if isinstance(r["counters"]["errors"], dict) else 0
    runs[(part, int(depth), kind)].append({
        "round": int(rnd),
        "rps": r["throughput"],
        "p50": pct["p50"] / 1e3,
        "p99": pct["p99"] / 1e3,
        "entry_us": int(entry) / hz / replies * 1e6,
        "others_us": int(others) / hz / replies * 1e6,
        "fwd": int(fwd) / replies,
        "errors": errors,
        "backlog": r.get("backlog", 0),
        "rate": r.get("rate"),
        "hit": r["counters"]["hits"] / max(1, r["counters"]["hits"] + r["counters"]["misses"]),
    })

x = lambda r: "n/a" if r != r else f"{r:.2f}x"
med = lambda rows, k: statistics.median(x[k] for x in rows)

def ratio(rows_a, rows_b, k):
    # Per round (the two ran back to back), then the median of those ratios.
    a = {x["round"]: x[k] for x in rows_a}
    b = {x["round"]: x[k] for x in rows_b}
    rs = [a[i] / b[i] for i in a if i in b and b[i] > 0]
    return statistics.median(rs) if rs else float("nan"), (min(rs), max(rs)) if rs else (0, 0)

def table(part, kinds, entry_name, other_name):
    depths = sorted({d for (p, d, _) in runs if p == part})
    if not depths:
        return
    print(f"\n### {part}: medians of {max(len(v) for v in runs.values())} rounds\n")
    print(f"| depth | keys | req/s | p50 µs | p99 µs | {entry_name} CPU µs/req | {other_name} CPU µs/req | forwarded/req | hit ratio | errors | backlog |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for d in depths:
        for k in kinds:
            rows = runs[(part, d, k)]
            rate = rows[0]["rate"]
            print(f"| {d}{f' at {rate:,.0f}/s' if rate else ''} | {k} | {med(rows, 'rps'):,.0f} | {med(rows, 'p50'):.0f} | {med(rows, 'p99'):.0f} | "
                  f"{med(rows, 'entry_us'):.2f} | {med(rows, 'others_us'):.2f} | {med(rows, 'fwd'):.3f} | "
                  f"{100 * med(rows, 'hit'):.1f}% | {sum(x['errors'] for x in rows)} | {sum(x['backlog'] for x in rows)} |")
    print(f"\n| depth | {kinds[1]} / {kinds[0]}: req/s | p99 | {entry_name} CPU/req | {other_name} CPU/req | req/s per round |")
    print("|---|---|---|---|---|---|")
    for d in depths:
        a, b = runs[(part, d, kinds[1])], runs[(part, d, kinds[0])]
        rr, rr_span = ratio(a, b, "rps")
        pr, _ = ratio(a, b, "p99")
        cr, cr_span = ratio(a, b, "entry_us")
        # The other processes' CPU of the baseline can be ~0 (node b with local keys): then n/a.
        ob = med(b, "others_us")
        orr = med(a, "others_us") / ob if ob >= 0.1 else float("nan")
        per = "; ".join(f"{k} " + ", ".join(f"{x['rps'] / 1e3:.0f}k" for x in sorted(runs[(part, d, k)], key=lambda x: x["round"])) for k in kinds)
        print(f"| {d} | {rr:.2f}x ({rr_span[0]:.2f}–{rr_span[1]:.2f}) | {pr:.2f}x | "
              f"**{cr:.2f}x** ({cr_span[0]:.2f}–{cr_span[1]:.2f}) | {x(orr)} | {per} |")

table("forward", ["local", "remote"], "entry node a", "node b")
table("proxy", ["memcached", "corecache"], "nutcracker", "3 nodes")
PY
echo "# done $(date -u +%FT%TZ); uptime:$(uptime | sed 's/.*up/ up/')"
