#!/usr/bin/env bash
# Reserves at least N 2 MiB hugepages for `hugepages = "on"` (default 512 = 1 GiB) and
# shows the result; never lowers a larger reservation, and 0 does nothing (the
# systemd unit's ExecStartPre runs it with CORECACHE_HUGEPAGES). Needs root to
# raise it. Persist with vm.nr_hugepages in /etc/sysctl.d/.
set -euo pipefail
pages=${1:-512}
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if (( pages <= have )); then
  echo "nr_hugepages = $have (asked for at least $pages): nothing to do"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-hugepages: run as root (writes /proc/sys/vm/nr_hugepages)" >&2
  exit 1
fi
echo "$pages" > /proc/sys/vm/nr_hugepages
got=$(cat /proc/sys/vm/nr_hugepages)
echo "nr_hugepages = $got (asked for $pages); free: $(grep HugePages_Free /proc/meminfo | awk '{print $2}')"
if (( got < pages )); then
  echo "setup-hugepages: the kernel found only $got contiguous 2 MiB pages; reserve at boot (hugepages=$pages on the kernel command line) for more" >&2
  exit 1
fi
