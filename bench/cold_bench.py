#!/usr/bin/python3
"""Cold files: does a download whose pages are not in memory stall the other
requests of the same event loop?

Servers (one worker / one loop thread each, the same files):
  ours          evsendfile-httpd --threads 1 (cold chunks read in by the library's disk threads)
  ours-inline   evsendfile-httpd --threads 1 --disk-inline (SF_DISK_INLINE: sendfile blocks the loop)
  nginx-sf      nginx, sendfile on, no aio
  nginx-aio     nginx, sendfile on, aio threads (its thread pool)
Scenarios: 1 cold download of a 1 GiB file, and 8 cold downloads of 256 MiB
files at once (curl, to /dev/null), while one keep-alive client fetches a
6-byte file and times every request (each 0-1 ms after the previous
answer, uniformly random, so that the requests sample the whole timeline); plus the same small
client alone ("idle").  Before every download the files are evicted from
the page cache with posix_fadvise(POSIX_FADV_DONTNEED) (after one fsync).
Servers are interleaved, their order rotating every round; the table shows
medians over the rounds of: the small request's p50 and p99 (ms), and the
cold downloads' total throughput (MB/s, bytes / time until the last one ends).

Usage (as root, for nginx; needs nginx-light, curl):
    bench/cold_bench.py [--markdown FILE]
Environment:
    EVSENDFILE_HTTPD  the server binary (default build/examples/evsendfile-httpd)
    BENCH_ROUNDS      rounds (default 3)
    BENCH_DIR         where the files go (default: a new directory under /var/tmp; must be a
                      disk-backed filesystem, not tmpfs)
Nothing here is a test: numbers on a shared 2-core machine are noisy.
"""
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, start_nginx, wait_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HTTPD = os.environ.get("EVSENDFILE_HTTPD", os.path.join(REPO, "build", "examples", "evsendfile-httpd"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BIG = 1 << 30
MANY = 8
MANY_SIZE = 256 << 20
IDLE_REQUESTS = 2000

def nginx_has_aio_threads():
    r = subprocess.run(["nginx", "-V"], capture_output=True, text=True)
    return "--with-threads" in r.stderr + r.stdout


def start_server(tmp, root, name):
    if name.startswith("ours"):
        port = free_port()
        extra = ["--disk-inline"] if name == "ours-inline" else []
        p = subprocess.Popen([HTTPD, "--threads", "1", *extra, "--listen", "127.0.0.1:%d" % port, root],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(port, p)
        return p, port
    return start_nginx(tmp, root, name, "sendfile on;" + (" aio threads;" if name == "nginx-aio" else ""))


def make_files(root):
    os.chmod(root, 0o755)
    chunk = os.urandom(1 << 20)
    names = {"big.bin": BIG, **{"m%d.bin" % i: MANY_SIZE for i in range(MANY)}}
    for name, size in names.items():
        path = os.path.join(root, name)
        with open(path, "wb") as f:
            for _ in range(size >> 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(b"hello\n")
    return list(names)


def evict(root, names):
    for name in names:
        fd = os.open(os.path.join(root, name), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class SmallClient(threading.Thread):
    """GET /small.txt back to back on one keep-alive connection, timing each."""

    def __init__(self, port, stop=None, count=None):
        super().__init__(daemon=True)
        self.port, self.stop, self.count = port, stop, count
        self.times = []
        self.error = None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            req = b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            buf = b""
            while (self.stop is None or not self.stop.is_set()) and (self.count is None or
                                                                     len(self.times) < self.count):
                t0 = time.perf_counter()
                s.sendall(req)
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0 and len(buf) >= end + 4 + 6:
                        buf = buf[end + 4 + 6:]
                        break
                    data = s.recv(65536)
                    if not data:
                        raise RuntimeError("server closed the small client's connection")
                    buf += data
                self.times.append(time.perf_counter() - t0)
                # A pause of 0-1 ms (uniform) before the next request, so the
                # requests sample the timeline evenly: back to back, they would
                # pile into the loop's free moments and hide its stalls.
                time.sleep(random.random() / 1000)
            s.close()
        except Exception as e:  # reported by the caller
            self.error = e


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1e3


def run_idle(port):
    c = SmallClient(port, count=IDLE_REQUESTS)
    c.start()
    c.join()
    if c.error:
        sys.exit("small client: %s" % c.error)
    return pct(c.times, 50), pct(c.times, 99), None, len(c.times)


def run_cold(port, root, names, files):
    evict(root, names)
    stop = threading.Event()
    c = SmallClient(port, stop=stop)
    c.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                               "http://127.0.0.1:%d/%s" % (port, f)], stdout=subprocess.PIPE, text=True)
             for f in files]
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=600)
        total += int(out or 0)
    elapsed = time.monotonic() - t0
    stop.set()
    c.join()
    if c.error:
        sys.exit("small client: %s" % c.error)
    want = sum(os.path.getsize(os.path.join(root, f)) for f in files)
    if total != want:
        sys.exit("cold downloads got %d bytes of %d" % (total, want))
    return pct(c.times, 50), pct(c.times, 99), total / elapsed / 1e6, len(c.times)


def main():
    if not shutil.which("nginx") or not shutil.which("curl"):
        sys.exit("needs nginx (nginx-light) and curl")
    if not os.access(HTTPD, os.X_OK):
        sys.exit("no server at %s (build it, or set EVSENDFILE_HTTPD)" % HTTPD)
    md_path = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--markdown" else None
    servers = ["ours", "ours-inline", "nginx-sf"]
    if nginx_has_aio_threads():
        servers.append("nginx-aio")
    else:
        print("nginx was built without --with-threads: no aio threads contender")
    scenarios = [("idle", None), ("1 cold", ["big.bin"]), ("8 cold", ["m%d.bin" % i for i in range(MANY)])]
    tmp = tempfile.mkdtemp(prefix="evsf-cold-")
    base = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="evsf-cold-files-", dir="/var/tmp")
    root = os.path.join(base, "www")
    os.makedirs(root, exist_ok=True)
    results = {}  # (server, scenario) -> list of (p50, p99, MB/s, requests)
    try:
        print("writing %d MiB of files under %s" % ((BIG + MANY * MANY_SIZE) >> 20, root), flush=True)
        names = make_files(root)
        for rnd in range(ROUNDS):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            for name in order:
                proc, port = start_server(tmp, root, name)
                try:
                    for scen, files in scenarios:
                        r = run_idle(port) if files is None else run_cold(port, root, names, files)
                        results.setdefault((name, scen), []).append(r)
                        print("round %d %-11s %-6s p50 %.3f ms  p99 %.3f ms  %s  (%d small requests)" %
                              (rnd + 1, name, scen, r[0], r[1], "-" if r[2] is None else "%.0f MB/s" % r[2],
                               r[3]), flush=True)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.environ.get("BENCH_DIR"):
            shutil.rmtree(base, ignore_errors=True)

    def med(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    lines = ["cold_bench: %s UTC, %d rounds (interleaved), 1 worker/loop thread each, loopback, "
             "2 cores shared with other sessions' work" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), ROUNDS),
             "",
             "| server | idle p50 / p99 (ms) | 1 cold: small p50 / p99 (ms) | 1 cold: MB/s "
             "| 8 cold: small p50 / p99 (ms) | 8 cold: MB/s |",
             "|---|---|---|---|---|---|"]
    for name in servers:
        cells = []
        for scen, _ in scenarios:
            rs = results[(name, scen)]
            p50, p99 = med([r[0] for r in rs]), med([r[1] for r in rs])
            cells.append("%.2f / %.2f" % (p50, p99))
            if scen != "idle":
                cells.append("%.0f" % med([r[2] for r in rs]))
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if md_path:
        with open(md_path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
