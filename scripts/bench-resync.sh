#!/usr/bin/env bash
# The "cluster: re-sync of a returning member" figures of docs/benchmarks.md (issue 12):
# how long the walk of the store that re-syncs a member takes, and what it costs the
# traffic the nodes serve meanwhile.
#
# Three nodes n0, n1, n2 (-t 1 each, gossip, --replicas 2, ack all), n0 and n1 on WALK_CPU,
# n2 on BACK_CPU, on free ports of 127.0.0.1. KEYS items of VALUE bytes are set through
# the loadgen (`--cluster ketama`: each key to its owner, replicated to the next node).
# Then, for each MODE:
#   stale  n2 SIGSTOPped until n0 and n1 declare it down, then SIGCONT: the walks ship
#          every item n2 holds a replica of, and n2 refuses each (it has that copy).
#   empty  n2 SIGKILLed, declared down, restarted with nothing: every record applies.
# The walk time of each shard is the time between its "re-sync of a returning member
# started" and "... done" log lines (their timestamps); the records, from `stats`
# replica_resynced before and after. With LOAD=1 (the default) a loadgen run against n0
# (LOAD_CPU, 90/10 get/set over the same keys, 8 conns x depth 16, 1 s warm-up and a
# LOAD_SECS window) covers the re-sync of each mode, which starts half a second into the
# window, and the same run without a re-sync comes first: throughput and latency of each
# (compare the window with the walk times: the walk covers only part of it).
#
#   bash scripts/bench-resync.sh                      # 1M items of 100 B
#   KEYS=200000 MODES=empty bash scripts/bench-resync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WALK_CPU=${WALK_CPU:-0}
BACK_CPU=${BACK_CPU:-1}
LOAD_CPU=${LOAD_CPU:-1}
KEYS=${KEYS:-1000000}
VALUE=${VALUE:-100}
MODES=${MODES:-"stale empty"}
LOAD=${LOAD:-1}
LOAD_SECS=${LOAD_SECS:-4}
OUT=${OUT:-target/bench-resync}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
bench_setup "$OUT" fresh

ports=() peers=()
for i in 0 1 2; do
  ports[i]=$(free_port)
  peers+=("n$i=127.0.0.1:${ports[i]}")
done
peer_list=$(
  IFS=,
  echo "${peers[*]}"
)
cpu_of() { if (($1 == 2)); then echo "$BACK_CPU"; else echo "$WALK_CPU"; fi; }
node_pid=()
start_node() { # i
  local i=$1 cpu
  cpu=$(cpu_of "$i")
  taskset -c "$cpu" target/release/corecache -p "${ports[i]}" -t 1 --cores "$cpu" -m 1024 \
    --cluster-node "n$i" --cluster-peers "$peer_list" --cluster-port "${ports[i]}" \
    --replicas 2 2>>"$OUT/n$i.log" &
  node_pid[i]=$!
  pids+=("${node_pid[i]}")
  wait_port "${ports[i]}"
}
# until_state PORT MEMBER STATE: waits (30 s at most) until the node on PORT says so.
until_state() {
  for _ in $(seq 600); do
    [[ $(stat_of "$1" cluster "member:$2:state") == "$3" ]] && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): 127.0.0.1:$1 never saw $2 $3" >&2
  exit 1
}
resynced() { echo $(($(stat_of "${ports[0]}" "" replica_resynced) + $(stat_of "${ports[1]}" "" replica_resynced))); }
# walk_secs LOG FROM_LINE: seconds from the "started" to the "done" line after line FROM_LINE.
walk_secs() {
  tail -n +"$2" "$1" | python3 -c '
import re, sys, datetime
t = {}
for line in sys.stdin:
    m = re.match(r"(\S+)\s.*re-sync of a returning member (started|done)", re.sub(r"\x1b\[[0-9;]*m", "", line))
    if m:
        t[m.group(2)] = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
print("%.3f" % (t["done"] - t["started"]).total_seconds() if len(t) == 2 else "none")'
}
until_walks_done() { # FROM0 FROM1
  for _ in $(seq 1200); do
    if [[ $(tail -n +"$1" "$OUT/n0.log" | grep -c "re-sync of a returning member done") -ge 1 &&
      $(tail -n +"$2" "$OUT/n1.log" | grep -c "re-sync of a returning member done") -ge 1 ]]; then
      return 0
    fi
    sleep 0.05
  done
  echo "$(basename "$0"): the walks did not end within 60 s" >&2
  exit 1
}
WORKLOAD=(--cluster ketama --keys "$KEYS" --value-size "$VALUE")
for i in 0 1 2; do WORKLOAD+=(--target "127.0.0.1:${ports[i]}"); done
load() { # NAME: a loadgen run against n0 in the background; sets LOAD_PID
  taskset -c "$LOAD_CPU" "$LG" run --target "127.0.0.1:${ports[0]}" --cores "$LOAD_CPU" \
    --conns 8 --depth 16 --keys "$KEYS" --value-size "$VALUE" --ratio 9:1 \
    --duration "$LOAD_SECS"s --warmup 1s --no-progress --json "$OUT/load-$1.json" >"$OUT/load-$1.txt" 2>&1 &
  LOAD_PID=$!
}

for i in 0 1 2; do start_node "$i"; done
for i in 0 1; do for m in n0 n1 n2; do [[ $m == "n$i" ]] || until_state "${ports[i]}" "$m" alive; done; done
echo "prefill: $KEYS items of $VALUE B"
taskset -c "$LOAD_CPU" "$LG" run "${WORKLOAD[@]}" --cores "$LOAD_CPU" \
  --conns 8 --depth 16 --prefill --ratio 0:1 --duration 1s --warmup 0s --no-progress >"$OUT/prefill.txt" 2>&1
echo "items: n0 $(stat_of "${ports[0]}" "" curr_items), n1 $(stat_of "${ports[1]}" "" curr_items), n2 $(stat_of "${ports[2]}" "" curr_items)"
if [[ $LOAD == 1 ]]; then
  load quiet
  wait "$LOAD_PID"
fi

{
  echo "| mode | records shipped | walk n0 (s) | walk n1 (s) | records/s (both) |"
  echo "|---|---|---|---|---|"
} >"$OUT/summary.md"
for mode in $MODES; do
  from0=$(($(wc -l <"$OUT/n0.log") + 1))
  from1=$(($(wc -l <"$OUT/n1.log") + 1))
  if [[ $mode == stale ]]; then
    kill -STOP "${node_pid[2]}"
  else
    kill -KILL "${node_pid[2]}"
    wait "${node_pid[2]}" 2>/dev/null || true
  fi
  until_state "${ports[0]}" n2 down
  until_state "${ports[1]}" n2 down
  before=$(resynced)
  [[ $LOAD == 1 ]] && load "$mode"
  if [[ $LOAD == 1 ]]; then sleep 1.5; fi # the load's warm-up and half a second, without a re-sync
  if [[ $mode == stale ]]; then kill -CONT "${node_pid[2]}"; else start_node 2; fi
  until_walks_done "$from0" "$from1"
  after=$(resynced)
  w0=$(walk_secs "$OUT/n0.log" "$from0")
  w1=$(walk_secs "$OUT/n1.log" "$from1")
  rate=$(python3 -c "print(round(($after - $before) / max($w0, $w1)))")
  echo "| $mode | $((after - before)) | $w0 | $w1 | $rate |" | tee -a "$OUT/summary.md"
  [[ $LOAD == 1 ]] && wait "$LOAD_PID"
done
if [[ $LOAD == 1 ]]; then
  {
    echo
    echo "| load on n0 (depth 16, 8 conns, ${LOAD_SECS} s) | requests/s | p50 (µs) | p99 (µs) | p99.9 (µs) |"
    echo "|---|---|---|---|---|"
    for f in "$OUT"/load-*.json; do
      python3 - "$f" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
name = sys.argv[1].rsplit("load-", 1)[1][:-5]
p = dict(r["ops"]["all"]["percentiles_ns"])
print(f"| {name} | {r['throughput']:,.0f} | {p['p50'] / 1e3:.0f} | {p['p99'] / 1e3:.0f} | {p['p99.9'] / 1e3:.0f} |")
EOF
    done
  } | tee -a "$OUT/summary.md"
fi
echo "summary in $OUT/summary.md"
