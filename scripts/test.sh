#!/usr/bin/env bash
# The project's test command (README): installs the reference memcached the
# comparison tests use, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
exec cargo test --workspace --locked "$@"
