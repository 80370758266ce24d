#!/usr/bin/env python3
"""Writes the ketama placement fixtures that engine/cluster/tests/ketama_fixtures.rs checks.

For each configuration it starts real memcached processes on free loopback ports,
stores keys `key:0` .. `key:99999` through pylibmc with the configuration's
behaviours, then asks every memcached which of the keys it holds. The fixture
records the server list exactly as the client was given it (the ports were free
when the script ran, so they are part of the fixture) and, per key, the index of
the server that holds it: the placement the real client chose, not one we computed.

It installs nothing: run scripts/install-fixture-deps.sh first (memcached,
libmemcached-dev, pylibmc). Run from the project root:

    python3 scripts/ketama-fixtures.py [OUT_DIR [CONFIG...]]

Fixture format (text, one item per line):
    client pylibmc <version> libmemcached <version>
    kind <libketama|libmemcached-ketama>
    behaviors <the pylibmc behaviours, as a Python dict literal>
    member <host>:<port> <weight>        (one per server, in client order)
    keys key:{i} <count>
    owners <one character per key: the index (0-9, then a-z) of the server that holds key:{i}>
"""

import os
import shutil
import socket
import subprocess
import sys
import time

import pylibmc

KEYS = 100_000
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
BATCH = 1_000

# (file stem, ring kind, pylibmc behaviours, weights). `ketama_weighted` is
# libmemcached's MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (MD5 keys, 160 weighted points,
# libketama's layout); `ketama` is MEMCACHED_BEHAVIOR_KETAMA (default one-at-a-time
# hash, 100 points), which libmemcached turns weighted when a server's weight is
# above 1: the weights (2, 2, 2) case shows that equal weights are not enough to
# tell the two apart.
CONFIGS = [
    ("libketama-3-equal", "libketama", {"ketama_weighted": True}, [1, 1, 1]),
    ("libketama-3-unequal", "libketama", {"ketama_weighted": True}, [1, 2, 5]),
    ("libketama-5-equal", "libketama", {"ketama_weighted": True}, [1, 1, 1, 1, 1]),
    ("libketama-5-unequal", "libketama", {"ketama_weighted": True}, [3, 1, 4, 1, 5]),
    # With 25 equal weights libmemcached's float arithmetic gives every server 156
    # points, not 160.
    ("libketama-25-equal", "libketama", {"ketama_weighted": True}, [1] * 25),
    ("libmemcached-ketama-3-equal", "libmemcached-ketama", {"ketama": True}, [1, 1, 1]),
    ("libmemcached-ketama-3-unequal", "libmemcached-ketama", {"ketama": True}, [1, 2, 5]),
    ("libmemcached-ketama-3-double", "libmemcached-ketama", {"ketama": True}, [2, 2, 2]),
    ("libmemcached-ketama-5-equal", "libmemcached-ketama", {"ketama": True}, [1, 1, 1, 1, 1]),
    ("libmemcached-ketama-5-unequal", "libmemcached-ketama", {"ketama": True}, [3, 1, 4, 1, 5]),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_accepting(port, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"ketama-fixtures: memcached on port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"ketama-fixtures: nothing accepts on port {port}")


def start_memcached(count):
    # memcached refuses to run as root unless told which user to be.
    user = ["-u", "root"] if os.geteuid() == 0 else []
    procs = []
    for _ in range(count):
        port = free_port()
        proc = subprocess.Popen(
            ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-t", "1", *user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append((port, proc))
    for port, proc in procs:
        wait_accepting(port, proc)
    return procs


def owners_for(ports, weights, behaviors):
    servers = [f"127.0.0.1:{p}:{w}" for p, w in zip(ports, weights)]
    client = pylibmc.Client(servers, behaviors=behaviors)
    keys = [f"key:{i}" for i in range(KEYS)]
    for start in range(0, KEYS, BATCH):
        failed = client.set_multi({k: b"1" for k in keys[start : start + BATCH]})
        if failed:
            sys.exit(f"ketama-fixtures: {len(failed)} sets failed, e.g. {failed[:3]}")
    owners = [None] * KEYS
    for index, port in enumerate(ports):
        # One server: libmemcached sends every key to it, whatever the hash.
        single = pylibmc.Client([f"127.0.0.1:{port}"])
        for start in range(0, KEYS, BATCH):
            for key in single.get_multi(keys[start : start + BATCH]):
                i = int(key.split(":")[1])
                if owners[i] is not None:
                    sys.exit(f"ketama-fixtures: {key} is on servers {owners[i]} and {index}")
                owners[i] = index
    missing = [i for i, o in enumerate(owners) if o is None]
    if missing:
        sys.exit(f"ketama-fixtures: {len(missing)} keys on no server (evicted?), e.g. key:{missing[0]}")
    return servers, owners


def main():
    only = set(sys.argv[2:])
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "engine/cluster/tests/fixtures"
    if shutil.which("memcached") is None:
        sys.exit("ketama-fixtures: needs memcached (run scripts/install-fixture-deps.sh)")
    os.makedirs(out_dir, exist_ok=True)
    client_line = f"client pylibmc {pylibmc.__version__} libmemcached {pylibmc.libmemcached_version}"
    for stem, kind, behaviors, weights in CONFIGS:
        if only and stem not in only:
            continue
        procs = start_memcached(len(weights))
        try:
            servers, owners = owners_for([p for p, _ in procs], weights, behaviors)
        finally:
            for _, proc in procs:
                proc.terminate()
            for _, proc in procs:
                proc.wait()
        lines = [client_line, f"kind {kind}", f"behaviors {behaviors!r}"]
        for spec in servers:
            host, port, weight = spec.rsplit(":", 2)
            lines.append(f"member {host}:{port} {weight}")
        lines.append(f"keys key:{{i}} {KEYS}")
        lines.append("owners " + "".join(DIGITS[o] for o in owners))
        path = os.path.join(out_dir, f"{stem}.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        counts = [owners.count(i) for i in range(len(weights))]
        print(f"{path}: weights {weights} keys per server {counts}")


if __name__ == "__main__":
    main()
