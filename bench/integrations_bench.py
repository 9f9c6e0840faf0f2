#!/usr/bin/python3
"""libevent's own file paths against evsendfile's integrations, with wrk.

bench/integrations_server.c serves the same files five ways (see its top
comment): evhttp-stock vs evhttp-sf (sf_evhttp_send_file), and the
bufferevent servers bev-addfile (evbuffer_add_file) and bev-mmap (the same,
sendfile disabled) vs bev-sf (sf_bufferevent_send); evhttp-sf and bev-sf run
twice, once as shipped and once with EVSENDFILE_FORCE_SENDFILE=1 ("/sendfile"),
because to a loopback peer the library copies by default.  Each contender is one
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
import statistics
import subprocess
import sys
import tempfile

from benchlib import cpu_seconds, free_port, human, parse_size, run_cell, wait_port, write_files

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SERVER = os.environ.get("INTEGRATIONS_SERVER", os.path.join(REPO, "build", "bench", "integrations_server"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "3"))
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "1 32").split()]
# Contender -> (integrations_server mode, extra environment).  The "/sendfile" ones are the same
# servers with the library told to use sendfile(2) whatever the peer (EVSENDFILE_FORCE_SENDFILE):
# to a loopback peer the library copies by default, which costs the sender CPU that sendfile
# leaves to the receiver (bench/RESULTS.md, "Sendfile or copy, per peer").
CONTENDERS = {
    "evhttp-stock": ("evhttp-stock", {}),
    "evhttp-sf": ("evhttp-sf", {}),
    "evhttp-sf/sendfile": ("evhttp-sf", {"EVSENDFILE_FORCE_SENDFILE": "1"}),
    "bev-addfile": ("bev-addfile", {}),
    "bev-mmap": ("bev-mmap", {}),
    "bev-sf": ("bev-sf", {}),
    "bev-sf/sendfile": ("bev-sf", {"EVSENDFILE_FORCE_SENDFILE": "1"}),
}
NAMES = list(CONTENDERS)
PAIRS = [("evhttp-sf", "evhttp-stock"), ("evhttp-sf/sendfile", "evhttp-stock"),
         ("bev-sf", "bev-addfile"), ("bev-sf/sendfile", "bev-addfile"), ("bev-sf", "bev-mmap")]
SIZES = [parse_size(s) for s in os.environ.get("BENCH_SIZES", "16K 1M 64M").split()]


def start(name, root):
    mode, env = CONTENDERS[name]
    port = free_port()
    p = subprocess.Popen([SERVER, mode, root, str(port)], env={**os.environ, **env})
    wait_port(port, p)
    return p, port


def run(proc, port, size, conns, script):
    r = run_cell("http://127.0.0.1:%d/f%d.bin" % (port, size), conns, DURATION, script,
                 lambda: cpu_seconds(proc.pid), threads=1 if conns == 1 else 2)
    return r["gbps"], r["cpu_per_gb"], r["errors"]


def median_ratio(pairs):
    """Median of per-round ratios x / y, or nan when no round has a y (e.g. CPU under a clock tick)."""
    ratios = [x / y for x, y in pairs if y]
    return statistics.median(ratios) if ratios else float("nan")


def main():
    if not shutil.which("wrk"):
        sys.exit("needs wrk")
    md_out = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
    tmp = tempfile.mkdtemp(prefix="evsf-integ-")
    procs = {}
    try:
        files = {"f%d.bin" % size: size for size in SIZES}
        lua = write_files(tmp, files, list(files))
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
                    tput = median_ratio((x[0], y[0]) for x, y in zip(ra, rb))
                    cpu = median_ratio((x[1], y[1]) for x, y in zip(ra, rb))
                    cols.append("**%.2f**, %.2f" % (tput, cpu))
                lines.append("| %s | %d | %s |" % (human(size), conns, " | ".join(cols)))
        text = "\n".join(lines) + "\n\n%d rounds x %d s per run (wrk -t1 at 1 connection, -t2 otherwise; CPU s/GB is the server process's); " \
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
