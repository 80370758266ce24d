#!/usr/bin/env python3
"""UDP reflection amplification of corecache, with and without its guard.

    python3 scripts/bench-udp-amplification.py [target/release/corecache]

Starts the server twice on free loopback ports, one shard each: once with the guard off
(network.udp_max_reply = 1g, udp_reply_rate = 0: what corecache did before the guard) and
once with the defaults (64k per request datagram, 1m/s per source). Stores one value per
size over TCP, then sends the smallest request that fetches it ("get k\\r\\n" in one framed
datagram) and counts the reply bytes that arrive. Amplification = reply bytes / request
bytes, UDP payloads both (IP and UDP headers left out). Then a flood: 200 such requests
back to back, reply bytes received within a second.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/corecache"


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(toml):
    tcp, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    path = tempfile.mktemp(suffix=".toml")
    with open(path, "w") as f:
        f.write(toml)
    p = subprocess.Popen([BIN, "--config", path, "-p", str(tcp), "-U", str(udp), "-t", "1",
                          "-m", "256"], stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", tcp), timeout=0.1).close()
            return p, tcp, udp
        except OSError:
            time.sleep(0.01)
    raise SystemExit("server did not start")


def set_value(tcp, key, size):
    c = socket.create_connection(("127.0.0.1", tcp))
    c.sendall(b"set %s 0 0 %d\r\n" % (key, size) + b"x" * size + b"\r\n")
    assert c.recv(100) == b"STORED\r\n"
    c.close()


def receive(s, quiet):
    s.settimeout(quiet)
    got = 0
    try:
        while True:
            got += len(s.recv(65536))
    except socket.timeout:
        return got


def udp_socket(udp):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root): lose nothing
    s.connect(("127.0.0.1", udp))
    return s


def measure(label, toml):
    p, tcp, udp = start(toml)
    try:
        rows = []
        for size in (1000, 60_000, 1_000_000):
            key = b"k%d" % size
            set_value(tcp, key, size)
            s = udp_socket(udp)
            req = struct.pack(">HHHH", 1, 0, 1, 0) + b"get " + key + b"\r\n"
            s.send(req)
            got = receive(s, 0.5)
            rows.append((size, len(req), got))
            s.close()
        s = udp_socket(udp)
        req = struct.pack(">HHHH", 2, 0, 1, 0) + b"get k60000\r\n"
        t0 = time.time()
        for _ in range(200):
            s.send(req)
        flood = receive(s, 1.0)
        elapsed = time.time() - t0
        for size, sent, got in rows:
            print(f"{label:8} value {size:>9,} B: request {sent} B, reply {got:>10,} B, "
                  f"amplification {got / sent:>9,.0f}x")
        print(f"{label:8} flood: 200 requests of {len(req)} B ({200 * len(req):,} B), "
              f"{flood:,} B of replies in {elapsed:.1f} s")
    finally:
        p.terminate()
        p.wait()


measure("off", "[network]\nudp_max_reply = \"1g\"\nudp_reply_rate = \"0\"\n")
measure("default", "")
