#!/usr/bin/env bash
# Installs what scripts/ketama-fixtures.py needs to regenerate the ketama placement
# fixtures: memcached (through install-test-deps.sh), libmemcached-dev (pylibmc's
# build needs it when pip finds no wheel for this Python) and pylibmc itself.
# Idempotent. The test suite does not need any of this: the fixtures are checked in.
set -u
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
python=${PYTHON:-python3}
if "$python" -c 'import pylibmc' >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 && ! dpkg -s libmemcached-dev >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq libmemcached-dev zlib1g-dev >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq libmemcached-dev zlib1g-dev >/dev/null 2>&1 \
      || echo "install-fixture-deps: apt-get install libmemcached-dev failed" >&2
  }
fi
"$python" -m pip install -q pylibmc || {
  echo "install-fixture-deps: pip install pylibmc failed" >&2
  exit 1
}
