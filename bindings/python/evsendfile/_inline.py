"""The first step of every transfer, on the asyncio thread itself.

A round trip to the worker thread (wake it, let it write, take the GIL back,
wake the loop) costs more than a small body, and adds latency to every
response.  So send_file first runs one step of the library's stepping API
(sf_job_step: the same engine, non-blocking; cffi drops the GIL during the
call) right where it was called.  One step moves head + body + tail when they
fit in the socket (a small body goes as one writev), or up to max_chunk
bytes of a large one.

If bytes are still owed after it (a large region, or a socket whose buffer
is full), the job itself goes to the worker thread (sf_worker_submit_job),
which continues it from exactly where the step stopped, under the engine's
own rules (writability, idle timeout, max_chunk): nothing here waits.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ._errors import exception_for
from ._ffi import SF_STEP_DONE, lib

# EVSENDFILE_PY_NO_INLINE=1: every job goes to the worker unstepped (for comparison).
AVAILABLE = os.environ.get("EVSENDFILE_PY_NO_INLINE", "") in ("", "0")


def first_step(job: Any) -> Optional[int]:
    """One step of `job`: the body bytes sent when it is done, None when it
    has more to do (hand it over).  A failed step raises the mapped OSError;
    bytes may have been written before it failed.  The job stays the caller's."""
    r = lib.sf_job_step(job)
    sent = int(lib.sf_job_body_sent(job))
    if r == SF_STEP_DONE:
        return sent
    if r < 0:
        raise exception_for(r, sent)
    return None
