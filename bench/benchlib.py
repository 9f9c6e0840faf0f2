"""What the Python benchmarks in bench/ share: test files, servers on free
ports (nginx among them), a process's CPU seconds, and one wrk cell with the
server's CPU seconds around it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from typing import Callable

TICK = os.sysconf("SC_CLK_TCK")


def parse_size(s: str) -> int:
    """'16K', '1M', '1G' or a byte count."""
    m = re.fullmatch(r"(\d+)([KMG]?)", s.strip().upper())
    if not m:
        raise ValueError("not a size: %r" % s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def human(n: int) -> str:
    """A byte count as the tables print it: '16 KiB', '1 GiB', '100 B'."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %s" % (n >> shift, unit)
    return "%d B" % n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float = 20) -> None:
    """Until the server on `port` accepts; exits the benchmark if it died or never did."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("server exited early (rc %s)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("server on port %d never accepted" % port)


# One nginx worker serving `root` on loopback, everything under `dir`;
# `directives` are the contender's own (sendfile on/off, aio threads).
NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
pid {dir}/nginx-{name}.pid;
error_log {dir}/error-{name}.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  {directives}
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 65;
  default_type application/octet-stream;
  client_body_temp_path {dir}/body-{name};
  proxy_temp_path {dir}/proxy-{name};
  fastcgi_temp_path {dir}/fastcgi-{name};
  uwsgi_temp_path {dir}/uwsgi-{name};
  scgi_temp_path {dir}/scgi-{name};
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    root {root};
  }}
}}
"""


def start_nginx(tmp: str, root: str, name: str, directives: str) -> tuple[subprocess.Popen, int]:
    """nginx as contender `name` (config, pid and logs in `tmp`); returns it and its port once it accepts."""
    port = free_port()
    conf = os.path.join(tmp, "nginx-%s.conf" % name)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=tmp, name=name, port=port, root=root, directives=directives))
    p = subprocess.Popen(["nginx", "-p", tmp, "-e", os.path.join(tmp, "error-%s.log" % name), "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port, p)
    return p, port


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, all of its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK

# wrk prints bytes, requests, duration (us) and errors on one line we can parse.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\\n", summary.bytes, summary.requests,
           summary.duration, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def write_files(work: str, sizes: dict[str, int], names: list[str]) -> str:
    """Random (incompressible) files named `names` in `work`; returns the wrk script's path."""
    block = os.urandom(1 << 20)
    for name in names:
        with open(os.path.join(work, name), "wb") as f:
            left = sizes[name]
            while left:
                f.write(block[: min(left, len(block))])
                left -= min(left, len(block))
    script = os.path.join(work, "report.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    return script


def run_cell(url: str, clients: int, seconds: int, script: str,
             server_cpu: Callable[[], float], threads: int = 1) -> dict[str, float]:
    """One wrk run: throughput (GB/s, requests/s) and server CPU seconds per GB."""
    cpu0 = server_cpu()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s", script, url],
        capture_output=True, text=True, timeout=seconds + 120,
    ).stdout
    cpu1 = server_cpu()
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    nbytes, nreq, dur_us, errors = (int(x) for x in line.split()[1:])
    secs = dur_us / 1e6
    gb = nbytes / 1e9
    return {"gbps": gb / secs, "rps": nreq / secs,
            "cpu_per_gb": (cpu1 - cpu0) / gb if gb else float("nan"), "errors": errors}
