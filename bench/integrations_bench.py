#!/usr/bin/python3
"""libevent's own file paths against evsendfile's integrations, with wrk.

bench/integrations_server.c serves the same files five ways (see its top
comment): evhttp-stock vs evhttp-sf (sf_evhttp_send_file), and the
bufferevent servers bev-addfile (evbuffer_add_file) and bev-mmap (the same,
sendfile disabled) vs bev-sf (sf_bufferevent_send).  Each contender is one
server process, one thread; its CPU is read from /proc/PID/stat around each
wrk run.  Contenders are interleaved (order rotated each round); the tables
give medians, and the ratios are medians of per-round ratios.

Usage: bench/integrations_bench.py [--markdown FILE]
Environment: BENCH_ROUNDS (3), BENCH_DURATION seconds per run (3),
BENCH_SIZES ("16K 1M 64M"), BENCH_CONNS ("1 32"), INTEGRATIONS_SERVER
(default build/bench/integrations_server).
Nothing here is a test: numbers on a shared 2-core machine are noisy.
"""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_seconds, free_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SERVER = os.environ.get("INTEGRATIONS_SERVER", os.path.join(REPO, "build", "bench", "integrations_server"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "3"))
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "1 32").split()]
NAMES = ["evhttp-stock", "evhttp-sf", "bev-addfile", "bev-mmap", "bev-sf"]
PAIRS = [("evhttp-sf", "evhttp-stock"), ("bev-sf", "bev-addfile"), ("bev-sf", "bev-mmap")]
TICK = os.sysconf("SC_CLK_TCK")

WRK_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.bytes, summary.duration,
                         e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s.strip().upper())
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


SIZES = [parse_size(s) for s in os.environ.get("BENCH_SIZES", "16K 1M 64M").split()]


def human(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %s" % (n >> shift, unit)
    return "%d B" % n




def start(name, root):
    port = free_port()
    p = subprocess.Popen([SERVER, name, root, str(port)])
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if p.poll() is not None:
            sys.exit("%s exited early" % name)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    sys.exit("%s never accepted" % name)




def run(proc, port, size, conns, lua):
    threads = 1 if conns == 1 else 2
    c0 = cpu_seconds(proc.pid)
    r = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % DURATION, "--timeout", "10s",
                        "-s", lua, "http://127.0.0.1:%d/f%d.bin" % (port, size)],
                       capture_output=True, text=True, timeout=DURATION + 60)
    cpu = cpu_seconds(proc.pid) - c0
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", r.stdout)
    if not m:
        sys.exit("wrk failed: " + r.stdout + r.stderr)
    reqs, nbytes, usec, errors = map(int, m.groups())
    gbs = nbytes / (usec / 1e6) / 1e9
    return gbs, (cpu / (nbytes / 1e9) if nbytes else float("nan")), errors


def main():
    if not shutil.which("wrk"):
        sys.exit("needs wrk")
    md_out = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
    tmp = tempfile.mkdtemp(prefix="evsf-integ-")
    procs = {}
    try:
        chunk = os.urandom(1 << 20)
        for size in SIZES:
            with open(os.path.join(tmp, "f%d.bin" % size), "wb") as f:
                for off in range(0, size, len(chunk)):
                    f.write(chunk[:min(len(chunk), size - off)])
        lua = os.path.join(tmp, "report.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        for name in NAMES:
            procs[name] = start(name, tmp)
        for name in NAMES:  # warm-up (page cache, allocators), not recorded
            run(*procs[name], SIZES[0], 8, lua)
        res = {}  # (size, conns, name) -> [(GB/s, CPU s/GB)] per round
        errors = dict.fromkeys(NAMES, 0)
        for rnd in range(ROUNDS):
            for size in SIZES:
                for conns in CONNS:
                    order = NAMES[rnd % len(NAMES):] + NAMES[:rnd % len(NAMES)]
                    for name in order:
                        gbs, cpg, err = run(*procs[name], size, conns, lua)
                        res.setdefault((size, conns, name), []).append((gbs, cpg))
                        errors[name] += err
                    print("round %d/%d %-7s c=%-3d " % (rnd + 1, ROUNDS, human(size), conns) +
                          " ".join("%s %.2f" % (n, res[(size, conns, n)][-1][0]) for n in NAMES),
                          file=sys.stderr, flush=True)
        head = ("| size | conns | " + " | ".join("%s GB/s (CPU s/GB)" % n for n in NAMES) + " | " +
                " | ".join("**%s / %s** GB/s, CPU/GB" % p for p in PAIRS) + " |")
        lines = [head, "|---|---:|" + "---:|" * (len(NAMES) + len(PAIRS))]
        for size in SIZES:
            for conns in CONNS:
                cell = lambda n, i: statistics.median(r[i] for r in res[(size, conns, n)])
                cols = ["%.2f (%.2f)" % (cell(n, 0), cell(n, 1)) for n in NAMES]
                for a, b in PAIRS:
                    ra, rb = res[(size, conns, a)], res[(size, conns, b)]
                    tput = statistics.median(x[0] / y[0] for x, y in zip(ra, rb) if y[0])
                    cpu = statistics.median(x[1] / y[1] for x, y in zip(ra, rb) if y[1])
                    cols.append("**%.2f**, %.2f" % (tput, cpu))
                lines.append("| %s | %d | %s |" % (human(size), conns, " | ".join(cols)))
        text = "\n".join(lines) + "\n\n%d rounds x %d s per run (wrk -t1 at 1 connection, -t2 otherwise); " \
            "ratios are medians of per-round ratios; wrk errors: %s\n" % (
                ROUNDS, DURATION, ", ".join("%s %d" % kv for kv in errors.items()))
        print(text)
        if md_out:
            with open(md_out, "w") as f:
                f.write(text)
    finally:
        for p, _ in procs.values():
            p.send_signal(signal.SIGTERM)
        for p, _ in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
