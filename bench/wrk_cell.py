"""What the Python benchmarks share: test files, and one wrk cell with the
server's CPU seconds around it (bench/python_bench.py, bench/asgi_bench.py)."""

from __future__ import annotations

import os
import subprocess
from typing import Callable

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
             server_cpu: Callable[[], float]) -> dict[str, float]:
    """One wrk run: throughput (GB/s, requests/s) and server CPU seconds per GB."""
    cpu0 = server_cpu()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s", script, url],
        capture_output=True, text=True, timeout=seconds + 120,
    ).stdout
    cpu1 = server_cpu()
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    nbytes, nreq, dur_us, errors = (int(x) for x in line.split()[1:])
    secs = dur_us / 1e6
    gb = nbytes / 1e9
    return {"gbps": gb / secs, "rps": nreq / secs,
            "cpu_per_gb": (cpu1 - cpu0) / gb if gb else float("nan"), "errors": errors}
