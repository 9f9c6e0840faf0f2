#!/usr/bin/python3
"""ASGI/aiohttp file responses: stock vs evsendfile, one run, interleaved rounds.

Contenders, each a server process started once, on each loop (asyncio, uvloop):
  uvicorn        uvicorn (httptools) + Starlette's FileResponse        (stock)
  evsf-uvicorn   evsendfile.uvicorn.HttpToolsProtocol + evsendfile.starlette.FileResponse
  aiohttp        aiohttp's web.FileResponse                            (stock)
  evsf-aiohttp   evsendfile.aiohttp.FileResponse
wrk (one thread) drives every (loop, size, connections) cell for each contender,
the order rotating from cell to cell.  Per cell: wrk's bytes and requests, and
the server's CPU seconds (utime + stime of the process, every thread, from
/proc/PID/stat).  Printed: medians over the rounds, and the median of the
per-round ratios evsf-X / X (throughput: >1 is better; CPU per GB: <1 is better).

    EVSENDFILE_LIBRARY=$PWD/build/libevsendfile.so.2 /usr/bin/python3 bench/asgi_bench.py

EVSF_BENCH_CSV=FILE also writes every round's cell as a CSV row (bench/plot_asgi.py
draws bench/asgi.png from it).  Shrink it with EVSF_BENCH_ROUNDS (default 3), EVSF_BENCH_SECONDS (per cell,
default 2), EVSF_BENCH_SIZES (16k,1m,64m), EVSF_BENCH_CLIENTS (1,32),
EVSF_BENCH_LOOPS (asyncio,uvloop).
"""

from __future__ import annotations

import csv
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_seconds, free_port, run_cell, wait_port, write_files

HERE = os.path.dirname(os.path.abspath(__file__))
BINDING = os.path.join(os.path.dirname(HERE), "bindings", "python")
sys.path.insert(0, BINDING)

SIZES = {"16k": 16 * 1024, "1m": 1 << 20, "64m": 64 << 20}
CONTENDERS = ["uvicorn", "evsf-uvicorn", "aiohttp", "evsf-aiohttp"]
PAIRS = [("evsf-uvicorn", "uvicorn"), ("evsf-aiohttp", "aiohttp")]



def serve(kind: str, loop: str, work: str, port: int) -> None:
    """The server process of one contender."""
    if kind.endswith("uvicorn"):
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import FileResponse as StockFileResponse
        from starlette.routing import Route

        if kind == "evsf-uvicorn":
            from evsendfile.starlette import FileResponse
            from evsendfile.uvicorn import HttpToolsProtocol as http
        else:
            FileResponse, http = StockFileResponse, "httptools"

        async def endpoint(request):
            return FileResponse(os.path.join(work, request.path_params["name"]))

        app = Starlette(routes=[Route("/{name}", endpoint)])
        uvicorn.run(app, host="127.0.0.1", port=port, loop=loop, http=http, access_log=False, log_level="warning")
    else:
        import asyncio

        from aiohttp import web

        if loop == "uvloop":
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        if kind == "evsf-aiohttp":
            from evsendfile.aiohttp import FileResponse
        else:
            FileResponse = web.FileResponse

        async def handler(request):
            return FileResponse(os.path.join(work, request.match_info["name"]))

        app = web.Application()
        app.router.add_get("/{name}", handler)
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *a: None)








def main() -> None:
    rounds = int(os.environ.get("EVSF_BENCH_ROUNDS", "3"))
    seconds = int(os.environ.get("EVSF_BENCH_SECONDS", "2"))
    sizes = os.environ.get("EVSF_BENCH_SIZES", ",".join(SIZES)).split(",")
    clients = [int(c) for c in os.environ.get("EVSF_BENCH_CLIENTS", "1,32").split(",")]
    loops = os.environ.get("EVSF_BENCH_LOOPS", "asyncio,uvloop").split(",")

    import aiohttp
    import starlette
    import uvicorn
    import uvloop

    import evsendfile

    work = tempfile.mkdtemp(prefix="evsf-asgibench-")
    script = write_files(work, SIZES, sizes)

    print(f"# python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"# uvicorn {uvicorn.__version__}, starlette {starlette.__version__}, aiohttp {aiohttp.__version__}, "
          f"uvloop {uvloop.__version__}, libevsendfile {evsendfile.library_version()}")
    print(f"# rounds={rounds} seconds/cell={seconds} sizes={sizes} clients={clients} loops={loops}")
    procs: dict[tuple[str, str], tuple[subprocess.Popen, int]] = {}
    env = dict(os.environ, PYTHONPATH=BINDING)
    csv_path = os.environ.get("EVSF_BENCH_CSV")
    csv_file = open(csv_path, "w", newline="") if csv_path else None
    try:
        for loop in loops:
            for c in CONTENDERS:
                port = free_port()
                p = subprocess.Popen([sys.executable, __file__, "--serve", c, loop, work, str(port)], env=env)
                procs[(c, loop)] = (p, port)
                wait_port(port, p)
        results: dict[tuple[str, str, int, str], list[dict[str, float]]] = {}
        rows = csv.writer(csv_file) if csv_file else None
        if rows:
            rows.writerow(["round", "loop", "size", "conns", "contender", "gbps", "rps", "cpu_per_gb", "errors"])
        cell = 0
        for r in range(rounds):
            for loop in loops:
                for s in sizes:
                    for n in clients:
                        order = CONTENDERS[cell % 4:] + CONTENDERS[: cell % 4]
                        cell += 1
                        for c in order:
                            p, port = procs[(c, loop)]
                            res = run_cell(f"http://127.0.0.1:{port}/{s}", n, seconds, script, lambda: cpu_seconds(p.pid))
                            results.setdefault((loop, s, n, c), []).append(res)
                            if rows:
                                rows.writerow([r + 1, loop, s, n, c, res["gbps"], res["rps"], res["cpu_per_gb"],
                                               res["errors"]])
                            print(f"round {r + 1} {loop:7} {s:>4} x{n:<3} {c:<13} {res['gbps']:7.3f} GB/s "
                                  f"{res['rps']:8.0f} req/s {res['cpu_per_gb']:7.3f} cpu-s/GB err={res['errors']}",
                                  flush=True)
        report(results, loops, sizes, clients, rounds)
    finally:
        if csv_file:
            csv_file.close()
        for p, _ in procs.values():
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def report(results, loops, sizes, clients, rounds) -> None:  # type: ignore[no-untyped-def]
    def med(key, cell, c):  # type: ignore[no-untyped-def]
        return statistics.median(x[key] for x in results[(*cell, c)])

    def ratio(key, cell, ours, stock):  # type: ignore[no-untyped-def]
        return statistics.median(a[key] / b[key] for a, b in zip(results[(*cell, ours)], results[(*cell, stock)]))

    print(f"\n## medians over {rounds} rounds; ratio = median of per-round evsf/stock "
          "(throughput >1 better, CPU/GB <1 better)")
    print("| loop | size | conns | stock | stock GB/s | stock CPU s/GB | evsendfile GB/s | evsendfile CPU s/GB "
          "| throughput ratio | CPU/GB ratio | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for loop in loops:
        for s in sizes:
            for n in clients:
                cell = (loop, s, n)
                for ours, stock in PAIRS:
                    errs = sum(x["errors"] for c in (ours, stock) for x in results[(*cell, c)])
                    print(f"| {loop} | {s} | {n} | {stock} | {med('gbps', cell, stock):.3f} "
                          f"| {med('cpu_per_gb', cell, stock):.2f} | {med('gbps', cell, ours):.3f} "
                          f"| {med('cpu_per_gb', cell, ours):.2f} | {ratio('gbps', cell, ours, stock):.2f} "
                          f"| {ratio('cpu_per_gb', cell, ours, stock):.2f} | {errs} |")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
