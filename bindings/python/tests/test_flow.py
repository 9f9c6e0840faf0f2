"""Back-pressure, disconnects, cancellation, truncation and timeouts, each
on a real loopback connection whose client stops reading so that the
transfer is parked on a full send buffer (the EAGAIN path)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import time

import pytest
from conftest import connect, make_file, read_to_eof, run, serve, unread_bytes, unsent_bytes, wait_until

import evsendfile
from evsendfile import _inline, _worker

BIG = 32 * 1024 * 1024  # far more than the socket buffers of both ends hold


class Parked:
    """A server whose handler runs `body(writer)` as a task the test controls."""

    def __init__(self, body):
        self.body = body
        self.task = None
        self.writer = None
        self.ready = asyncio.Event()
        self.outcome = None
        self.closing = None  # transport.is_closing() right after the body ended

    async def handler(self, r, w):
        self.writer = w
        self.task = asyncio.ensure_future(self.body(w))
        self.ready.set()
        try:
            self.outcome = ("ok", await self.task)
        except BaseException as e:  # the test inspects what happened
            self.outcome = ("raised", e)
        self.closing = w.transport.is_closing()

    async def wait_stuck(self, client_writer):
        """Until bytes sit unsent on the server and unread on the client."""
        await asyncio.wait_for(self.ready.wait(), 30)
        server_sock = self.writer.get_extra_info("socket")
        client_sock = client_writer.get_extra_info("socket")
        await wait_until(
            lambda: unsent_bytes(server_sock) > 0 and unread_bytes(client_sock) > 0,
            "socket buffers to fill",
        )
        assert not self.task.done(), "a 32 MiB transfer cannot fit in the socket buffers"


@pytest.mark.parametrize("count", [None, BIG])  # explicit: the first step runs inline, then hand-over
def test_slow_reader_gets_every_byte(engine_path, tmp_path, count):
    path = tmp_path / "f.bin"
    data = make_file(path, BIG)
    parked = Parked(lambda w: evsendfile.send_file(w, path, 0, count, head=b"H", tail=b"T"))

    async def main():
        async with serve(parked.handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await parked.wait_stuck(w)
            assert not parked.writer.transport.is_reading(), "reading must be paused during the transfer"
            assert len(_worker._pending) == 1, "a large region must be moved by the worker thread"
            got = bytearray()
            while len(got) < BIG + 2:  # small reads: the sender refills many times
                chunk = await r.read(16 * 1024)
                assert chunk, "early EOF"
                got += chunk
            w.close()
        return bytes(got)

    assert run(main()) == b"H" + data + b"T"
    assert parked.outcome == ("ok", BIG)
    assert parked.closing is False


@pytest.mark.parametrize("how", ["rst", "fin"])
def test_client_disconnect_mid_transfer(tmp_path, how):
    path = tmp_path / "f.bin"
    make_file(path, BIG)
    parked = Parked(lambda w: evsendfile.send_file(w, path))

    async def main():
        async with serve(parked.handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await parked.wait_stuck(w)
            if how == "fin":
                await r.readexactly(1000)
            sock = w.get_extra_info("socket")
            # Closing with unread data sends RST; after "fin" the peer sees a
            # normal close first and gets RST/EPIPE on its next sends.
            if how == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.close()
            await wait_until(lambda: parked.outcome is not None, "server outcome")

    run(main())
    kind, exc = parked.outcome
    assert kind == "raised" and isinstance(exc, (BrokenPipeError, ConnectionResetError)), parked.outcome
    assert 0 < exc.body_sent < BIG
    assert parked.closing is True


def test_cancel_mid_transfer_stops_c_side_and_closes_transport(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, BIG)
    parked = Parked(lambda w: evsendfile.send_file(w, path))

    async def main():
        async with serve(parked.handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await parked.wait_stuck(w)
            parked.task.cancel()
            await wait_until(lambda: parked.outcome is not None, "server outcome")
            assert parked.closing is True
            assert not _worker._pending, "the C transfer is still registered"
            got = await read_to_eof(r)  # the client sees the connection end
            w.close()
        return got

    got = run(main())
    kind, exc = parked.outcome
    assert kind == "raised" and isinstance(exc, asyncio.CancelledError)
    assert 0 < len(got) < BIG and got == data[: len(got)]


def test_cancel_at_random_points_never_leaves_an_undefined_state(tmp_path):
    # Cancels land before submit, during the transfer, and after completion
    # raced with the done callback.  Each outcome must be one of the two
    # defined ones, and the loop's exception handler must stay silent.
    path = tmp_path / "f.bin"
    data = make_file(path, 300_000)
    rng = random.Random(1234)
    outcomes = {"completed": 0, "cancelled": 0}

    async def one(delay_turns):
        done = asyncio.Event()
        result = {}

        async def handler(r, w):
            task = asyncio.ensure_future(evsendfile.send_file(w, path))
            for _ in range(delay_turns):
                await asyncio.sleep(0)
            task.cancel()
            try:
                result["n"] = await task
            except asyncio.CancelledError:
                result["cancelled"] = True
            result["closing"] = w.transport.is_closing()
            done.set()

        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            await done.wait()
            w.close()
        if "n" in result:
            assert got == data and not result["closing"]
            outcomes["completed"] += 1
        else:
            # cancelled: aborted (partial) -- or, if the transfer had already
            # finished when the cancel arrived, complete and still open
            assert got == data[: len(got)]
            if not result["closing"]:  # cancelled before submit, or after completion
                assert got in (b"", data)
            outcomes["cancelled"] += 1

    async def main():
        for _ in range(40):
            await one(rng.randrange(0, 12))

    run(main())
    assert outcomes["cancelled"] > 0


def test_file_truncated_mid_transfer(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, BIG)
    parked = Parked(lambda w: evsendfile.send_file(w, path, 0, BIG))

    async def main():
        async with serve(parked.handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await parked.wait_stuck(w)
            os.truncate(path, 0)
            got = await read_to_eof(r)
            w.close()
        return got

    got = run(main())
    kind, exc = parked.outcome
    assert kind == "raised" and isinstance(exc, evsendfile.TruncatedFileError), parked.outcome
    assert isinstance(exc, OSError) and "truncated" in str(exc)
    assert 0 < exc.body_sent < BIG
    assert got == data[: exc.body_sent], "the client must get exactly the bytes reported sent"
    assert parked.closing is True


def test_idle_timeout_raises_timeouterror_and_aborts(tmp_path):
    path = tmp_path / "f.bin"
    make_file(path, BIG)
    parked = Parked(lambda w: evsendfile.send_file(w, path, idle_timeout=0.2))

    async def main():
        async with serve(parked.handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await wait_until(lambda: parked.outcome is not None, "the idle timeout")
            w.close()

    run(main())
    kind, exc = parked.outcome
    assert kind == "raised" and isinstance(exc, TimeoutError), parked.outcome
    assert exc.sf_status == -30002
    assert parked.closing is True


def test_cancel_after_c_side_finished_but_before_the_loop_heard(tmp_path, monkeypatch):
    # The done callback has already queued its result for the loop when the
    # task is cancelled: the late result must land on the cancelled future
    # without an error, and the finished transfer must not be reported as
    # partial.  The loop thread is held (no await) while the C side finishes.
    monkeypatch.setattr(_inline, "AVAILABLE", False)  # the whole transfer on the worker
    path = tmp_path / "f.bin"
    data = make_file(path, 100_000)

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.settimeout(30)
        try:
            task = asyncio.ensure_future(evsendfile.send_file(a, path))
            await asyncio.sleep(0)  # the task submits and awaits its future
            assert not task.done()
            got = bytearray()
            while len(got) < len(data):
                got += b.recv(1 << 20)
            deadline = time.monotonic() + 30
            while _worker._pending:  # the callback has run on the worker thread
                assert time.monotonic() < deadline
                time.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return bytes(got)
        finally:
            a.close()
            b.close()

    assert run(main()) == data
