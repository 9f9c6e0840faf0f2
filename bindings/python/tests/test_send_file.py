"""send_file over real loopback connections: exact bytes, offsets, ordering."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest
from conftest import connect, make_file, read_to_eof, run, serve

import evsendfile

SIZES = [0, 1, 16 * 1024, 32 * 1024, 32 * 1024 + 1, 3 * 1024 * 1024 + 7]


@pytest.mark.parametrize("size", SIZES)
def test_whole_file_exact_bytes(engine_path, tmp_path, size):
    path = tmp_path / "f.bin"
    data = make_file(path, size)
    sent = []

    async def handler(r, w):
        sent.append(await evsendfile.send_file(w, path))

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    assert run(main()) == data
    assert sent == [size]


@pytest.mark.parametrize(
    "offset,count",
    [(0, 100), (12345, 1024 * 1024 + 3), (1, None), (2 * 1024 * 1024 - 5, 5), (2 * 1024 * 1024, 0), (777, 16 * 1024)],
)
def test_offsets_with_head_tail_and_data_before(engine_path, tmp_path, offset, count):
    # Bytes the handler wrote itself precede the head, which precedes the body.
    path = tmp_path / "f.bin"
    data = make_file(path, 2 * 1024 * 1024)
    pre, head, tail, post = b"PRE" * 1000, b"HEAD\r\n", b"\r\nTAIL", b"POST"

    async def handler(r, w):
        w.write(pre)
        n = await evsendfile.send_file(w, path, offset, count, head=head, tail=tail)
        assert n == (len(data) - offset if count is None else count)
        w.write(post)
        await w.drain()

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    end = len(data) if count is None else offset + count
    assert run(main()) == pre + head + data[offset:end] + tail + post


def test_write_buffer_is_empty_before_first_body_byte(tmp_path):
    # The client reads nothing until the handler has queued 8 MiB in the
    # transport's user-space buffer, so that buffer is far from empty when
    # send_file is called: the head and body must still come after all of it.
    path = tmp_path / "f.bin"
    data = make_file(path, 4 * 1024 * 1024)
    pre = os.urandom(8 * 1024 * 1024)
    buffered = []

    async def handler(r, w):
        limits_before = w.transport.get_write_buffer_limits()  # loops differ: asyncio (16 KiB, 64 KiB)
        w.write(pre)
        buffered.append(w.transport.get_write_buffer_size())
        await evsendfile.send_file(w, path, head=b"H")
        limits_after = w.transport.get_write_buffer_limits()
        w.write(b"END")
        await w.drain()
        buffered.append((limits_before, limits_after))

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port, rcvbuf=64 * 1024)
            got = await read_to_eof(r)
            w.close()
        return got

    got = run(main())
    assert buffered[0] > 0, "test setup: the transport buffer should not have been empty"
    before, after = buffered[1]
    assert after == before and before != (0, 0), "write buffer limits were not restored"
    assert got == pre + b"H" + data + b"END"


def test_open_file_object_and_fd_sources(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, 300_000)

    async def handler(r, w):
        with open(path, "rb") as f:
            await evsendfile.send_file(w, f, 10, 100_000)
            await evsendfile.send_file(w, f.fileno(), 200_000)

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    assert run(main()) == data[10:100_010] + data[200_000:]


def test_raw_nonblocking_socket(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, 1024 * 1024 + 11)

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        loop = asyncio.get_running_loop()
        received = bytearray()

        async def reader():
            while len(received) < len(data) + 2:
                received.extend(await loop.sock_recv(b, 1 << 16))

        task = asyncio.ensure_future(reader())
        n = await evsendfile.send_file(a, path, head=b"<", tail=b">")
        await asyncio.wait_for(task, 30)
        a.close()
        b.close()
        return n, bytes(received)

    n, got = run(main())
    assert n == len(data)
    assert got == b"<" + data + b">"


def test_synchronous_errors_map_to_oserror_and_leave_transport_usable(engine_path, tmp_path):
    path = tmp_path / "f.bin"
    make_file(path, 1000)
    seen = []

    async def handler(r, w):
        cases = [
            (tmp_path / "missing", 0, None, FileNotFoundError),
            (tmp_path, 0, None, IsADirectoryError),
            (path, 1001, None, OSError),  # offset beyond the end: ERANGE
            (path, 10, 991, OSError),  # region beyond the end: ERANGE
        ]
        for src, off, cnt, kind in cases:
            with pytest.raises(kind) as info:
                await evsendfile.send_file(w, src, off, cnt)
            seen.append((info.value.errno, info.value.sf_status, info.value.body_sent))
        assert w.transport.is_reading()
        w.write(b"still usable")
        await w.drain()

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    assert run(main()) == b"still usable"
    assert seen == [
        (errno.ENOENT, -errno.ENOENT, 0),
        (errno.EISDIR, -errno.EISDIR, 0),
        (errno.ERANGE, -errno.ERANGE, 0),
        (errno.ERANGE, -errno.ERANGE, 0),
    ]


def test_blocking_socket_and_bad_arguments(tmp_path):
    path = tmp_path / "f.bin"
    make_file(path, 10)

    async def main():
        a, b = socket.socketpair()
        try:
            a.setblocking(True)
            with pytest.raises(OSError) as info:
                await evsendfile.send_file(a, path)
            assert info.value.errno == errno.EINVAL
            assert "blocking" in info.value.strerror
            for bad in ({"offset": -1}, {"count": -5}, {"idle_timeout": 0}):
                with pytest.raises(ValueError):
                    await evsendfile.send_file(a, path, **bad)
        finally:
            a.close()
            b.close()

    run(main())


def test_small_region_from_a_pipe_descriptor(tmp_path):
    # a pipe as the source of a small region (it goes to the worker: a caller's
    # pipe may be blocking, and must not be read on the asyncio thread)
    data = os.urandom(5000)

    async def main():
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            n = await evsendfile.send_file(a, r, 0, 3000, head=b"H")
            b.settimeout(30)
            got = b""
            while len(got) < 3001:
                got += b.recv(65536)
            return n, got
        finally:
            os.close(r)
            a.close()
            b.close()

    n, got = run(main())
    assert n == 3000 and got == b"H" + data[:3000]


def test_the_loop_is_the_one_asked_for(event_loop_kind):
    async def main():
        return type(asyncio.get_running_loop()).__module__

    module = run(main())
    assert module.startswith("uvloop") == (event_loop_kind == "uvloop"), module
