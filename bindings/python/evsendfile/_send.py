"""send_file: one region of a file to an asyncio stream (or a raw socket),
moved by the C engine on the library's worker thread."""

from __future__ import annotations

import asyncio
import errno
import math
import os
import socket
import stat
from typing import IO, Any, Optional, Union

from . import _inline, _worker
from ._errors import exception_for
from ._ffi import SF_COUNT_TO_EOF, SF_TLS, ffi, lib

FileArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", int, IO[bytes]]
Target = Union[asyncio.StreamWriter, socket.socket]

_UINT32_MAX = 2**32 - 1


def is_tls(transport: asyncio.BaseTransport) -> bool:
    return (
        transport.get_extra_info("sslcontext") is not None
        or transport.get_extra_info("ssl_object") is not None
    )


def _region(file: FileArg, offset: int, count: Optional[int], keep: list[Any]) -> Any:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an int >= 0, not {offset!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"count must be None or an int >= 0, not {count!r}")
    if count is not None and count >= SF_COUNT_TO_EOF:
        raise ValueError("count too large")
    region = ffi.new("sf_region_t *")
    region.offset = offset
    region.count = SF_COUNT_TO_EOF if count is None else count
    if isinstance(file, int) and not isinstance(file, bool):
        region.fd = file
    elif hasattr(file, "fileno"):
        region.fd = file.fileno()  # type: ignore[union-attr]
    else:
        path = ffi.new("char[]", os.fsencode(file))  # type: ignore[arg-type]
        keep.append(path)
        region.fd = -1
        region.path = path
    return region


def _iovec(data: bytes, keep: list[Any]) -> tuple[Any, int]:
    if not data:
        return ffi.NULL, 0
    buf = ffi.from_buffer(data)
    iov = ffi.new("struct iovec *")
    iov.iov_base = ffi.cast("void *", buf)
    iov.iov_len = len(buf)
    keep += [buf, iov]
    return iov, 1


def _options(head: bytes, tail: bytes, idle_timeout: Optional[float], flags: int, keep: list[Any]) -> Any:
    opts = ffi.new("sf_options_t *")
    lib.sf_options_init(opts)
    opts.head, opts.head_count = _iovec(head, keep)
    opts.tail, opts.tail_count = _iovec(tail, keep)
    if idle_timeout is not None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0 or None")
        opts.idle_timeout_ms = min(_UINT32_MAX, max(1, math.ceil(idle_timeout * 1000)))
    opts.flags = flags
    keep.append(opts)
    return opts


async def _empty_write_buffer(writer: asyncio.StreamWriter, timeout: Optional[float]) -> None:
    """Wait until the transport's write buffer is EMPTY (not just below the
    high-water mark): with limits (0, 0) the protocol is paused while any byte
    is buffered and resumed only when none is, and drain() waits for that."""
    transport = writer.transport
    if transport.get_write_buffer_size() == 0 and not transport.is_closing():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        for _ in range(1000):  # drain returns early only if the transport is closing
            if transport.get_write_buffer_size() == 0 and not transport.is_closing():
                return
            if transport.is_closing():
                raise ConnectionResetError(errno.ECONNRESET, "transport is closing")
            if timeout is None:
                await writer.drain()
            else:
                try:
                    await asyncio.wait_for(writer.drain(), timeout)
                except asyncio.TimeoutError:
                    transport.abort()
                    raise TimeoutError(errno.ETIMEDOUT, "write buffer did not drain in time") from None
        raise ConnectionResetError(errno.ECONNRESET, "write buffer never emptied")
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)


def _new_job(sock_fd: int, region: Any, opts: Any) -> Any:
    """sf_job_new: validates and prepares, writes nothing; raises the mapped
    OSError on a synchronous error (nothing sent, transport untouched)."""
    out = ffi.new("sf_job_t **")
    rc = lib.sf_job_new(sock_fd, region, opts, out)
    if rc < 0:
        raise exception_for(rc)
    return out[0]


async def _on_worker(job: Any, stepped: bool, on_partial: Any) -> int:
    """Hand `job` to the worker (it owns it from here) and await the end;
    on_partial() is called when bytes may be half-sent."""
    try:
        sub = _worker.submit_job(job)
    except OSError:
        if stepped:
            on_partial()  # its step may have written part of the response
        raise
    try:
        status, sent = await sub.future
    except asyncio.CancelledError:
        result = sub.cancel()  # after this the worker no longer touches the socket
        if result is None or result[0] != 0:
            on_partial()
        raise
    if status < 0:
        on_partial()
        raise exception_for(status, sent)
    return sent


async def send_file(
    writer_or_sock: Target,
    file: FileArg,
    offset: int = 0,
    count: Optional[int] = None,
    *,
    head: bytes = b"",
    tail: bytes = b"",
    idle_timeout: Optional[float] = None,
) -> int:
    """Send ``head``, ``count`` bytes of ``file`` from ``offset`` (None: to the
    end), then ``tail``; return the number of file bytes sent.

    ``writer_or_sock`` is an asyncio.StreamWriter, or a connected non-blocking
    socket.socket that no transport owns.  ``file`` is a path, an open file
    object or a file descriptor (kept open by the caller until this returns).

    Errors are OSError subclasses (BrokenPipeError, ConnectionResetError,
    TimeoutError, FileNotFoundError, TruncatedFileError, ...) with
    ``body_sent``.  An error raised before any byte went out leaves the
    transport as it was; once the transfer started, an error or cancellation
    aborts the transport (a partial response cannot be repaired), unless the
    transfer had already completed.  A raw socket is never closed for you.
    """
    keep: list[Any] = []
    region = _region(file, offset, count, keep)
    if isinstance(writer_or_sock, socket.socket):
        opts = _options(head, tail, idle_timeout, 0, keep)
        return await _move(writer_or_sock.fileno(), region, opts, None)

    writer = writer_or_sock
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is None:
        raise ValueError("the transport has no socket (get_extra_info('socket') is None)")
    if transport.is_closing():
        raise ConnectionResetError(errno.ECONNRESET, "transport is closing")
    opts = _options(head, tail, idle_timeout, SF_TLS if is_tls(transport) else 0, keep)

    await _empty_write_buffer(writer, idle_timeout)
    return await _move(sock.fileno(), region, opts, transport)


class _ReadingPause:
    """Pauses the transport's reading before the first await of a transfer
    (nothing can be read while no await happens), resumes it at the end."""

    __slots__ = ("transport", "paused")

    def __init__(self, transport: Optional[asyncio.Transport]) -> None:
        self.transport = transport
        self.paused = False

    def pause(self) -> None:
        t = self.transport
        if t is not None and not self.paused and t.is_reading() and not t.is_closing():
            t.pause_reading()
            self.paused = True

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        self.paused = False

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def _move(sock_fd: int, region: Any, opts: Any, transport: Optional[asyncio.Transport]) -> int:
    """One job per transfer: its first step on this thread (_inline), then,
    if it is not done, the same job on the worker."""
    reading = _ReadingPause(transport)
    job = _new_job(sock_fd, region, opts)
    stepped = False
    try:
        # Never stepped here: a caller's pipe fd, which may be blocking (the
        # library opens a path itself, FIFOs non-blocking).
        if _inline.AVAILABLE and (region.fd == -1 or _regular_file(region.fd)):
            stepped = True
            try:
                sent = _inline.first_step(job)
            except OSError:
                reading.abort()  # part of the response may be out
                raise
            if sent is not None:
                return sent
        reading.pause()
        handed, job = job, None  # the library owns it from the call on, whatever happens
        return await _on_worker(handed, stepped, reading.abort)
    finally:
        if job is not None:
            lib.sf_job_free(job)  # uncorks; closes a library-opened file
        reading.resume()


def _regular_file(fd: int) -> bool:
    """A regular file never blocks a read: safe to step on the loop thread."""
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False  # let the library report it
