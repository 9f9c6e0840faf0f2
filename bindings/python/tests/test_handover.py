"""Hand-over: a job stepped on the asyncio thread goes on on the worker thread
(sf_worker_submit_job) from exactly where its last step left it -- whatever
that step returned -- and the peer receives each byte once, in order."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest
from conftest import connect, make_file, open_fds, run, serve, wait_until

import evsendfile
from evsendfile import _inline, _send, _worker
from evsendfile._ffi import SF_STEP_DONE, SF_STEP_YIELD, ffi, lib


def _pair(sndbuf: int = 0) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if sndbuf:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


async def _read_exactly(sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    loop = asyncio.get_running_loop()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, 1 << 20)
        assert chunk, f"early EOF after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


def _job(sock: socket.socket, path, count: int, head: bytes, tail: bytes, max_chunk: int = 0):
    keep: list = []
    region = _send._region(path, 0, count, keep)
    opts = _send._options(head, tail, None, 0, keep)
    if max_chunk:
        opts.max_chunk = max_chunk
    return _send._new_job(sock.fileno(), region, opts)


def test_job_that_yielded_continues_on_the_worker(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, 1024 * 1024)

    async def main():
        a, b = _pair(sndbuf=4 * 1024 * 1024)
        try:
            job = _job(a, path, len(data), b"HEAD", b"TAIL", max_chunk=64 * 1024)
            first = lib.sf_job_step(job)
            if first != SF_STEP_YIELD:
                lib.sf_job_free(job)
                pytest.skip(f"test setup: the socket took less than max_chunk (step returned {first})")
            assert 0 < lib.sf_job_body_sent(job) < len(data)
            reading = asyncio.ensure_future(_read_exactly(b, 8 + len(data)))
            status, sent = await _worker.submit_job(job).future
            got = await reading
            await asyncio.sleep(0.05)  # nothing more may arrive
            with pytest.raises(BlockingIOError):
                b.recv(1)
            return status, sent, got
        finally:
            a.close()
            b.close()

    status, sent, got = run(main())
    assert (status, sent) == (0, len(data))
    assert got == b"HEAD" + data + b"TAIL"


def test_job_that_already_finished_reports_done(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, 10_000)

    async def main():
        a, b = _pair()
        try:
            job = _job(a, path, len(data), b"H", b"T")
            assert lib.sf_job_step(job) == SF_STEP_DONE
            result = await _worker.submit_job(job).future
            return result, await _read_exactly(b, len(data) + 2)
        finally:
            a.close()
            b.close()

    (status, sent), got = run(main())
    assert (status, sent) == (0, len(data))
    assert got == b"H" + data + b"T"


def test_job_that_already_failed_reports_its_error(tmp_path):
    path = tmp_path / "f.bin"
    make_file(path, 10_000)

    async def main():
        a, b = _pair()
        b.close()
        try:
            job = _job(a, path, 10_000, b"H", b"")
            assert lib.sf_job_step(job) == -errno.EPIPE
            return await _worker.submit_job(job).future
        finally:
            a.close()

    status, sent = run(main())
    assert status == -errno.EPIPE and sent == 0


@pytest.mark.skipif(not _inline.AVAILABLE, reason="EVSENDFILE_PY_NO_INLINE is set")
def test_send_file_hands_over_with_the_head_partly_written(tmp_path):
    # The socket is full before send_file: the first step writes at most a
    # part of the 100 KB head, no body byte, and the job goes to the worker
    # as it is.  The peer sees the head once, then the body, then the tail.
    path = tmp_path / "f.bin"
    data = make_file(path, 3 * 1024 * 1024)
    head = os.urandom(100_000)

    async def main():
        a, b = _pair()
        try:
            filler = bytearray()
            block = os.urandom(64 * 1024)
            while True:
                try:
                    filler += block[: a.send(block)]
                except BlockingIOError:
                    break
            sending = asyncio.ensure_future(evsendfile.send_file(a, path, 0, len(data), head=head, tail=b"END"))
            await asyncio.sleep(0)
            assert len(_worker._pending) == 1, "a large region not done after one step goes to the worker"
            got = await _read_exactly(b, len(filler) + len(head) + len(data) + 3)
            return bytes(filler), got, await sending
        finally:
            a.close()
            b.close()

    filler, got, sent = run(main())
    assert sent == len(data)
    assert got == filler + head + data + b"END"


@pytest.mark.parametrize("stepped", [False, True])
def test_a_refused_hand_over_frees_the_job_and_aborts_only_after_a_step(tmp_path, monkeypatch, stepped):
    # No worker thread can be had: the job is freed (its library-opened file
    # closed) and the error raised; the transport is aborted only if the
    # first step may have written part of the response.
    path = tmp_path / "f.bin"
    make_file(path, 8 * 1024 * 1024)  # larger than the socket buffers: never done in one step
    if not stepped:
        monkeypatch.setattr(_inline, "AVAILABLE", False)

    def no_worker():
        raise OSError(errno.EAGAIN, "no thread")

    monkeypatch.setattr(_worker, "_get_worker", no_worker)
    state = {}

    async def handler(r, w):
        before = open_fds()
        try:
            await evsendfile.send_file(w, path, head=b"H")
        except OSError as e:
            state["error"] = e
        state["fds"] = (before, open_fds())
        state["closing"] = w.transport.is_closing()

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port, rcvbuf=32 * 1024)
            await wait_until(lambda: "closing" in state, "the handler")
            w.close()

    run(main())
    assert state["error"].errno == errno.EAGAIN
    assert state["fds"][0] == state["fds"][1], "the job's file was not closed"
    assert state["closing"] is stepped
