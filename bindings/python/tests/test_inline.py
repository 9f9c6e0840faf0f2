"""A small region is sent by one step on the asyncio thread; when that step
meets a full socket, the job goes to the worker and finishes there (nothing
waits on the asyncio thread).  These tests fill the kernel send buffer first
(os.write on the socket, behind the transport's back, so its own buffer stays
empty) to force that deterministically.  The client is a raw socket that
nothing reads until the test does (a stream client would read on the same
loop, at a moment that differs between asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest
from conftest import make_file, run, serve, wait_until

import evsendfile
from evsendfile import _inline, _worker

pytestmark = pytest.mark.skipif(not _inline.AVAILABLE, reason="EVSENDFILE_PY_NO_INLINE is set")


def fill_send_buffer(fd: int) -> bytes:
    """Write to the non-blocking socket until the kernel refuses more."""
    sent = bytearray()
    block = os.urandom(64 * 1024)
    while True:
        try:
            n = os.write(fd, block)
        except BlockingIOError:
            return bytes(sent)
        sent += block[:n]


async def raw_connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def raw_read_to_eof(sock: socket.socket) -> bytes:
    got = bytearray()
    while True:
        try:
            b = await asyncio.get_running_loop().sock_recv(sock, 1 << 20)
        except ConnectionError:
            break
        if not b:
            break
        got += b
    return bytes(got)


def _server(tmp_path, size, **kw):
    path = tmp_path / "small.bin"
    data = make_file(path, size)
    st = {"started": asyncio.Event()}

    async def handler(r, w):
        st["writer"] = w
        st["filler"] = fill_send_buffer(w.get_extra_info("socket").fileno())
        st["task"] = asyncio.ensure_future(evsendfile.send_file(w, path, 0, size, head=b"<", tail=b">", **kw))
        st["started"].set()
        try:
            st["result"] = ("ok", await st["task"])
        except BaseException as e:
            st["result"] = ("raised", e)
        st["closing"] = w.transport.is_closing()
        st["reading"] = w.transport.is_reading() if not st["closing"] else None

    return data, st, handler


def test_small_response_done_in_the_first_step_never_reaches_the_worker(tmp_path, monkeypatch):
    path = tmp_path / "small.bin"
    data = make_file(path, 16_000)
    submitted = []
    real_submit = _worker.submit_job
    monkeypatch.setattr(_worker, "submit_job", lambda job: submitted.append(1) or real_submit(job))

    async def handler(r, w):
        await evsendfile.send_file(w, path, 0, len(data), head=b"<", tail=b">")

    async def main():
        async with serve(handler) as port:
            client = await raw_connect(port)
            got = await raw_read_to_eof(client)
            client.close()
        return got

    assert run(main()) == b"<" + data + b">"
    assert submitted == []


def test_small_region_meeting_a_full_socket_finishes_on_the_worker(tmp_path):
    data, st, handler = _server(tmp_path, 40_000)

    async def main():
        async with serve(handler) as port:
            client = await raw_connect(port)
            await asyncio.wait_for(st["started"].wait(), 30)
            await asyncio.sleep(0)  # the task steps once, gets EAGAIN, hands the job over
            assert not st["task"].done()
            assert not st["writer"].transport.is_reading(), "reading is paused while it waits"
            assert len(_worker._pending) == 1, "the job waits on the worker"
            got = await raw_read_to_eof(client)
            client.close()
        return got

    got = run(main())
    assert st["result"] == ("ok", len(data))
    assert st["closing"] is False and st["reading"] is True
    assert got == st["filler"] + b"<" + data + b">"


def test_small_region_cancelled_on_the_worker_aborts(tmp_path):
    data, st, handler = _server(tmp_path, 40_000)

    async def main():
        async with serve(handler) as port:
            client = await raw_connect(port)
            await asyncio.wait_for(st["started"].wait(), 30)
            await asyncio.sleep(0)
            st["task"].cancel()
            await wait_until(lambda: "result" in st, "cancellation")
            got = await raw_read_to_eof(client)
            client.close()
        return got

    got = run(main())
    kind, exc = st["result"]
    assert kind == "raised" and isinstance(exc, asyncio.CancelledError)
    assert st["closing"] is True
    assert len(got) < len(st["filler"]) + len(data) + 2


def test_small_region_idle_timeout_from_the_engine(tmp_path):
    data, st, handler = _server(tmp_path, 40_000, idle_timeout=0.2)

    async def main():
        async with serve(handler) as port:
            client = await raw_connect(port)
            await wait_until(lambda: "result" in st, "the idle timeout")
            client.close()

    run(main())
    kind, exc = st["result"]
    assert kind == "raised" and isinstance(exc, TimeoutError) and exc.errno == errno.ETIMEDOUT
    assert exc.sf_status == -30002  # SF_ETIMEDOUT
    assert st["closing"] is True
