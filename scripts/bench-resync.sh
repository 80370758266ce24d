#!/usr/bin/env bash
# The "cluster: re-sync of a returning member" figures of docs/benchmarks.md (issue 12):
# how long the walk of the store that re-syncs a member takes, and what it costs the
# traffic the nodes serve meanwhile, for each `--cluster-resync-rate` in RATES.
#
# Three nodes n0, n1, n2 (-t 1 each, gossip, --replicas 2, ack all), n0 and n1 on WALK_CPU,
# n2 on BACK_CPU, on free ports of 127.0.0.1, every node with the same resync rate.
# KEYS items of VALUE bytes are set through the loadgen (`--cluster ketama`: each key to its
# owner, replicated to the next node). Then, for each MODE:
#   stale  n2 SIGSTOPped until n0 and n1 declare it down, then SIGCONT: the walks ship
#          every item n2 holds a replica of, and n2 refuses each (it has that copy).
#   empty  n2 SIGKILLed, declared down, restarted with nothing: every record applies.
# The walk time of each shard is the time between its "re-sync of a returning member
# started" and "... done" log lines (their timestamps); the records, from `stats`
# replica_resynced before and after. With LOAD=1 (the default) a loadgen run against n0
# (LOAD_CPU, 90/10 get/set over the same keys, 8 conns x depth 16, a 0.25 s warm-up and a
# LOAD_SECS window) starts once both walks have started, so that its window lies inside n0's
# walk (the `inside` column says whether n0's walk was still going when the load ended); the
# same run without a re-sync ("quiet") comes first on each cluster.
# A fresh cluster is started and filled for every RATE of every round; the rates alternate
# within each round (ROUNDS of them). The summary gives the median of each figure per rate
# and mode, and of the load's throughput and p99 as ratios to the quiet run of the same
# cluster.
#
#   bash scripts/bench-resync.sh                      # 1M items of 100 B, rates 0 and 50000, 3 rounds
#   KEYS=200000 MODES="stale empty" RATES="0 100000 50000" ROUNDS=1 bash scripts/bench-resync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WALK_CPU=${WALK_CPU:-0}
BACK_CPU=${BACK_CPU:-1}
LOAD_CPU=${LOAD_CPU:-1}
KEYS=${KEYS:-1000000}
VALUE=${VALUE:-100}
MODES=${MODES:-"empty"}
RATES=${RATES:-"0 50000"}
ROUNDS=${ROUNDS:-3}
LOAD=${LOAD:-1}
LOAD_SECS=${LOAD_SECS:-1}
OUT=${OUT:-target/bench-resync}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
bench_setup "$OUT" fresh

cpu_of() { if (($1 == 2)); then echo "$BACK_CPU"; else echo "$WALK_CPU"; fi; }
start_node() { # i: with RATE, logging to $OUT/$TAG-n$i.log
  local i=$1 cpu
  cpu=$(cpu_of "$i")
  taskset -c "$cpu" target/release/corecache -p "${ports[i]}" -t 1 --cores "$cpu" -m 1024 \
    --cluster-node "n$i" --cluster-peers "$peer_list" --cluster-port "${ports[i]}" \
    --replicas 2 --cluster-resync-rate "$RATE" 2>>"$OUT/$TAG-n$i.log" &
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
# cluster_up RATE TAG: three fresh nodes on new ports, every one alive to n0 and n1, filled.
cluster_up() {
  RATE=$1 TAG=$2
  ports=() peers=() node_pid=()
  for i in 0 1 2; do
    ports[i]=$(free_port)
    peers+=("n$i=127.0.0.1:${ports[i]}")
  done
  peer_list=$(
    IFS=,
    echo "${peers[*]}"
  )
  for i in 0 1 2; do start_node "$i"; done
  for i in 0 1; do for m in n0 n1 n2; do [[ $m == "n$i" ]] || until_state "${ports[i]}" "$m" alive; done; done
  local workload=(--cluster ketama --keys "$KEYS" --value-size "$VALUE")
  for i in 0 1 2; do workload+=(--target "127.0.0.1:${ports[i]}"); done
  taskset -c "$LOAD_CPU" "$LG" run "${workload[@]}" --cores "$LOAD_CPU" \
    --conns 8 --depth 16 --prefill --ratio 0:1 --duration 1s --warmup 0s --no-progress >"$OUT/$TAG-prefill.txt" 2>&1
  echo "$TAG: cluster_resync_rate $(stat_of "${ports[0]}" cluster cluster_resync_rate); items: n0 $(stat_of "${ports[0]}" "" curr_items), n1 $(stat_of "${ports[1]}" "" curr_items), n2 $(stat_of "${ports[2]}" "" curr_items)"
}
cluster_down() {
  for i in 0 1 2; do kill "${node_pid[i]}" 2>/dev/null || true; done
  for i in 0 1 2; do wait "${node_pid[i]}" 2>/dev/null || true; done
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
# walked LOG FROM_LINE WHAT: whether the walk's WHAT (started, done) line is there after FROM_LINE.
walked() { [[ $(tail -n +"$2" "$1" | grep -c "re-sync of a returning member $3") -ge 1 ]]; }
until_walks() { # WHAT FROM0 FROM1 (120 s at most)
  for _ in $(seq 2400); do
    walked "$OUT/$TAG-n0.log" "$2" "$1" && walked "$OUT/$TAG-n1.log" "$3" "$1" && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): the walks were not $1 within 120 s" >&2
  exit 1
}
load() { # NAME: a loadgen run against n0 in the background; sets LOAD_PID
  taskset -c "$LOAD_CPU" "$LG" run --target "127.0.0.1:${ports[0]}" --cores "$LOAD_CPU" \
    --conns 8 --depth 16 --keys "$KEYS" --value-size "$VALUE" --ratio 9:1 \
    --duration "$LOAD_SECS"s --warmup 0.25s --no-progress --json "$OUT/$TAG-load-$1.json" >"$OUT/$TAG-load-$1.txt" 2>&1 &
  LOAD_PID=$!
}
# load_figures NAME: "req/s p50 p99 p99.9" (µs) of that run.
load_figures() {
  python3 - "$OUT/$TAG-load-$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = dict(r["ops"]["all"]["percentiles_ns"])
print("%.0f %.0f %.0f %.0f" % (r["throughput"], p["p50"] / 1e3, p["p99"] / 1e3, p["p99.9"] / 1e3))
PY
}

RESULTS=$OUT/results.tsv
printf 'round\trate\tmode\trecords\twalk_n0\twalk_n1\trecords_per_s\treq_per_s\tp50_us\tp99_us\tp999_us\tinside\n' >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for rate in $RATES; do
    cluster_up "$rate" "r$round-rate$rate"
    if [[ $LOAD == 1 ]]; then
      load quiet
      wait "$LOAD_PID"
      read -r rps p50 p99 p999 <<<"$(load_figures quiet)"
      printf '%s\t%s\tquiet\t\t\t\t\t%s\t%s\t%s\t%s\t\n' "$round" "$rate" "$rps" "$p50" "$p99" "$p999" | tee -a "$RESULTS"
    fi
    for mode in $MODES; do
      from0=$(($(wc -l <"$OUT/$TAG-n0.log") + 1))
      from1=$(($(wc -l <"$OUT/$TAG-n1.log") + 1))
      if [[ $mode == stale ]]; then
        kill -STOP "${node_pid[2]}"
      else
        kill -KILL "${node_pid[2]}"
        wait "${node_pid[2]}" 2>/dev/null || true
      fi
      until_state "${ports[0]}" n2 down
      until_state "${ports[1]}" n2 down
      before=$(resynced)
      if [[ $mode == stale ]]; then kill -CONT "${node_pid[2]}"; else start_node 2; fi
      until_walks started "$from0" "$from1"
      rps="" p50="" p99="" p999="" inside=""
      if [[ $LOAD == 1 ]]; then
        load "$mode"
        wait "$LOAD_PID"
        if walked "$OUT/$TAG-n0.log" "$from0" done; then inside=no; else inside=yes; fi
        read -r rps p50 p99 p999 <<<"$(load_figures "$mode")"
      fi
      until_walks done "$from0" "$from1"
      after=$(resynced)
      w0=$(walk_secs "$OUT/$TAG-n0.log" "$from0")
      w1=$(walk_secs "$OUT/$TAG-n1.log" "$from1")
      per_s=$(python3 -c "print(round(($after - $before) / max($w0, $w1)))")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$rate" "$mode" "$((after - before))" \
        "$w0" "$w1" "$per_s" "$rps" "$p50" "$p99" "$p999" "$inside" | tee -a "$RESULTS"
    done
    cluster_down
  done
done

python3 - "$RESULTS" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
# Each re-sync's load against the quiet run of the same cluster, just before it.
quiet = {(r["round"], r["rate"]): r for r in rows if r["mode"] == "quiet"}
def med(xs, fmt):
    return fmt % statistics.median(xs) if xs else ""
def col(runs, name):
    return [float(r[name]) for r in runs if r[name] not in ("", "none")]
def vs_quiet(runs, name):
    return [float(r[name]) / float(quiet[(r["round"], r["rate"])][name])
            for r in runs if r[name] and (r["round"], r["rate"]) in quiet]
print("| resync_rate | mode | runs | records | walk n0 (s) | walk n1 (s) | records/s | req/s on n0 | vs quiet | p99 (µs) | vs quiet | load inside n0's walk |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for rate in dict.fromkeys(r["rate"] for r in rows):
    for mode in dict.fromkeys(r["mode"] for r in rows):
        runs = [r for r in rows if r["rate"] == rate and r["mode"] == mode]
        if not runs:
            continue
        walk = mode != "quiet"
        inside = "%d/%d" % (sum(r["inside"] == "yes" for r in runs), len(runs)) if walk else ""
        print(f"| {rate} | {mode} | {len(runs)} | {med(col(runs, 'records'), '%.0f')} | "
              f"{med(col(runs, 'walk_n0'), '%.2f')} | {med(col(runs, 'walk_n1'), '%.2f')} | "
              f"{med(col(runs, 'records_per_s'), '%.0f')} | {med(col(runs, 'req_per_s'), '%.0f')} | "
              f"{med(vs_quiet(runs, 'req_per_s'), '%.2f') if walk else ''} | {med(col(runs, 'p99_us'), '%.0f')} | "
              f"{med(vs_quiet(runs, 'p99_us'), '%.1fx') if walk else ''} | {inside} |")
PY
cat "$OUT/summary.md"
echo "every run in $RESULTS, summary in $OUT/summary.md"
