#!/usr/bin/python3
"""evsendfile-httpd vs nginx, side by side on loopback.

One run starts five servers over the same files:
  ours        evsendfile-httpd --threads 1 (wrk is on this host: the copy path above 32 KiB)
  ours-sf     evsendfile-httpd --threads 1 --force-sendfile (sendfile, as for a remote client)
  ours-copy   evsendfile-httpd --threads 1 --no-sendfile (the library's copy path)
  nginx-sf    nginx, 1 worker, sendfile on; tcp_nopush on;
  nginx-copy  nginx, 1 worker, sendfile off
and drives each with wrk at several file sizes and concurrencies.  The
contenders are interleaved (their order rotates every round) over ROUNDS
rounds; the table shows medians and the ratio ours / the better nginx
(plus ours-copy / nginx-copy, the same method on both sides).  A second
table gives each server's CPU time during the wrk run (utime + stime from
/proc/PID/stat, summed over the server's processes -- nginx's master and
worker -- and all their threads) per GB sent and per request, with the
ratio ours / the nginx that used less.  A third gives wrk's own CPU per GB
(its rusage): the receiving side's cost, which the server's method moves.

Usage (as root, for nginx; needs nginx-light and wrk):
    bench/httpd_vs_nginx.py [--markdown FILE]
Environment:
    EVSENDFILE_HTTPD  the server binary (default build/examples/evsendfile-httpd)
    EVSENDFILE_HTTPD_B  a second build of it (a variant under test): contender
                      `ours-b`, interleaved with the others, and a table of
                      ours-b / ours (medians of per-round ratios)
    BENCH_ROUNDS      rounds (default 3)
    BENCH_DURATION    seconds per wrk run (default 3)
    BENCH_BIG         size of the largest file: 1G (default), 256M, ... or 0 to skip it
    BENCH_CONNS       concurrencies (default "1 32 512")
    BENCH_SIZES       file sizes (default "1K 16K 256K 16M" + BENCH_BIG)
Nothing here is a test: numbers on a shared 2-core machine are noisy.
"""
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, human, parse_size, start_nginx, wait_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HTTPD = os.environ.get("EVSENDFILE_HTTPD", os.path.join(REPO, "build", "examples", "evsendfile-httpd"))
HTTPD_B = os.environ.get("EVSENDFILE_HTTPD_B")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "3"))
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "1 32 512").split()]
SIZES = [1 << 10, 16 << 10, 256 << 10, 16 << 20]
BIG = parse_size(os.environ.get("BENCH_BIG", "1G"))
if BIG:
    SIZES.append(BIG)
if os.environ.get("BENCH_SIZES"):
    SIZES = [parse_size(s) for s in os.environ["BENCH_SIZES"].split()]

WRK_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.bytes, summary.duration,
                         e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def num(x):
    """Three significant digits, never an exponent."""
    return "%.0f" % x if x >= 100 else "%.3g" % x






def make_files(root):
    os.chmod(root, 0o755)
    chunk = os.urandom(1 << 20)
    for size in SIZES:
        with open(os.path.join(root, "f%d.bin" % size), "wb") as f:
            left = size
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
        with open(os.path.join(root, "f%d.bin" % size), "rb") as f:  # page cache warm
            while f.read(1 << 24):
                pass


def start_ours(root, *extra, binary=HTTPD):
    port = free_port()
    p = subprocess.Popen([binary, "--threads", "1", *extra, "--listen", "127.0.0.1:%d" % port, root],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port, p)
    return p, port


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of pid and every process below it (nginx: master + worker),
    threads included (a process's stat counts all of its threads)."""
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            stats[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    family, ticks = {pid}, 0
    grew = True
    while grew:
        grew = False
        for p, (ppid, _) in stats.items():
            if ppid in family and p not in family:
                family.add(p)
                grew = True
    for p in family:
        ticks += stats.get(p, (0, 0))[1]
    return ticks / TICK


def wrk(port, size, conns, lua, duration):
    threads = 1 if conns == 1 else 2
    r = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--timeout", "10s",
                        "-s", lua, "http://127.0.0.1:%d/f%d.bin" % (port, size)],
                       capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", r.stdout)
    if not m:
        raise RuntimeError("wrk failed: " + r.stdout + r.stderr)
    reqs, nbytes, usec, errors = map(int, m.groups())
    return reqs / (usec / 1e6), nbytes / (usec / 1e6) / 1e6, errors, reqs, nbytes


def variant_table(results, cpu):
    """ours-b / ours per cell: medians of per-round ratios (a round's two ran back to back)."""
    rows = ["| size | conns | ours-b / ours, MB/s | per round | ours-b / ours, server CPU per request |",
            "|---|---:|---:|---|---:|"]
    for size in SIZES:
        for conns in CONNS:
            a, b = results[(size, conns, "ours")], results[(size, conns, "ours-b")]
            per_round = [rb[1] / ra[1] for ra, rb in zip(a, b) if ra[1]]
            ca, cb = cpu[(size, conns, "ours")], cpu[(size, conns, "ours-b")]
            cpu_round = [xb[1] / xa[1] for xa, xb in zip(ca, cb) if xa[1] and xa[1] == xa[1]]
            rows.append("| %s | %d | **%.2f** | %s | %s |" % (
                human(size), conns, statistics.median(per_round), " ".join("%.2f" % r for r in per_round),
                "%.2f" % statistics.median(cpu_round) if cpu_round else "n/a"))
    return ("ours-b = %s\n\n" % HTTPD_B) + "\n".join(rows)


def main():
    if not shutil.which("nginx") or not shutil.which("wrk"):
        sys.exit("needs nginx (nginx-light) and wrk")
    if not os.access(HTTPD, os.X_OK):
        sys.exit("no server at %s (build it, or set EVSENDFILE_HTTPD)" % HTTPD)
    md_out = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
    tmp = tempfile.mkdtemp(prefix="evsf-bench-")
    os.chmod(tmp, 0o755)
    root = os.path.join(tmp, "root")
    os.mkdir(root)
    procs = []
    try:
        make_files(root)
        lua = os.path.join(tmp, "report.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        contenders, pids = {}, {}
        p, port = start_ours(root)
        procs.append(p)
        contenders["ours"], pids["ours"] = port, p.pid
        p, port = start_ours(root, "--force-sendfile")
        procs.append(p)
        contenders["ours-sf"], pids["ours-sf"] = port, p.pid
        p, port = start_ours(root, "--no-sendfile")
        procs.append(p)
        contenders["ours-copy"], pids["ours-copy"] = port, p.pid
        if HTTPD_B:
            p, port = start_ours(root, binary=HTTPD_B)
            procs.append(p)
            contenders["ours-b"], pids["ours-b"] = port, p.pid
        for name, sf in (("nginx-sf", "on"), ("nginx-copy", "off")):
            p, port = start_nginx(tmp, root, name, "sendfile %s;" % sf)
            procs.append(p)
            contenders[name], pids[name] = port, p.pid
        names = list(contenders)
        for name in names:  # warm-up, not recorded
            wrk(contenders[name], SIZES[0], 32, lua, 1)

        results = {}  # (size, conns, name) -> [(rps, mbs)]
        cpu = {}  # (size, conns, name) -> [(CPU s per GB, CPU us per request)]
        wrk_cpu = {}  # (size, conns, name) -> [wrk's CPU s per GB]
        errors = {}
        for rnd in range(ROUNDS):
            for size in SIZES:
                for conns in CONNS:
                    order = names[rnd % len(names):] + names[:rnd % len(names)]
                    for name in order:
                        c0 = cpu_seconds(pids[name])
                        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                        try:
                            rps, mbs, err, reqs, nbytes = wrk(contenders[name], size, conns, lua, DURATION)
                        except RuntimeError as e:
                            p = procs[names.index(name)]
                            sys.exit("%s (%s, %s x %d; server exit status %s)" % (
                                e, name, human(size), conns, p.poll()))
                        used = cpu_seconds(pids[name]) - c0
                        ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        wrk_cpu.setdefault((size, conns, name), []).append(
                            (ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime) / (nbytes / 1e9)
                            if nbytes else float("nan"))
                        results.setdefault((size, conns, name), []).append((rps, mbs))
                        cpu.setdefault((size, conns, name), []).append(
                            (used / (nbytes / 1e9) if nbytes else float("nan"),
                             used / reqs * 1e6 if reqs else float("nan")))
                        errors[name] = errors.get(name, 0) + err
                    print("round %d/%d  %-8s c=%-4d " % (rnd + 1, ROUNDS, human(size), conns) +
                          "  ".join("%s %.0f MB/s" % (n, results[(size, conns, n)][-1][1]) for n in names),
                          file=sys.stderr, flush=True)

        lines = ["| size | conns | ours req/s | ours MB/s | nginx sendfile req/s | MB/s | nginx copy req/s | MB/s"
                 " | ours-copy MB/s | **ours / better nginx** | ours-copy / nginx-copy | ours-sf MB/s"
                 " | ours-sf / better nginx |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        ratios, copy_ratios, sf_ratios = [], [], []
        for size in SIZES:
            for conns in CONNS:
                med = {n: (statistics.median(r for r, _ in results[(size, conns, n)]),
                           statistics.median(m for _, m in results[(size, conns, n)])) for n in names}
                best = max(med["nginx-sf"][1], med["nginx-copy"][1])
                ratio = med["ours"][1] / best if best else float("nan")
                ratios.append(ratio)
                copy_ratio = med["ours-copy"][1] / med["nginx-copy"][1] if med["nginx-copy"][1] else float("nan")
                copy_ratios.append(copy_ratio)
                sf_ratio = med["ours-sf"][1] / best if best else float("nan")
                sf_ratios.append(sf_ratio)
                lines.append("| %s | %d | %.0f | %.1f | %.0f | %.1f | %.0f | %.1f | %.1f | **%.2f** | %.2f | %.1f"
                             " | %.2f |" % (
                                 human(size), conns, med["ours"][0], med["ours"][1], med["nginx-sf"][0],
                                 med["nginx-sf"][1], med["nginx-copy"][0], med["nginx-copy"][1],
                                 med["ours-copy"][1], ratio, copy_ratio, med["ours-sf"][1], sf_ratio))
        summary = ("medians of %d rounds, wrk -d %ds (-t1 at 1 connection, -t2 otherwise); ratio = ours MB/s"
                   " / the better nginx MB/s (same as the req/s ratio for a fixed size); geometric mean"
                   " of ratios %.2f, min %.2f (ours-sf: %.2f, min %.2f; ours-copy / nginx-copy: %.2f, min %.2f);"
                   " wrk errors: %s" % (
                       ROUNDS, DURATION, statistics.geometric_mean(ratios), min(ratios),
                       statistics.geometric_mean(sf_ratios), min(sf_ratios),
                       statistics.geometric_mean(copy_ratios), min(copy_ratios),
                       ", ".join("%s %d" % kv for kv in errors.items())))
        cpu_lines = ["| size | conns | ours CPU s/GB | µs/req | nginx sendfile s/GB | µs/req | nginx copy s/GB"
                     " | µs/req | ours-copy s/GB | µs/req | **ours / leaner nginx** | ours-copy / nginx-copy |",
                     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        cpu_ratios, cpu_copy_ratios = [], []
        for size in SIZES:
            for conns in CONNS:
                med = {n: (statistics.median(g for g, _ in cpu[(size, conns, n)]),
                           statistics.median(r for _, r in cpu[(size, conns, n)])) for n in names}
                lean = min(med["nginx-sf"][0], med["nginx-copy"][0])
                ratio = med["ours"][0] / lean if lean else float("nan")
                copy_ratio = med["ours-copy"][0] / med["nginx-copy"][0] if med["nginx-copy"][0] else float("nan")
                cpu_ratios.append(ratio)
                cpu_copy_ratios.append(copy_ratio)
                cpu_lines.append("| %s | %d | %s | **%.2f** | %.2f |" % (
                    human(size), conns, " | ".join("%s | %s" % (num(med[n][0]), num(med[n][1])) for n in
                                                   ("ours", "nginx-sf", "nginx-copy", "ours-copy")),
                    ratio, copy_ratio))
        finite = [r for r in cpu_ratios if r == r and r > 0]
        finite_copy = [r for r in cpu_copy_ratios if r == r and r > 0]
        cpu_summary = ("server CPU (utime + stime of all its processes and threads, /proc, %d Hz ticks) during"
                       " each wrk run, medians of %d rounds; ratio = ours CPU per GB / the nginx with less"
                       " (lower is better; the same ratio per request at a fixed size); geometric mean %s"
                       " (ours-copy / nginx-copy: %s)" % (
                           TICK, ROUNDS,
                           "%.2f" % statistics.geometric_mean(finite) if finite else "n/a",
                           "%.2f" % statistics.geometric_mean(finite_copy) if finite_copy else "n/a"))
        wrk_lines = ["| size | conns | " + " | ".join("wrk s/GB vs %s" % n for n in names) + " |",
                     "|---|---:|" + "---:|" * len(names)]
        for size in SIZES:
            for conns in CONNS:
                wrk_lines.append("| %s | %d | %s |" % (human(size), conns, " | ".join(
                    num(statistics.median(wrk_cpu[(size, conns, n)])) for n in names)))
        text = ("\n".join(lines) + "\n\n" + summary + "\n\n" + "\n".join(cpu_lines) + "\n\n" +
                cpu_summary + "\n\nwrk's own CPU (rusage) per GB received, medians:\n\n" + "\n".join(wrk_lines) + "\n")
        if HTTPD_B:
            text += "\n" + variant_table(results, cpu) + "\n"
        print(text)
        if md_out:
            with open(md_out, "w") as f:
                f.write(text)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM if p.args[0] in (HTTPD, HTTPD_B) else signal.SIGQUIT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
