"""The first step of every transfer, on the asyncio thread itself.

A round trip to the worker thread (wake it, let it write, take the GIL back,
wake the loop) costs more than a small body, and adds latency to every
response.  So send_file first runs the library's stepping API (sf_job_step:
the same engine; cffi drops the GIL during the call) right where it was
called.  One step moves head + body + tail when they fit in the socket (a
small body goes as one writev), or up to max_chunk bytes of a large one.

Then, if bytes are still owed:
 - large region (or one of unknown size): the job itself goes to the worker
   thread (sf_worker_submit_job), which continues it from exactly where the
   step left it, so the loop thread is not tied up by a slow client;
 - small region: keep stepping here.  The wait for writability goes through
   a private epoll set holding the socket, whose own fd asyncio watches with
   add_reader.  asyncio refuses add_writer on a transport's socket, but not
   this; no fd is duplicated.
Linux only (elsewhere every job goes straight to the worker).
"""

from __future__ import annotations

import asyncio
import os
import select
from typing import Any, Callable, Optional

from ._errors import exception_for
from ._ffi import SF_ETIMEDOUT, SF_STEP_DONE, SF_STEP_READ, SF_STEP_YIELD, lib

# Regions up to this size are never handed to the worker (tunable for bench/).
INLINE_MAX = int(os.environ.get("EVSENDFILE_PY_INLINE_MAX", str(64 * 1024)))
AVAILABLE = hasattr(select, "epoll") and os.environ.get("EVSENDFILE_PY_NO_INLINE", "") in ("", "0")


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
    job: Any,
    sock_fd: int,
    may_hand_over: bool,
    idle_timeout: Optional[float],
    on_partial: Callable[[], None],
    before_wait: Callable[[], None],
) -> Optional[int]:
    """Step `job` here: the body bytes sent when it is done, or None when it
    is to be handed over (only if may_hand_over: then after the first step).
    The job stays the caller's either way; an error raises."""
    while True:
        r = lib.sf_job_step(job)
        sent = int(lib.sf_job_body_sent(job))
        if r == SF_STEP_DONE:
            return sent
        if r < 0:
            on_partial()
            raise exception_for(r, sent)
        if may_hand_over:
            return None
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
            raise exception_for(SF_ETIMEDOUT, sent) from None
        except BaseException:  # cancelled mid-response
            on_partial()
            raise
