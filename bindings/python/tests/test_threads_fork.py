"""The process-wide worker serves event loops on several threads at once,
and a forked child gets a worker of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading

from conftest import make_file

import evsendfile

SIZE = 3 * 1024 * 1024 + 1


async def _one_transfer(path) -> bytes:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    loop = asyncio.get_running_loop()
    got = bytearray()

    async def drain():
        while len(got) < SIZE:
            chunk = await loop.sock_recv(b, 1 << 20)
            if not chunk:
                break
            got.extend(chunk)

    reader = asyncio.ensure_future(drain())
    try:
        n = await asyncio.wait_for(evsendfile.send_file(a, path, 0, SIZE), 60)
        await asyncio.wait_for(reader, 60)
        assert n == SIZE
        return bytes(got)
    finally:
        a.close()
        b.close()


def test_loops_on_several_threads_share_the_worker(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, SIZE)
    results: list[object] = [None] * 4

    def run_loop(i):
        try:
            results[i] = asyncio.run(_one_transfer(path))
        except BaseException as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=run_loop, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r == data for r in results), [type(r) for r in results]


def test_forked_child_gets_its_own_worker(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, SIZE)
    assert asyncio.run(_one_transfer(path)) == data  # the parent's worker exists now
    pid = os.fork()
    if pid == 0:  # child: exit status says whether the transfer was exact
        ok = False
        signal.alarm(60)  # a child stuck on a worker thread that does not exist dies
        try:
            ok = asyncio.run(_one_transfer(path)) == data
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert asyncio.run(_one_transfer(path)) == data  # and the parent's still works
