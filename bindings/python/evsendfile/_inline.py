"""Small regions, stepped on the asyncio thread itself.

For a body of a few KiB, the round trip to the worker thread (wake it, let it
write, take the GIL back, wake the loop) costs more than the copy.  So regions
up to INLINE_MAX are sent with the library's stepping API (sf_job_step, the
same engine; cffi drops the GIL during the call) right where send_file was
called: usually one writev of head + body + tail, and done.  If the socket's
buffer is full, the wait for writability goes through a private epoll set
holding the socket, whose own fd asyncio watches with add_reader: asyncio
refuses add_writer on a transport's socket, but not this, and no fd is
duplicated.  Linux only (elsewhere every region goes to the worker).
"""

from __future__ import annotations

import asyncio
import os
import select
from typing import Any, Callable, Optional

from ._errors import exception_for
from ._ffi import SF_ETIMEDOUT, SF_STEP_DONE, SF_STEP_READ, SF_STEP_YIELD, ffi, lib

INLINE_MAX = 64 * 1024
AVAILABLE = hasattr(select, "epoll") and os.environ.get("EVSENDFILE_PY_NO_INLINE", "") in ("", "0")


def eligible(count: Optional[int]) -> bool:
    return AVAILABLE and count is not None and count <= INLINE_MAX


async def _ready(fd: int, events: int, timeout: Optional[float]) -> None:
    """Wait until `fd` reports `events` (or an error / hang-up)."""
    loop = asyncio.get_running_loop()
    ep = select.epoll(1)
    try:
        ep.register(fd, events)
        fut = loop.create_future()
        loop.add_reader(ep.fileno(), lambda: fut.done() or fut.set_result(None))
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            loop.remove_reader(ep.fileno())
    finally:
        ep.close()


async def run_inline(
    sock_fd: int,
    region: Any,
    opts: Any,
    idle_timeout: Optional[float],
    on_partial: Callable[[], None],
    before_wait: Callable[[], None],
) -> int:
    out = ffi.new("sf_job_t **")
    rc = lib.sf_job_new(sock_fd, region, opts, out)
    if rc < 0:
        raise exception_for(rc)
    job = out[0]
    try:
        while True:
            r = lib.sf_job_step(job)
            if r == SF_STEP_DONE:
                return int(lib.sf_job_body_sent(job))
            if r < 0:
                on_partial()
                raise exception_for(r, int(lib.sf_job_body_sent(job)))
            try:
                if r == SF_STEP_YIELD:
                    await asyncio.sleep(0)
                    continue
                before_wait()
                if r == SF_STEP_READ:
                    await _ready(lib.sf_job_source_fd(job), select.EPOLLIN, idle_timeout)
                else:
                    await _ready(sock_fd, select.EPOLLOUT, idle_timeout)
            except asyncio.TimeoutError:
                on_partial()
                raise exception_for(SF_ETIMEDOUT, int(lib.sf_job_body_sent(job))) from None
            except BaseException:  # cancelled mid-response
                on_partial()
                raise
    finally:
        lib.sf_job_free(job)  # uncorks; closes a library-opened file
