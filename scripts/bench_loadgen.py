#!/usr/bin/env python3
"""Loadgen measurements (see scripts/bench-loadgen.sh for how to run).

1. accuracy: loadgen's counts and throughput against memcached's own stats
   deltas (a sampler reads `stats` mid-run, independently of the loadgen).
2. memcaslap: the same concurrency against memcached, closed loop, then the
   loadgen open loop at memcaslap's rate; mean latencies side by side.
3. ceiling: memcaslap and the loadgen against the null server, depth 1 and 16.

Every experiment alternates its subjects and repeats ROUNDS times; medians
are printed as a markdown table (also written to OUT/summary.md), with the
load average before and after, since the machine may be shared.
"""
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LG = os.path.join(ROOT, "target/release/corecache-loadgen")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECS = float(os.environ.get("SECONDS_PER_RUN", "8"))
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
OUT = os.environ.get("OUT", os.path.join(ROOT, "target/bench-loadgen"))
CONNS = 32


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"port {port} not ready")


class Server:
    def __init__(self, kind):
        self.kind = kind
        if kind == "memcached":
            self.port = free_port()
            cmd = ["taskset", "-c", SERVER_CPU, "memcached", "-l", "127.0.0.1", "-p", str(self.port),
                   "-U", "0", "-t", "1", "-m", "1024", "-c", "4096"]
            if os.geteuid() == 0:
                cmd += ["-u", "root"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(self.port, self.proc)
        else:
            self.proc = subprocess.Popen([LG, "null-server", "--listen", "127.0.0.1:0", "--cores", SERVER_CPU],
                                         stdout=subprocess.PIPE, text=True)
            line = self.proc.stdout.readline()
            self.port = int(line.strip().rsplit(":", 1)[1])
        self.addr = f"127.0.0.1:{self.port}"

    def stats(self):
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += s.recv(65536)
        out = {}
        for line in buf.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                try:
                    out[parts[1]] = int(parts[2])
                except ValueError:
                    pass
        return out

    def ops(self):
        st = self.stats()
        return st["cmd_get"] + st["cmd_set"]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def loadgen(addr, *args, warmup=1.0):
    path = os.path.join(OUT, "run.json")
    cmd = [LG, "run", "--target", addr, "--cores", CLIENT_CPU, "--conns", str(CONNS), "--no-progress",
           "--duration", f"{SECS}s", "--warmup", f"{warmup}s", "--json", path, *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def memcaslap(addr, *args):
    cmd = ["taskset", "-c", CLIENT_CPU, "memcaslap", "-s", addr, "-T", "1", "-c", str(CONNS),
           "-t", f"{int(SECS)}s", "-X", "100", "-S", f"{int(SECS)}s", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tps = float(re.search(r"TPS: (\d+)", r.stdout).group(1))
    avg = re.search(r"Total Statistics \(\d+ events\)\s+Min:\s+\d+\s+Max:\s+\d+\s+Avg:\s+(\d+)", r.stdout)
    ops = float(re.search(r"Ops: (\d+)", r.stdout).group(1))
    return {"tps": tps, "mean_us": float(avg.group(1)) if avg else float("nan"),
            "cpu_us_per_req": 1e6 * cpu / max(ops, 1)}


def lg_cpu_per_req(r):
    """The loadgen's CPU (user + system, client threads) per request, µs."""
    return 1e6 * r["cpu"]["thread_cpu_s"] / max(r["whole_run"]["requests"], 1)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def accuracy(rows):
    """Loadgen vs memcached's own counters."""
    for depth in (1, 16):
        count_err, rate_err, window_err, tput = [], [], [], []
        for _ in range(ROUNDS):
            srv = Server("memcached")
            before = srv.ops()
            samples = {}

            def sampler():
                # Independent of the loadgen: the server's counters from 0.5 s
                # into the measured window (after the 1 s warm-up) to 0.5 s
                # before its end.
                time.sleep(1.5)
                samples["t0"], samples["n0"] = time.monotonic(), srv.ops()
                time.sleep(SECS - 1.0)
                samples["t1"], samples["n1"] = time.monotonic(), srv.ops()

            th = threading.Thread(target=sampler)
            th.start()
            r = loadgen(srv.addr, "--depth", str(depth), "--keys", "100000", "--server-stats")
            th.join()
            after = srv.ops()
            srv.stop()
            w = r["whole_run"]
            sent = w["get_keys"] + w["sets"]
            count_err.append(100.0 * (sent - (after - before)) / (after - before))
            server_rate = (samples["n1"] - samples["n0"]) / (samples["t1"] - samples["t0"])
            rate_err.append(100.0 * (r["throughput"] - server_rate) / server_rate)
            tput.append(r["throughput"])
            c = r["counters"]
            ours = (c["get_keys"] + c["sets"]) / r["duration_s"]
            window_err.append(100.0 * (ours - r["server"]["rate"]) / r["server"]["rate"])
        rows.append((f"accuracy, memcached, depth {depth}: loadgen req/s", f"{med(tput):,.0f}"))
        rows.append((f"accuracy, depth {depth}: (loadgen count - stats delta) / delta",
                     f"{med(count_err):+.3f}% (max |{max(abs(x) for x in count_err):.3f}|%)"))
        rows.append((f"accuracy, depth {depth}: --server-stats, (loadgen - server) / server over the window",
                     f"{med(window_err):+.3f}% (max |{max(abs(x) for x in window_err):.3f}|%)"))
        rows.append((f"accuracy, depth {depth}: (loadgen req/s - server req/s sampled by the script) / server",
                     f"{med(rate_err):+.2f}% (max |{max(abs(x) for x in rate_err):.2f}|%)"))


def versus_memcaslap(rows):
    """Same concurrency against memcached; then open loop at memcaslap's rate."""
    ms, lg, lg_spin, lg_open = [], [], [], []
    for r in range(ROUNDS):
        srv = Server("memcached")
        order = ["memcaslap", "loadgen", "spin"]
        if r % 2 == 1:
            order.reverse()
        for who in order:
            if who == "memcaslap":
                ms.append(memcaslap(srv.addr))
            elif who == "loadgen":
                lg.append(loadgen(srv.addr, "--depth", "1", "--prefill", "--key-size", "64"))
            else:
                lg_spin.append(loadgen(srv.addr, "--depth", "1", "--key-size", "64", "--spin"))
        rate = ms[-1]["tps"]
        lg_open.append(loadgen(srv.addr, "--rate", f"{rate:.0f}", "--depth", "4", "--key-size", "64"))
        srv.stop()
    rows.append(("vs memcaslap, memcached, 32 conns closed: memcaslap req/s | mean µs",
                 f"{med([m['tps'] for m in ms]):,.0f} | {med([m['mean_us'] for m in ms]):.0f}"))
    rows.append(("vs memcaslap, memcached, 32 conns closed: loadgen req/s | mean µs",
                 f"{med([x['throughput'] for x in lg]):,.0f} | {med([x['ops']['all']['mean_ns'] / 1e3 for x in lg]):.0f}"))
    rows.append(("vs memcaslap, memcached, 32 conns closed: loadgen --spin req/s | mean µs",
                 f"{med([x['throughput'] for x in lg_spin]):,.0f} | "
                 f"{med([x['ops']['all']['mean_ns'] / 1e3 for x in lg_spin]):.0f}"))
    rows.append(("loadgen open loop at memcaslap's rate: req/s | mean µs | p99 µs",
                 f"{med([x['throughput'] for x in lg_open]):,.0f} | "
                 f"{med([x['ops']['all']['mean_ns'] / 1e3 for x in lg_open]):.0f} | "
                 f"{med([dict(x['ops']['all']['percentiles_ns'])['p99'] / 1e3 for x in lg_open]):.0f}"))


def ceiling(rows):
    """One client core against the null server."""
    ms, d1, d16, s1, s16 = [], [], [], [], []
    for r in range(ROUNDS):
        srv = Server("null")
        subjects = ["memcaslap", "d1", "d16", "s1", "s16"]
        if r % 2 == 1:
            subjects.reverse()
        for who in subjects:
            if who == "memcaslap":
                ms.append(memcaslap(srv.addr))
            elif who == "d1":
                d1.append(loadgen(srv.addr, "--depth", "1"))
            elif who == "d16":
                d16.append(loadgen(srv.addr, "--depth", "16"))
            elif who == "s1":
                s1.append(loadgen(srv.addr, "--depth", "1", "--spin"))
            else:
                s16.append(loadgen(srv.addr, "--depth", "16", "--spin"))
        srv.stop()
    m, a, b = med([x["tps"] for x in ms]), med([x["throughput"] for x in d1]), med([x["throughput"] for x in d16])
    rows.append(("null server, memcaslap 32 conns: req/s | client CPU µs/request",
                 f"{m:,.0f} | {med([x['cpu_us_per_req'] for x in ms]):.2f}"))
    rows.append(("null server, loadgen 32 conns depth 1: req/s (x memcaslap) | loadgen busy | CPU µs/request",
                 f"{a:,.0f} ({a / m:.2f}x) | {100 * med([x['cpu']['busy'] for x in d1]):.0f}% | "
                 f"{med([lg_cpu_per_req(x) for x in d1]):.2f}"))
    rows.append(("null server, loadgen 32 conns depth 16: req/s | loadgen busy | CPU µs/request",
                 f"{b:,.0f} | {100 * med([x['cpu']['busy'] for x in d16]):.0f}% | "
                 f"{med([lg_cpu_per_req(x) for x in d16]):.2f}"))
    for label, runs in (("depth 1 --spin", s1), ("depth 16 --spin", s16)):
        t = med([x["throughput"] for x in runs])
        rows.append((f"null server, loadgen 32 conns {label}: req/s (x memcaslap) | loadgen busy",
                     f"{t:,.0f} ({t / m:.2f}x) | {100 * med([x['cpu']['busy'] for x in runs]):.0f}%"))


def main():
    os.makedirs(OUT, exist_ok=True)
    which = sys.argv[1:] or ["accuracy", "memcaslap", "ceiling"]
    rows = [("load average before", loadavg())]
    for name in which:
        {"accuracy": accuracy, "memcaslap": versus_memcaslap, "ceiling": ceiling}[name](rows)
        rows.append((f"load average after {name}", loadavg()))
    lines = [f"rounds {ROUNDS}, {SECS:.0f} s each, server cpu{SERVER_CPU}, load cpu{CLIENT_CPU}; medians", "",
             "| measurement | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
