#!/usr/bin/env bash
# Runs the codec's cargo-fuzz targets (proto/fuzz/) on the release-optimised code.
#
#   scripts/fuzz.sh SECONDS [TARGET...]   # default: every target, one after another
#   JOBS=N scripts/fuzz.sh ...            # N targets at once (default 1)
#   NICE=19 scripts/fuzz.sh ...           # niceness (default 19: the machine stays usable)
#
# Needs rustup's nightly toolchain; installs cargo-fuzz when it is missing. The grown
# corpus goes to proto/fuzz/corpus/TARGET (git-ignored), seeds are read from
# proto/fuzz/seeds/TARGET, findings land in proto/fuzz/artifacts/TARGET. Each target's
# libFuzzer log is kept in proto/fuzz/logs/TARGET.log; its last status line (#execs,
# cov, ft, corpus) is printed at the end. Exit status: 1 when any target found a crash.
set -euo pipefail
secs=${1:?usage: fuzz.sh SECONDS [TARGET...]}; shift
cd "$(dirname "${BASH_SOURCE[0]}")/../proto"
targets=("$@")
(( ${#targets[@]} )) || mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
nice -n "${NICE:-19}" cargo +nightly fuzz build -O
mkdir -p fuzz/logs
run() {
  local t=$1
  mkdir -p "fuzz/corpus/$t"
  local seeds=()
  [[ -d fuzz/seeds/$t ]] && seeds=("fuzz/seeds/$t")
  nice -n "${NICE:-19}" cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1
}
pids=(); names=(); status=0
for t in "${targets[@]}"; do
  while (( ${#pids[@]} >= ${JOBS:-1} )); do
    wait "${pids[0]}" || status=1; pids=("${pids[@]:1}")
  done
  run "$t" & pids+=($!); names+=("$t")
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
for t in "${names[@]}"; do
  echo "== $t: $(grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1)"
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "fuzz/logs/$t.log" || true
  ls "fuzz/artifacts/$t" 2>/dev/null | sed 's/^/   finding: /' || true
done
exit $status
