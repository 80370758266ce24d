#!/usr/bin/env python3
"""Hit ratio during a join, with and without warm-up (docs/benchmarks.md, "warm-up").

Four nodes are listed, three run (gossip, --replicas 1); KEYS keys are written through n0.
A cache-aside client then reads zipf-distributed keys through n0 (pipelined in batches) and
sets each key that misses, as an application refilling from its database would. After
JOIN_AT seconds n3 starts, with --cluster-warmup 120 or 0, and takes about a quarter of the
keys. The hit ratio is counted per BUCKET seconds; modes alternate, ROUNDS times each.
Writes a CSV (median hit ratio per bucket and mode) and an SVG plot.

    cargo build --release
    python3 scripts/bench-warmup.py target/release/corecache [--rounds 3] [--keys 100000]
        [--csv /tmp/warmup.csv] [--svg docs/img/warmup-hit-ratio.svg]

The client is one Python thread (about 40-80k gets/s here); it and the four nodes share the
machine's cores, so the figure to read is the shape (the dip and its recovery), not the rate.
"""
import argparse, bisect, random, socket, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("binary")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--keys", type=int, default=100000)
ap.add_argument("--zipf", type=float, default=0.99)
ap.add_argument("--join-at", type=float, default=3.0)
ap.add_argument("--seconds", type=float, default=15.0)
ap.add_argument("--bucket", type=float, default=0.25)
ap.add_argument("--csv", default="/tmp/warmup.csv")
ap.add_argument("--svg", default="docs/img/warmup-hit-ratio.svg")
ap.add_argument("--miss-latency", action="store_true",
                help="instead: the latency of a miss during warm-up (depth 1, 3 nodes, keys nobody has)")
args = ap.parse_args()


def free_ports(n):
    """n data ports whose gossip ports (+1000) are free too."""
    out = []
    while len(out) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p + 1000 > 65535 or p in out:
            continue
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p + 1000))
        except OSError:
            continue
        finally:
            u.close()
        out.append(p)
    return out


class Conn:
    def __init__(self, port, deadline=10.0):
        end = time.time() + deadline
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.02)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(1 << 20)
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(1 << 20)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def stats(self, what=""):
        self.s.sendall(f"stats {what}\r\n".encode())
        out = {}
        while True:
            l = self.line().decode()
            if l == "END":
                return out
            _, k, v = l.split(" ", 2)
            out[k] = v


def start(port, name, peers, warmup):
    return subprocess.Popen(
        [args.binary, "-p", str(port), "-U", "0", "-t", "1", "-m", "256",
         "--cluster-node", name, "--cluster-peers", peers, "--replicas", "1",
         "--cluster-warmup", str(warmup)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def until(cond, within, what):
    end = time.time() + within
    while not cond():
        if time.time() > end:
            sys.exit(f"bench-warmup: not {what} within {within} s")
        time.sleep(0.02)


weights = [1.0 / (i + 1) ** args.zipf for i in range(args.keys)]
cum = []
acc = 0.0
for w in weights:
    acc += w
    cum.append(acc)
keys = [f"warm:{i}" for i in range(args.keys)]
VALUE = b"x" * 100


def one_round(warmup):
    ports = free_ports(4)
    peers = ",".join(f"n{i}=127.0.0.1:{p}" for i, p in enumerate(ports))
    procs = [start(ports[i], f"n{i}", peers, warmup) for i in range(3)]
    try:
        c = Conn(ports[0])
        for i in range(3):
            ci = Conn(ports[i])
            until(lambda: ci.stats("cluster").get("cluster_live_members") == "3", 15,
                  f"n0..n2 live on n{i}")
        batch = []
        for k in keys:
            batch.append(f"set {k} 0 0 {len(VALUE)} noreply\r\n".encode() + VALUE + b"\r\n")
            if len(batch) == 500:
                c.s.sendall(b"".join(batch))
                batch = []
        c.s.sendall(b"".join(batch) + b"mn\r\n")
        assert c.line() == b"MN"
        rng = random.Random(1)
        buckets = {}
        t0 = time.time()
        joined = None
        joiner = None
        while True:
            now = time.time() - t0
            if now >= args.seconds:
                break
            if joiner is None and now >= args.join_at:
                joiner = start(ports[3], "n3", peers, warmup)
                procs.append(joiner)
                joined = now
            picks = [keys[bisect.bisect_left(cum, rng.random() * acc)] for _ in range(50)]
            c.s.sendall(b"".join(f"get {k}\r\n".encode() for k in picks))
            misses = []
            for k in picks:
                l = c.line()
                if l.startswith(b"VALUE"):
                    n = int(l.split()[3])
                    c.exact(n + 2)
                    assert c.line() == b"END"
                elif l == b"END":
                    misses.append(k)
                else:
                    misses.append(k)  # an error: the client falls back to its database
            if misses:
                c.s.sendall(b"".join(
                    f"set {k} 0 0 {len(VALUE)} noreply\r\n".encode() + VALUE + b"\r\n"
                    for k in misses))
            b = int(now / args.bucket)
            h, t = buckets.get(b, (0, 0))
            buckets[b] = (h + len(picks) - len(misses), t + len(picks))
        n3 = Conn(ports[3]).stats()
        filled = int(n3.get("warmup_filled", 0))
        return buckets, joined, filled
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def miss_latency(warmup, gets=20000):
    """p50 and p99 (µs) of a get through n0 of a key no node holds, at depth 1."""
    ports = free_ports(3)
    peers = ",".join(f"n{i}=127.0.0.1:{p}" for i, p in enumerate(ports))
    procs = [start(ports[i], f"n{i}", peers, warmup) for i in range(3)]
    try:
        for i in range(3):
            ci = Conn(ports[i])
            until(lambda: ci.stats("cluster").get("cluster_live_members") == "3", 15,
                  f"all live on n{i}")
        c = Conn(ports[0])
        took = []
        for i in range(gets):
            t = time.perf_counter()
            c.s.sendall(f"get absent:{warmup}:{i}\r\n".encode())
            assert c.line() == b"END"
            took.append((time.perf_counter() - t) * 1e6)
        reads = int(c.stats().get("warmup_reads", 0))
        took.sort()
        return took[len(took) // 2], took[len(took) * 99 // 100], reads
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


if args.miss_latency:
    for r in range(args.rounds):
        for warmup in (120, 0):
            p50, p99, reads = miss_latency(warmup)
            print(f"round {r + 1} warm-up {warmup:3d} s: miss through n0 p50 {p50:.0f} µs, "
                  f"p99 {p99:.0f} µs ({reads} warm-up reads by n0)", flush=True)
    sys.exit(0)

modes = {120: [], 0: []}
for r in range(args.rounds):
    for warmup in (120, 0):
        buckets, joined, filled = one_round(warmup)
        modes[warmup].append(buckets)
        before = [h / t for b, (h, t) in buckets.items() if (b + 1) * args.bucket <= joined]
        after = [h / t for b, (h, t) in buckets.items() if b * args.bucket >= joined]
        tot_after = sum(t for b, (h, t) in buckets.items() if b * args.bucket >= joined)
        hits_after = sum(h for b, (h, t) in buckets.items() if b * args.bucket >= joined)
        print(f"round {r + 1} warm-up {warmup:3d} s: hit ratio before the join "
              f"{statistics.median(before):.4f}, lowest after {min(after):.4f}, "
              f"overall after {hits_after / tot_after:.4f} ({tot_after} gets); "
              f"n3 stored {filled} keys by read-through", flush=True)

nb = int(args.seconds / args.bucket)
series = {}
with open(args.csv, "w") as f:
    f.write("t_s,hit_ratio_warmup_120,hit_ratio_warmup_0\n")
    for b in range(nb):
        row = []
        for warmup in (120, 0):
            vals = [bk[b][0] / bk[b][1] for bk in modes[warmup] if b in bk and bk[b][1]]
            row.append(statistics.median(vals) if vals else float("nan"))
            series.setdefault(warmup, []).append(row[-1])
        f.write(f"{b * args.bucket:.2f},{row[0]:.4f},{row[1]:.4f}\n")

# The plot: hit ratio (median of the rounds per bucket) against time, both modes.
W, H, L, R, T, B = 720, 360, 60, 20, 40, 45
lo = min(min(v for v in s if v == v) for s in series.values())
lo = max(0.0, min(0.9, int(lo * 20) / 20))
x = lambda t: L + (W - L - R) * t / args.seconds
y = lambda v: T + (H - T - B) * (1 - (v - lo) / (1 - lo))
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="14">Hit ratio through n0 while n3 joins</text>',
       f'<text x="{W / 2}" y="30" text-anchor="middle" font-size="11">3 → 4 nodes, R=1, zipf {args.zipf} over '
       f'{args.keys} keys, cache-aside client; median of {args.rounds} rounds per {args.bucket:g} s</text>']
for i in range(0, 11):
    v = lo + (1 - lo) * i / 10
    svg.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
    svg.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
for t in range(0, int(args.seconds) + 1):
    svg.append(f'<text x="{x(t):.1f}" y="{H - B + 16}" text-anchor="middle">{t}</text>')
svg.append(f'<text x="{(W + L) / 2}" y="{H - 8}" text-anchor="middle">seconds (n3 started at {args.join_at:g} s)</text>')
svg.append(f'<line x1="{x(args.join_at):.1f}" x2="{x(args.join_at):.1f}" y1="{T}" y2="{H - B}" stroke="#999" stroke-dasharray="4 3"/>')
for warmup, colour, label in ((120, "#1f77b4", "warm-up on (120 s)"), (0, "#d62728", "warm-up off")):
    pts = " ".join(f"{x((b + 0.5) * args.bucket):.1f},{y(v):.1f}" for b, v in enumerate(series[warmup]) if v == v)
    svg.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
ly = T + 14
for colour, label in (("#1f77b4", "warm-up on (120 s)"), ("#d62728", "warm-up off")):
    svg.append(f'<line x1="{W - 190}" x2="{W - 165}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
    svg.append(f'<text x="{W - 160}" y="{ly + 4}">{label}</text>')
    ly += 16
svg.append("</svg>")
with open(args.svg, "w") as f:
    f.write("\n".join(svg) + "\n")
print(f"wrote {args.csv} and {args.svg}")
