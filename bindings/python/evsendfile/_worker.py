"""The process-wide library worker thread and its bridge to asyncio.

One sf_worker_t (a libevent loop on a thread the C library owns) serves every
event loop of the process.  A job (sf_job_new, maybe stepped already) is
handed to it from the asyncio thread;
the C thread moves the bytes without the GIL; when it ends, the one
module-level cffi callback runs on the C thread, records the result and hands
it to the submitting loop with call_soon_threadsafe.  That is the only Python
code that ever runs on the worker thread.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from ._errors import exception_for
from ._ffi import ffi, lib


@dataclass
class _Pending:
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[tuple[int, int]]"
    result: Optional[tuple[int, int]] = field(default=None)


_lock = threading.Lock()
_finished = threading.Condition(_lock)  # notified when a _Pending gets its result
_pending: dict[int, _Pending] = {}
_ids = itertools.count(1)
_worker: Any = None  # sf_worker_t *, created on first use
_worker_pid = 0


def _resolve(fut: "asyncio.Future[tuple[int, int]]", result: tuple[int, int]) -> None:
    # Runs on the asyncio loop.  The awaiting task may be gone (cancelled).
    if not fut.done():
        fut.set_result(result)


@ffi.callback("void(sf_transfer_t *, int, uint64_t, void *)")
def _on_done(_t: Any, status: int, body_sent: int, arg: Any) -> None:
    # Runs on the worker thread: record, hand over, return.  Never raise.
    try:
        ident = int(ffi.cast("uintptr_t", arg))
        with _lock:
            p = _pending.pop(ident, None)
            if p is None:
                return
            p.result = (status, body_sent)
            _finished.notify_all()
        try:
            p.loop.call_soon_threadsafe(_resolve, p.future, p.result)
        except RuntimeError:
            pass  # that loop is closed: nobody is waiting any more
    except BaseException:  # pragma: no cover - a bug here must not kill the worker
        pass


def _get_worker() -> Any:
    global _worker, _worker_pid
    if _worker is not None and _worker_pid == os.getpid():
        return _worker
    with _lock:
        if _worker is None or _worker_pid != os.getpid():
            out = ffi.new("sf_worker_t **")
            rc = lib.sf_worker_new(out)
            if rc < 0:
                raise exception_for(rc)
            _worker, _worker_pid = out[0], os.getpid()
    return _worker


def _shutdown() -> None:
    global _worker
    w, _worker = _worker, None
    if w is not None and _worker_pid == os.getpid():
        lib.sf_worker_free(w)  # cancels what still runs, joins the thread


def _forget_after_fork() -> None:
    # The thread does not exist in a forked child; leak the parent's struct.
    # The lock may have been held by the vanished thread: make fresh ones.
    global _worker, _lock, _finished
    _worker = None
    _lock = threading.Lock()
    _finished = threading.Condition(_lock)
    _pending.clear()


atexit.register(_shutdown)
os.register_at_fork(after_in_child=_forget_after_fork)


class Submitted:
    """A transfer the worker runs.  Await ``future`` for (status, body_sent)."""

    __slots__ = ("ident", "ticket", "future", "_pending")

    def __init__(self, ident: int, ticket: int, pending: _Pending) -> None:
        self.ident = ident
        self.ticket = ticket
        self.future = pending.future
        self._pending = pending

    def cancel(self) -> Optional[tuple[int, int]]:
        """Stop the C transfer; return its result if it had already ended.

        After this returns the worker no longer touches the socket or file.
        None means it was stopped before it finished.
        """
        rc = lib.sf_worker_cancel(_get_worker(), self.ticket)  # waits; GIL released
        if rc == 0:
            with _lock:
                _pending.pop(self.ident, None)
            return None
        # -EALREADY: the done callback has run or is running right now; it
        # records the result in a few microseconds (it needs only the GIL,
        # which waiting on the condition releases).
        with _lock:
            _finished.wait_for(lambda: self._pending.result is not None, timeout=30.0)
            return self._pending.result


def submit_job(job: Any) -> Submitted:
    """sf_worker_submit_job: the worker continues `job` from where its last
    step left it.  The library owns `job` from this call on, also when it
    fails (then the mapped OSError is raised): never step or free it again."""
    loop = asyncio.get_running_loop()
    try:
        w = _get_worker()
    except BaseException:
        lib.sf_job_free(job)  # taken in every case, as the C call does
        raise
    ident = next(_ids)
    p = _Pending(loop, loop.create_future())
    ticket = ffi.new("uint64_t *")
    with _lock:
        _pending[ident] = p
    rc = lib.sf_worker_submit_job(w, job, _on_done, ffi.cast("void *", ident), ticket)
    if rc < 0:
        with _lock:
            _pending.pop(ident, None)
        raise exception_for(rc)
    return Submitted(ident, ticket[0], p)
