#!/usr/bin/python3
"""Python binding benchmark: evsendfile vs loop.sendfile vs a writer.write loop.

One run, interleaved rounds.  Each contender is a small asyncio HTTP/1.1
keep-alive file server in its own process (started once); wrk (one thread)
drives it for every (file size, concurrent clients) cell, the contenders'
order rotating from cell to cell.  For each cell we record wrk's bytes and
requests and the server process's CPU time (time.process_time(): every
thread, the library's worker thread included), then print medians over the
rounds and ratios against loop.sendfile.

    EVSENDFILE_LIBRARY=/work/main/build/libevsendfile.so.2 /usr/bin/python3 bench/python_bench.py

Shrink it with EVSF_BENCH_ROUNDS (default 3), EVSF_BENCH_SECONDS (per cell,
default 2), EVSF_BENCH_SIZES (default 16k,1m,256m), EVSF_BENCH_CLIENTS
(default 1,32,256), EVSF_BENCH_CONTENDERS.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import run_cell, write_files

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bindings", "python"))

SIZES = {"16k": 16 * 1024, "1m": 1 << 20, "256m": 256 << 20}
CONTENDERS = ["evsendfile", "evsendfile-dropin", "loop.sendfile", "write-loop"]
BASELINE = "loop.sendfile"
WRITE_CHUNK = 256 * 1024



# ------------------------------------------------------------------ server


async def serve(mode: str, files: dict[bytes, tuple[str, int]], port_file: str) -> None:
    import evsendfile

    loop = asyncio.get_running_loop()

    async def respond(writer: asyncio.StreamWriter, target: bytes, dropin) -> None:
        if target == b"/__cpu":
            body = repr(time.process_time()).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        path, size = files[target]
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
        if mode == "evsendfile":
            await evsendfile.send_file(writer, path, 0, size, head=head)
        elif mode == "evsendfile-dropin":
            writer.write(head)
            await dropin(path, 0, size)
        elif mode == "loop.sendfile":
            writer.write(head)
            with open(path, "rb", buffering=0) as f:
                await loop.sendfile(writer.transport, f, 0, size)
        else:  # write-loop
            writer.write(head)
            fd = os.open(path, os.O_RDONLY)
            try:
                off = 0
                while off < size:
                    chunk = os.pread(fd, min(WRITE_CHUNK, size - off), off)
                    if not chunk:
                        raise OSError("short file")
                    writer.write(chunk)
                    off += len(chunk)
                    await writer.drain()
            finally:
                os.close(fd)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dropin = evsendfile.create_sendfile_callable(writer) if mode == "evsendfile-dropin" else None
        try:
            while True:
                try:
                    request = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                await respond(writer, request.split(b" ", 2)[1], dropin)
        except (ConnectionError, OSError, RuntimeError):
            pass  # wrk hangs up mid-response at the end of each cell
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------ driver


def server_cpu(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /__cpu HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
            data.split(b"Content-Length: ")[1].split(b"\r\n")[0]
        ):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return float(data.split(b"\r\n\r\n", 1)[1])


def wait_port(port_file: str, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 30
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start (exit {proc.returncode})")
        time.sleep(0.01)
    with open(port_file) as f:
        return int(f.read())


def main() -> None:
    rounds = int(os.environ.get("EVSF_BENCH_ROUNDS", "3"))
    seconds = int(os.environ.get("EVSF_BENCH_SECONDS", "2"))
    sizes = os.environ.get("EVSF_BENCH_SIZES", ",".join(SIZES)).split(",")
    clients = [int(c) for c in os.environ.get("EVSF_BENCH_CLIENTS", "1,32,256").split(",")]
    contenders = os.environ.get("EVSF_BENCH_CONTENDERS", ",".join(CONTENDERS)).split(",")

    import evsendfile  # fail early, with the loader's message, if the library is missing
    from evsendfile import _ffi

    work = tempfile.mkdtemp(prefix="evsf-pybench-")
    script = write_files(work, SIZES, sizes)

    print(f"# python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"# library {evsendfile.library_version()} from {_ffi.loaded_from}")
    print(f"# rounds={rounds} seconds/cell={seconds} sizes={sizes} clients={clients}")
    procs, ports = {}, {}
    try:
        for c in contenders:
            port_file = os.path.join(work, f"port-{c}")
            procs[c] = subprocess.Popen([sys.executable, __file__, "--serve", c, work, port_file])
            ports[c] = wait_port(port_file, procs[c])
        results: dict[tuple[str, int, str], list[dict[str, float]]] = {}
        cell = 0
        for r in range(rounds):
            for s in sizes:
                for n in clients:
                    order = contenders[cell % len(contenders):] + contenders[: cell % len(contenders)]
                    cell += 1
                    for c in order:
                        res = run_cell(f"http://127.0.0.1:{ports[c]}/{s}", n, seconds, script,
                                       lambda: server_cpu(ports[c]))
                        results.setdefault((s, n, c), []).append(res)
                        print(f"round {r + 1} {s:>4} x{n:<3} {c:<18} {res['gbps']:6.2f} GB/s "
                              f"{res['rps']:9.0f} req/s {res['cpu_per_gb']:6.3f} cpu-s/GB err={res['errors']}",
                              flush=True)
        report(results, sizes, clients, contenders)
    finally:
        for p in procs.values():
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def report(results, sizes, clients, contenders) -> None:
    def med(s, n, c, key):
        return statistics.median(x[key] for x in results[(s, n, c)])

    print("\n## medians over rounds (ratios are vs loop.sendfile: throughput >1 and CPU/GB <1 are better)")
    print("| size | clients | contender | GB/s | req/s | CPU s/GB | GB/s ratio | CPU/GB ratio | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sizes:
        for n in clients:
            for c in contenders:
                g, rps, cpu = med(s, n, c, "gbps"), med(s, n, c, "rps"), med(s, n, c, "cpu_per_gb")
                errs = sum(x["errors"] for x in results[(s, n, c)])
                if BASELINE in contenders:
                    gr = g / med(s, n, BASELINE, "gbps")
                    cr = cpu / med(s, n, BASELINE, "cpu_per_gb")
                    ratios = f"{gr:.2f} | {cr:.2f}"
                else:
                    ratios = "- | -"
                print(f"| {s} | {n} | {c} | {g:.3f} | {rps:.0f} | {cpu:.3f} | {ratios} | {errs} |")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        mode, work, port_file = sys.argv[2:]
        files = {f"/{n}".encode(): (os.path.join(work, n), SIZES[n]) for n in SIZES
                 if os.path.exists(os.path.join(work, n))}
        try:
            asyncio.run(serve(mode, files, port_file))
        except KeyboardInterrupt:
            pass
    else:
        main()
