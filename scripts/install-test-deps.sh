#!/usr/bin/env bash
# Installs what the test suite and the comparison benchmarks talk to: memcached 1.6
# (the reference server), memcaslap (libmemcached-tools), twemproxy (nutcracker), perl's prove
# with the core modules memcached's own test suite uses (scripts/memcached-t.sh), and the
# client libraries the binary-protocol tests use, and Chromium for the status page. Idempotent; when it
# cannot install (not root, no apt), it says so and the tests that need these skip
# with a message of their own.
set -u
need=()
command -v memcached >/dev/null 2>&1 || need+=(memcached)
command -v memcaslap >/dev/null 2>&1 || need+=(libmemcached-tools)
# twemproxy in front of a corecache cluster (engine/tests/cluster_twemproxy.rs).
command -v nutcracker >/dev/null 2>&1 || need+=(nutcracker)
# memcached's t/*.t: prove, Test::More and the core modules they load (Debian's perl
# package brings them all, through perl-modules and perl-base).
if ! command -v prove >/dev/null 2>&1 || ! perl -MTest::More -MTime::HiRes -MIO::Socket::INET \
  -MIO::Socket::UNIX -MSocket -MPOSIX -MData::Dumper -MFile::Temp -MList::Util -MCwd -MFindBin \
  -e 1 >/dev/null 2>&1; then
  need+=(perl)
fi
# The same suite over TLS (SSL_TEST=1, scripts/memcached-t.sh --tls) talks through IO::Socket::SSL.
perl -MIO::Socket::SSL -e 1 >/dev/null 2>&1 || need+=(libio-socket-ssl-perl)
# Client libraries the binary-protocol tests speak through (engine/tests/binary_clients.rs):
# python-binary-memcached, pylibmc in binary mode, and Ruby's dalli (binary only). Debian's
# own interpreters (/usr/bin), which apt's modules are installed for.
/usr/bin/python3 -c 'import bmemcached' >/dev/null 2>&1 || need+=(python3-binary-memcached)
/usr/bin/python3 -c 'import pylibmc' >/dev/null 2>&1 || need+=(python3-pylibmc)
/usr/bin/ruby -e 'require "dalli"' >/dev/null 2>&1 || need+=(ruby ruby-dalli)
# Text-protocol libraries of the 1000-key multi-get test (engine/tests/text_clients.rs).
/usr/bin/python3 -c 'import pymemcache' >/dev/null 2>&1 || need+=(python3-pymemcache)
/usr/bin/python3 -c 'import memcache' >/dev/null 2>&1 || need+=(python3-memcache)
# The HTTP port's status page is loaded in headless Chromium (engine/tests/http_status_page.rs).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# `corecache-loadgen plot` draws its text with a TrueType font.
[[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || need+=(fonts-dejavu-core)
# memjs, node's binary-protocol client, for the SASL PLAIN test (engine/tests/auth.rs), from
# the npm registry into target/tools/node (pinned; Debian's node and npm, installed below if missing).
install_memjs() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/target/tools/node"
  [[ -f $dir/node_modules/memjs/package.json ]] && return 0
  command -v npm >/dev/null 2>&1 || return 0
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save memjs@1.3.2 >/dev/null 2>&1 \
    || echo "install-test-deps: npm install memjs failed; its test will skip" >&2
}
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if ((${#need[@]} == 0)); then
  install_memjs
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: cannot install ${need[*]} (need root and apt-get); tests that use them will skip" >&2
  install_memjs
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
    || echo "install-test-deps: apt-get install ${need[*]} failed; tests that use them will skip" >&2
fi
# Debian starts the packaged memcached on 11211; the tests start their own on
# ephemeral ports and do not want a system instance in the way.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now memcached >/dev/null 2>&1 || true
  systemctl disable --now nutcracker >/dev/null 2>&1 || true
fi
install_memjs
exit 0
