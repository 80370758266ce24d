#!/usr/bin/env bash
# Reserves N 2 MiB hugepages for `hugepages = "on"` (default 512 = 1 GiB) and
# shows the result. Needs root. Persist with vm.nr_hugepages in /etc/sysctl.d/.
set -euo pipefail
pages=${1:-512}
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
