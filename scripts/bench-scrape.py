#!/usr/bin/env python3
"""Time of one `GET /metrics` over a keep-alive connection, end to end (docs/benchmarks.md,
"Cost of a /metrics scrape every second"): 50 scrapes to warm up, then 5 rounds of 1000.

    taskset -c 0 target/release/corecache -t 2 -p PORT --http-port HTTP_PORT &
    taskset -c 1 python3 scripts/bench-scrape.py HTTP_PORT
"""
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
def one():
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)
    return len(body)
for _ in range(50): one()
for r in range(5):
    t = time.perf_counter()
    for _ in range(1000): size = one()
    print(f"round {r+1}: {(time.perf_counter() - t) * 1e3:.0f} us per scrape (1000 scrapes), body {size} bytes")
