"""The drop-in's copy path under user-space TLS (create_sendfile_callable on an
SSL transport) against asyncio's loop.sendfile(..., fallback=True), the call
it replaced (uvloop has no loop.sendfile).  One 64 MiB response per round per
contender, client in the same process, rounds interleaved; medians of MB/s.

    EVSENDFILE_LIBRARY=$PWD/build/libevsendfile.so.2 /usr/bin/python3 bench/python_tls_copy.py [ROUNDS]
"""

import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
import evsendfile  # noqa: E402

SIZE = 64 * 1024 * 1024


def contexts(d):
    key, cert = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cert)
    return server, client


async def one(kind, path, server_ctx, client_ctx):
    async def handler(r, w):
        if kind == "evsendfile-copy":
            await evsendfile.create_sendfile_callable(w)(path, 0, SIZE)
        else:
            with open(path, "rb") as f:
                await asyncio.get_running_loop().sendfile(w.transport, f, 0, SIZE, fallback=True)
        w.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    t0 = time.perf_counter()
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
    n = 0
    while True:
        b = await r.read(1 << 20)
        if not b:
            break
        n += len(b)
    elapsed = time.perf_counter() - t0
    w.close()
    server.close()
    await server.wait_closed()
    assert n == SIZE, (kind, n)
    return SIZE / elapsed / 1e6


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(SIZE))
        server_ctx, client_ctx = contexts(d)
        cells = [("asyncio", "evsendfile-copy"), ("asyncio", "loop.sendfile-fallback"), ("uvloop", "evsendfile-copy")]
        got = {c: [] for c in cells}
        for _ in range(rounds):
            for loop, kind in cells:
                if loop == "uvloop":
                    import uvloop
                    runner = uvloop.new_event_loop
                else:
                    runner = asyncio.new_event_loop
                lp = runner()
                try:
                    got[(loop, kind)].append(lp.run_until_complete(one(kind, path, server_ctx, client_ctx)))
                finally:
                    lp.close()
        for (loop, kind), v in got.items():
            print(f"{loop:8} {kind:24} median {statistics.median(v):7.1f} MB/s  (min {min(v):.1f}, max {max(v):.1f}, {rounds} rounds)")


if __name__ == "__main__":
    main()
