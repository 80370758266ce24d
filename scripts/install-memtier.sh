#!/usr/bin/env bash
# Builds memtier_benchmark (RedisLabs; speaks memcache_text and memcache_binary, with --tls),
# the independent load client of scripts/bench-tls.sh, into target/tools/memtier_benchmark.
# Not part of the test command. Source: MEMTIER_SRC (a git directory or checkout) when set,
# else a clone of https://github.com/RedisLabs/memtier_benchmark at MEMTIER_REF (default 2.3.0).
# Installs its build dependencies with apt when root (autoconf, automake, libevent-dev,
# libssl-dev, zlib1g-dev, g++). Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/target/tools/memtier_benchmark
if [[ -x $out ]]; then
  echo "$out"
  exit 0
fi
ref=${MEMTIER_REF:-2.3.0}
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq autoconf automake libevent-dev libssl-dev \
    zlib1g-dev g++ make pkg-config >/dev/null
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
if [[ -n ${MEMTIER_SRC:-} ]]; then
  git clone -q "$MEMTIER_SRC" "$build/src"
else
  git clone -q https://github.com/RedisLabs/memtier_benchmark "$build/src"
fi
git -C "$build/src" checkout -q "$ref"
(
  cd "$build/src"
  autoreconf -ivf >/dev/null 2>&1
  ./configure -q >/dev/null
  make -s -j"$(nproc)" >/dev/null 2>&1
)
mkdir -p "$(dirname "$out")"
cp "$build/src/memtier_benchmark" "$out"
echo "$out"
