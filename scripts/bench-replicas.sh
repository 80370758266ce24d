#!/usr/bin/env bash
# The "cluster: the cost of replicas, and failover under load" figures of
# docs/benchmarks.md (issue 12).
#
# Part "cost": three nodes (-t 1 each, gossip) on NODE_CPU, the loadgen on CLIENT_CPU,
# free ports of 127.0.0.1; the loadgen places keys itself (`--cluster ketama`: each key
# straight to its owner, as a ketama client does). Kinds: r1 (--replicas 1), r2-owner
# (--replicas 2 --replication-ack owner) and r2-all (--replicas 2, ack all, the default).
# Each round starts the three nodes of each kind in turn (the order rotates per round),
# prefills KEYS keys and runs every RATIO at every DEPTH; medians of throughput and p99
# per kind, and the ratio to r1.
#
# Part "failover": three nodes with --replicas R (FAILOVER_REPLICAS, default 1 and 2),
# the loadgen against n0 only (n0 forwards the others' keys), SIGKILL of n1 one second
# into the window: the requests that failed (server errors: n1's keys until membership
# declares it down), the misses (its keys on their new owner, with R = 1), and the
# throughput of the whole window against the same run without a kill.
#
#   bash scripts/bench-replicas.sh                       # 3 rounds of 5 s
#   PARTS=failover bash scripts/bench-replicas.sh
#   ROUNDS=5 DEPTHS="1 16" RATIOS="9:1 1:1" bash scripts/bench-replicas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_CPU=${NODE_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
DEPTHS=${DEPTHS:-"1 16"}
RATIOS=${RATIOS:-"9:1 1:1"}
CONNS=${CONNS:-24}
KEYS=${KEYS:-100000}
PARTS=${PARTS:-"cost failover"}
FAILOVER_REPLICAS=${FAILOVER_REPLICAS:-"1 2"}
OUT=${OUT:-target/bench-replicas}

# shellcheck source=scripts/lib/servers.sh
source scripts/lib/servers.sh
bench_setup "$OUT" fresh

# start_cluster ARGS...: three nodes with ARGS; sets ports, node_pid and targets.
start_cluster() {
  local peers=() i
  ports=() node_pid=() targets=()
  for i in 0 1 2; do
    ports[i]=$(free_port)
    peers+=("n$i=127.0.0.1:${ports[i]}")
    targets+=(--target "127.0.0.1:${ports[i]}")
  done
  local list
  list=$(
    IFS=,
    echo "${peers[*]}"
  )
  for i in 0 1 2; do
    taskset -c "$NODE_CPU" target/release/corecache -p "${ports[i]}" -t 1 --cores "$NODE_CPU" \
      -m 512 --cluster-node "n$i" --cluster-peers "$list" --cluster-port "${ports[i]}" "$@" \
      2>>"$OUT/nodes.log" &
    node_pid[i]=$!
    pids+=("${node_pid[i]}")
  done
  for i in 0 1 2; do wait_port "${ports[i]}"; done
  for i in 0 1 2; do
    for _ in $(seq 200); do
      [[ $(stat_of "${ports[i]}" cluster cluster_live_members) == 3 ]] && break
      sleep 0.05
    done
  done
}
stop_cluster() {
  for p in "${node_pid[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${node_pid[@]}"; do wait "$p" 2>/dev/null || true; done
}
args_of() { # kind
  case $1 in
  r1) echo "--replicas 1" ;;
  r2-owner) echo "--replicas 2 --replication-ack owner" ;;
  r2-all) echo "--replicas 2 --replication-ack all" ;;
  esac
}
# field JSON: "throughput p99_us server_errors misses" of a loadgen result.
fields() {
  python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
p = dict(r["ops"]["all"]["percentiles_ns"])
c = r["whole_run"]
print(f"{r['throughput']:.0f} {p['p99'] / 1e3:.0f} {c['errors']['server_error'] + c['errors']['connection'] + c['errors']['timeout']} {c['misses']}")
EOF
}

if [[ $PARTS == *cost* ]]; then
  kinds=(r1 r2-owner r2-all)
  printf 'round\tkind\tdepth\tratio\trps\tp99_us\n' >"$OUT/cost.tsv"
  for round in $(seq "$ROUNDS"); do
    for k in 0 1 2; do
      kind=${kinds[$(((k + round) % 3))]}
      # shellcheck disable=SC2046
      start_cluster $(args_of "$kind")
      taskset -c "$CLIENT_CPU" "$LG" run "${targets[@]}" --cluster ketama --cores "$CLIENT_CPU" \
        --conns "$CONNS" --depth 16 --keys "$KEYS" --value-size 100 --prefill --ratio 0:1 \
        --duration 1s --warmup 0s --no-progress >/dev/null 2>&1
      for depth in $DEPTHS; do
        for ratio in $RATIOS; do
          j="$OUT/cost-$round-$kind-$depth-${ratio/:/_}.json"
          taskset -c "$CLIENT_CPU" "$LG" run "${targets[@]}" --cluster ketama --cores "$CLIENT_CPU" \
            --conns "$CONNS" --depth "$depth" --keys "$KEYS" --value-size 100 --ratio "$ratio" \
            --duration "$DURATION" --warmup 1s --no-progress --json "$j" >/dev/null 2>&1
          read -r rps p99 _ _ < <(fields "$j")
          printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$kind" "$depth" "$ratio" "$rps" "$p99" >>"$OUT/cost.tsv"
          echo "round $round $kind depth $depth ratio $ratio: $rps req/s, p99 $p99 µs"
        done
      done
      stop_cluster
    done
  done
  {
    echo "| depth | get:set | kind | req/s (median) | vs r1 | p99 µs (median) |"
    echo "|---|---|---|---|---|---|"
    for depth in $DEPTHS; do
      for ratio in $RATIOS; do
        base=$(awk -F'\t' -v d="$depth" -v r="$ratio" '$2 == "r1" && $3 == d && $4 == r { print $5 }' "$OUT/cost.tsv" | median)
        for kind in r1 r2-owner r2-all; do
          rps=$(awk -F'\t' -v k="$kind" -v d="$depth" -v r="$ratio" '$2 == k && $3 == d && $4 == r { print $5 }' "$OUT/cost.tsv" | median)
          p99=$(awk -F'\t' -v k="$kind" -v d="$depth" -v r="$ratio" '$2 == k && $3 == d && $4 == r { print $6 }' "$OUT/cost.tsv" | median)
          echo "| $depth | $ratio | $kind | $rps | $(python3 -c "print(f'{$rps / $base:.2f}x')") | $p99 |"
        done
      done
    done
  } | tee "$OUT/summary.md"
fi

if [[ $PARTS == *failover* ]]; then
  {
    echo
    echo "| replicas | run | req/s (window) | failed requests | misses | p99 µs |"
    echo "|---|---|---|---|---|---|"
  } | tee -a "$OUT/summary.md"
  for r in $FAILOVER_REPLICAS; do
    for run in quiet kill; do
      start_cluster --replicas "$r"
      taskset -c "$CLIENT_CPU" "$LG" run "${targets[@]}" --cluster ketama --cores "$CLIENT_CPU" \
        --conns "$CONNS" --depth 16 --keys "$KEYS" --value-size 100 --prefill --ratio 0:1 \
        --duration 1s --warmup 0s --no-progress >/dev/null 2>&1
      j="$OUT/failover-$r-$run.json"
      taskset -c "$CLIENT_CPU" "$LG" run --target "127.0.0.1:${ports[0]}" --cores "$CLIENT_CPU" \
        --conns "$CONNS" --depth 1 --keys "$KEYS" --value-size 100 --ratio 9:1 \
        --duration 5s --warmup 1s --no-progress --json "$j" >/dev/null 2>&1 &
      lg=$!
      if [[ $run == kill ]]; then
        sleep 2 # the warm-up and one second of the window
        kill -KILL "${node_pid[1]}"
      fi
      wait "$lg" || true
      read -r rps p99 failed misses < <(fields "$j")
      echo "| $r | $run | $rps | $failed | $misses | $p99 |" | tee -a "$OUT/summary.md"
      stop_cluster
    done
  done
fi
echo "summary in $OUT/summary.md"
