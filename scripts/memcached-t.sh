#!/usr/bin/env bash
# memcached 1.6.18's own test suite against corecache (docs/compat.md): every file named in
# scripts/memcached-t/must-pass must pass, and every file in scripts/memcached-t/known (the
# ones corecache does not pass yet, each with its reason) must still fail. A known file that
# passes fails the run too, so that it moves to must-pass and the known list only shrinks.
#
#   bash scripts/memcached-t.sh                    # target/release/corecache
#   bash scripts/memcached-t.sh /usr/bin/memcached # the same lists against another server
#   bash scripts/memcached-t.sh --tls [SERVER]     # the same over TLS (the suite's SSL_TEST=1)
#
# With --tls the server runs with -Z and the suite's own certificates, and every file speaks
# TLS (IO::Socket::SSL); the lists are must-pass plus tls-must-pass (the suite's ssl_*.t
# files) and known plus tls-known (files that pass in the clear but not over TLS, each with
# its reason; empty when there are none). Logs go to target/memcached-t-tls.
#
# The suite is not part of the project: it is ../shared/memcached-t beside the clone
# (MEMCACHED_T_DIR, relative to the project root, overrides). When it is missing the run fails under CI=true and is
# skipped with a message otherwise. Each file runs on its own through the suite's run.sh,
# JOBS (default 2) at a time, and is stopped after MEMCACHED_T_FILE_TIMEOUT seconds
# (default 90): a file that did not finish counts as failed. The log of every file is
# kept in target/memcached-t/NAME.log. A file that needs a corecache option memcached gets
# from its debug build (expirations: `-o debug_time`, for `debugtime`) runs corecache
# through a wrapper that adds it (extra_opts below). The last line of the output is
#   memcached-t: N passed, M failed, K known failing, P known now passing
# and the exit code is 0 only when M and P are both 0.
set -euo pipefail
tls=false
if [[ ${1:-} == --tls ]]; then
  tls=true
  shift
fi
bin=${1:-}
[[ -z $bin ]] || bin=$(readlink -m "$bin")
cd "$(dirname "$0")/.."
root=$PWD
bin=${bin:-$root/target/release/corecache}
suite=${MEMCACHED_T_DIR:-../shared/memcached-t}
per_file=${MEMCACHED_T_FILE_TIMEOUT:-90}
jobs=${JOBS:-2}
logs=target/memcached-t
$tls && logs=target/memcached-t-tls

unavailable() { # why
  if [[ ${CI:-} == true ]]; then
    echo "memcached-t: $1; CI needs it (../shared beside the clone)" >&2
    exit 1
  fi
  echo "memcached-t: skipped: $1"
  exit 0
}
[[ -f $suite/run.sh ]] || unavailable "no memcached test suite at $suite/run.sh"
command -v prove >/dev/null || unavailable "perl's prove is missing (scripts/install-test-deps.sh installs it)"
if $tls; then
  perl -MIO::Socket::SSL -e 1 >/dev/null 2>&1 \
    || unavailable "perl's IO::Socket::SSL is missing (scripts/install-test-deps.sh installs it)"
  export SSL_TEST=1
fi
[[ -x $bin ]] || { echo "memcached-t: $bin is missing; build it: cargo build --release --bin corecache" >&2; exit 1; }

# Reads a list: one suite file name a line (with or without .t), `#` starts a comment.
# Sets `names` and `reasons` (the comment on the entry's own line, empty when it has none).
read_list() { # file
  names=() reasons=()
  local line name
  while IFS= read -r line || [[ -n $line ]]; do
    name=${line%%#*}
    name=${name//[[:space:]]/}
    [[ -n $name ]] || continue
    name=${name%.t}
    [[ -f $suite/t/$name.t ]] || { echo "memcached-t: $1 names $name, which is not a file of $suite/t" >&2; exit 1; }
    names+=("$name")
    if [[ $line == *'#'* ]]; then reasons+=("$(sed 's/^[^#]*#[[:space:]]*//' <<<"$line")"); else reasons+=(""); fi
  done <"$1"
}
read_list scripts/memcached-t/must-pass
must=("${names[@]}")
if $tls; then
  read_list scripts/memcached-t/tls-must-pass
  must+=("${names[@]}")
fi
known=()
declare -A why
add_known() { # list file
  read_list "$1"
  local i
  for i in "${!names[@]}"; do
    [[ -n ${reasons[$i]} ]] || { echo "memcached-t: known entry ${names[$i]} of $1 has no reason (# why, on its line)" >&2; exit 1; }
    known+=("${names[$i]}")
    why[${names[$i]}]=${reasons[$i]}
  done
}
add_known scripts/memcached-t/known
if $tls; then
  add_known scripts/memcached-t/tls-known
  # A file known to fail over TLS only is no longer a must-pass file there.
  declare -A tls_only
  for n in "${names[@]}"; do tls_only[$n]=1; done
  kept=()
  for n in "${must[@]}"; do [[ -n ${tls_only[$n]+x} ]] || kept+=("$n"); done
  must=("${kept[@]}")
fi
for n in "${must[@]}"; do
  [[ -z ${why[$n]+x} ]] || { echo "memcached-t: $n is on both lists" >&2; exit 1; }
done

rm -rf "$logs"
mkdir -p "$logs"
suite=$(cd "$suite" && pwd)
started=$SECONDS
$tls && echo "memcached-t: over TLS (SSL_TEST=1)"
echo "memcached-t: $(basename "$bin") against $((${#must[@]} + ${#known[@]})) files of $suite, $jobs at a time, ${per_file} s each at most"

# Options a file needs from corecache that memcached gets from how it was built. run.sh
# passes the suite's flags to the server unchanged, so for these files the server is a
# wrapper that adds the options. Only corecache gets them (another server, memcached
# included, runs as it is).
#   expirations: moves the clock with `debugtime`, which memcached serves only in its
#   debug builds (memcached-debug) and corecache only with -o debug_time (docs/compat.md).
declare -A extra_opts=([expirations]="-o debug_time")
is_corecache=false
"$bin" -V 2>/dev/null | grep -q corecache && is_corecache=true

# One file through run.sh; its verdict (pass, skip or fail) and seconds go to NAME.result.
run_one() { # name
  local t0=$SECONDS verdict=fail server=$bin
  if $is_corecache && [[ -n ${extra_opts[$1]:-} ]]; then
    server=$root/$logs/$1.server
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$bin" "${extra_opts[$1]}" >"$server"
    chmod +x "$server"
  fi
  MEMCACHED_T_TIMEOUT=$per_file JOBS=1 bash "$suite/run.sh" "$server" "$1" >"$logs/$1.log" 2>&1 || true
  if grep -q '^memcached-t: 1 passed' "$logs/$1.log"; then
    verdict=pass
  elif grep -q '^memcached-t: 0 passed, 0 failed, 1 skipped' "$logs/$1.log"; then
    verdict=skip
  fi
  echo "$verdict $((SECONDS - t0))" >"$logs/$1.result"
}
running=0
for n in "${must[@]}" "${known[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$n" &
  running=$((running + 1))
done
wait

# Why a file did not pass, in a few words from its log.
failure_of() { # name
  local log=$logs/$1.log
  if grep -q '^run.sh: timed out' "$log"; then
    echo "did not finish within $per_file s"
  elif grep -qE '^t/[^ ]+\.t \.+ skipped' "$log"; then
    grep -m1 -oE 'skipped: .*' "$log"
  else
    grep -m1 -E '^not ok|Dubious|Bailout|No plan|Failed [0-9]+/' "$log" || echo "see $log"
  fi
}
passed=0 failed=0 still=0 now=0
for n in "${must[@]}"; do
  read -r verdict secs <"$logs/$n.result"
  if [[ $verdict == pass ]]; then
    passed=$((passed + 1))
    printf '  ok          %-20s %4d s\n' "$n" "$secs"
  else
    failed=$((failed + 1))
    printf '  FAILED      %-20s %4d s  %s\n' "$n" "$secs" "$(failure_of "$n")"
    # The suite's own diagnostics: which test, what came back, what was expected.
    grep -E '^#' "$logs/$n.log" | head -20 | sed 's/^/                  /' || true
  fi
done
for n in "${known[@]}"; do
  read -r verdict secs <"$logs/$n.result"
  if [[ $verdict == pass ]]; then
    now=$((now + 1))
    printf '  NOW PASSES  %-20s %4d s  known file now passes: move it to must-pass\n' "$n" "$secs"
  else
    still=$((still + 1))
    late=""
    grep -q '^run.sh: timed out' "$logs/$n.log" && late=" [did not finish within $per_file s]"
    printf '  known       %-20s %4d s  %s%s\n' "$n" "$secs" "${why[$n]}" "$late"
  fi
done
echo "memcached-t: logs in $root/$logs, wall time $((SECONDS - started)) s"
echo "memcached-t: $passed passed, $failed failed, $still known failing, $now known now passing"
((failed == 0 && now == 0))
