"""The drop-in API (SendfileRegion, can_use_sendfile, create_sendfile_callable)
behind real asyncio servers, plain and TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import connect, make_file, read_to_eof, run, serve, unread_bytes, unsent_bytes, wait_until

import evsendfile


def test_sendfile_region_is_a_frozen_marker():
    r = evsendfile.SendfileRegion(Path("/x"), 10, 1234)
    assert len(r) == 1234 and (r.path, r.offset, r.count) == (Path("/x"), 10, 1234)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.count = 1  # type: ignore[misc]
    assert r == evsendfile.SendfileRegion(Path("/x"), 10, 1234)


def _regions(size):
    # (offset, count) per request: small (one writev), sendfile-sized, to EOF
    out = []
    for i in range(100):
        count = [1, 100, 32 * 1024, 32 * 1024 + 1, 70_000, 300_000][i % 6]
        offset = (i * 7919) % (size - count)
        out.append((offset, count))
    return out


def test_100_keepalive_requests_on_one_connection(engine_path, tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, 1024 * 1024)
    regions = _regions(len(data))

    async def handler(r, w):
        sendfile = evsendfile.create_sendfile_callable(w)
        assert evsendfile.can_use_sendfile(w)
        for _ in regions:
            line = await r.readline()
            if not line:
                return
            offset, count = map(int, line.split())
            w.write(b"LEN %d\r\n" % count)  # the header goes through the transport
            await sendfile(path, offset, count)
            w.write(b"\r\n")  # and so does what follows the body
            assert w.transport.is_reading(), "reading must be resumed after each transfer"

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            # the first half one by one, the second half pipelined: requests
            # arrive while reading is paused and must all be answered
            async def check(offset, count):
                assert await r.readline() == b"LEN %d\r\n" % count
                assert await r.readexactly(count) == data[offset : offset + count]
                assert await r.readexactly(2) == b"\r\n"

            for offset, count in regions[:50]:
                w.write(b"%d %d\n" % (offset, count))
                await check(offset, count)
            for offset, count in regions[50:]:
                w.write(b"%d %d\n" % (offset, count))
            for offset, count in regions[50:]:
                await check(offset, count)
            w.close()

    run(main())


def _dropin_server(tmp_path, size, body):
    """A server whose handler writes a header then runs body(sendfile)."""
    path = tmp_path / "f.bin"
    data = make_file(path, size)
    state = {}

    async def handler(r, w):
        sendfile = evsendfile.create_sendfile_callable(w, write_timeout=0.3)
        state["writer"] = w
        w.write(b"HDR\n")
        try:
            state["result"] = ("ok", await body(sendfile, path))
        except BaseException as e:
            state["result"] = ("raised", e)
        state["closing"] = w.transport.is_closing()

    return path, data, state, handler


def test_dropin_client_disconnect_is_quiet(tmp_path):
    path, data, state, handler = _dropin_server(tmp_path, 32 << 20, lambda sf, p: sf(p, 0, 32 << 20))

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await wait_until(lambda: "writer" in state, "handler start")
            sock = w.get_extra_info("socket")
            srv = state["writer"].get_extra_info("socket")
            await wait_until(lambda: unread_bytes(sock) > 0 and unsent_bytes(srv) > 0, "buffers to fill")
            w.close()
            await wait_until(lambda: "result" in state, "server outcome")

    run(main())
    assert state["result"] == ("ok", None)
    assert state["closing"] is True


def test_dropin_short_file_aborts_connection(tmp_path, caplog):
    # asked for more bytes than the file has: the promised length cannot be
    # met, so the connection is aborted (with a warning) and nothing raises
    path, data, state, handler = _dropin_server(tmp_path, 5000, lambda sf, p: sf(p, 100, 10_000))

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    with caplog.at_level(logging.WARNING, logger="evsendfile"):
        got = run(main())
    assert state["result"] == ("ok", None) and state["closing"] is True
    assert got == b"HDR\n"
    assert "aborting connection" in caplog.text


def test_dropin_truncated_mid_transfer_aborts_quietly(tmp_path):
    size = 32 << 20
    path, data, state, handler = _dropin_server(tmp_path, size, lambda sf, p: sf(p, 0, size))

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await wait_until(lambda: "writer" in state, "handler start")
            srv = state["writer"].get_extra_info("socket")
            await wait_until(lambda: unsent_bytes(srv) > 0, "buffers to fill")
            os.truncate(path, 0)
            got = await read_to_eof(r)
            w.close()
        return got

    got = run(main())
    assert state["result"] == ("ok", None) and state["closing"] is True
    assert got.startswith(b"HDR\n") and got[4:] == data[: len(got) - 4] and len(got) - 4 < size


def test_dropin_write_timeout(tmp_path):
    path, data, state, handler = _dropin_server(tmp_path, 32 << 20, lambda sf, p: sf(p, 0, 32 << 20))

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await wait_until(lambda: "result" in state, "write timeout")
            w.close()

    run(main())
    kind, exc = state["result"]
    assert kind == "raised" and isinstance(exc, TimeoutError)
    assert state["closing"] is True


def test_dropin_zero_count_and_closed_writer(tmp_path):
    async def body(sf, p):
        await sf(p, 0, 0)
        await sf(p, 10, -1)

    path, data, state, handler = _dropin_server(tmp_path, 100, body)

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    assert run(main()) == b"HDR\n"
    assert state["result"] == ("ok", None) and state["closing"] is False


def test_without_a_socket_the_copy_path_writes_exact_bytes(tmp_path):
    # A pipe transport: asyncio has no socket for it, uvloop a pseudo-socket
    # whose fd is the pipe.  Neither may reach the engine; the bytes go
    # through the transport.
    path = tmp_path / "f.bin"
    data = make_file(path, 700_000)  # several copy blocks

    async def main():
        rfd, wfd = os.pipe()
        loop = asyncio.get_running_loop()
        with open(rfd, "rb") as rf, open(wfd, "wb") as wf:
            transport, proto = await loop.connect_write_pipe(
                lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), wf)  # drain() needs its flow control
            writer = asyncio.StreamWriter(transport, proto, None, loop)
            assert evsendfile.can_use_sendfile(writer) is False
            reader = asyncio.StreamReader()
            rtransport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rf)
            writer.write(b"HDR")
            sending = asyncio.ensure_future(evsendfile.create_sendfile_callable(writer)(path, 7, 600_000))
            got = await reader.readexactly(3 + 600_000)
            await asyncio.wait_for(sending, 30)
            transport.close()
            rtransport.close()
            await asyncio.sleep(0)
        return got

    assert run(main()) == b"HDR" + data[7:600_007]


NO_SENDFILE_CHILD = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
import conftest, evsendfile
from conftest import connect, read_to_eof, run, serve
if sys.argv[2] == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
seen = []

async def handler(r, w):
    seen.append(evsendfile.can_use_sendfile(w))
    await evsendfile.create_sendfile_callable(w)(sys.argv[3], 5, 150_000)  # the library's copy path

async def main():
    async with serve(handler) as port:
        r, w = await connect(port)
        got = await read_to_eof(r)
        w.close()
    return got

got = run(main())
sys.stdout.buffer.write(repr(seen).encode() + b"\\n" + got)
"""


@pytest.mark.loopless
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_can_use_sendfile_honours_the_no_sendfile_switch(tmp_path, loop, request):
    # The library reads EVSENDFILE_NO_SENDFILE once, when it is loaded: a child process.
    if loop not in request.config.getoption("--loop"):
        pytest.skip(f"--loop excludes {loop}")
    path = tmp_path / "f.bin"
    data = make_file(path, 200_000)
    env = dict(os.environ, EVSENDFILE_NO_SENDFILE="1")
    tests = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([sys.executable, "-c", NO_SENDFILE_CHILD, tests, loop, str(path)],
                       env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    seen, got = p.stdout.split(b"\n", 1)
    assert seen == b"[False]"
    assert got == data[5:150_005]


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cert)
    return server, client


def test_tls_transport(tmp_path, tls_contexts):
    server_ctx, client_ctx = tls_contexts
    path = tmp_path / "f.bin"
    data = make_file(path, 1024 * 1024 + 3)
    seen = {}

    async def handler(r, w):
        seen["can_use"] = evsendfile.can_use_sendfile(w)
        # the low-level call refuses to write plain bytes under TLS, and
        # leaves the connection intact ...
        try:
            await evsendfile.send_file(w, path)
        except OSError as e:
            seen["error"] = e
        # ... while the drop-in goes through the TLS transport
        w.write(b"HDR\n")
        await evsendfile.create_sendfile_callable(w)(path, 3, len(data) - 3)
        w.write(b"END")
        await w.drain()

    async def main():
        async with serve(handler, ssl=server_ctx) as port:
            r, w = await connect(port, ssl=client_ctx)
            got = await read_to_eof(r)
            w.close()
        return got

    assert run(main()) == b"HDR\n" + data[3:] + b"END"
    assert seen["can_use"] is False
    assert seen["error"].sf_status == -30004  # SF_ENOKTLS
    assert "kernel TLS" in seen["error"].strerror


def test_tls_to_curl_delivers_the_whole_body(tmp_path, tls_contexts):
    # The reported defect: under uvloop curl got the 200 head and 0 of 100,000 bytes.
    if shutil.which("curl") is None:
        pytest.skip("curl is needed")
    server_ctx, _ = tls_contexts
    path = tmp_path / "f.bin"
    data = make_file(path, 100_000)
    out = tmp_path / "got.bin"

    async def handler(r, w):
        await r.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n")
        await evsendfile.create_sendfile_callable(w)(path, 0, len(data))

    async def main():
        async with serve(handler, ssl=server_ctx) as port:
            curl = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-k", "--max-time", "30", "-o", str(out), "-w", "%{http_code} %{size_download}",
                f"https://localhost:{port}/f.bin", stdout=asyncio.subprocess.PIPE)
            stdout, _ = await curl.communicate()
        return curl.returncode, stdout.decode()

    rc, summary = run(main())
    assert (rc, summary) == (0, "200 100000")
    assert out.read_bytes() == data


def test_tls_short_file_aborts_after_the_bytes_it_had(tmp_path, tls_contexts, caplog):
    server_ctx, client_ctx = tls_contexts
    path = tmp_path / "f.bin"
    data = make_file(path, 300_000)
    state = {}

    async def handler(r, w):
        w.write(b"HDR\n")
        await evsendfile.create_sendfile_callable(w)(path, 1000, 400_000)  # 100,000 bytes too many
        state["closing"] = w.transport.is_closing()

    async def main():
        async with serve(handler, ssl=server_ctx) as port:
            r, w = await connect(port, ssl=client_ctx)
            got = await read_to_eof(r)
            w.close()
        return got

    got = run(main())
    assert state["closing"] is True
    assert (b"HDR\n" + data[1000:]).startswith(got), "an abort may drop buffered bytes, never change them"
    assert "299000 of 400000" in caplog.text
