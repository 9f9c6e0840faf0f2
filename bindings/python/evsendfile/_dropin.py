"""The drop-in API: the three names of the `_sendfile` module of Python ASGI
servers (SendfileRegion, can_use_sendfile, create_sendfile_callable), with the
same meaning, backed by the C engine instead of loop.sendfile()."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ._errors import TruncatedFileError
from ._ffi import SF_TLS, lib
from ._send import is_tls, send_file

logger = logging.getLogger("evsendfile")

# Block size of the copy path (user-space TLS): 256 KiB, as the library's own
# read + send fallback (smaller blocks cost more in per-write overhead).
COPY_CHUNK = 256 * 1024

SendfileCallable = Callable[[Path, int, int], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class SendfileRegion:
    """Protocol-owned file body marker: ``len()`` is the number of bytes."""

    __slots__ = ("path", "offset", "count")
    path: Path
    offset: int
    count: int

    def __len__(self) -> int:
        return self.count


def _socket_fd(transport: asyncio.BaseTransport) -> int:
    """The fd of the transport's socket, or -1 when it has none.  uvloop
    returns a pseudo-socket for pipes too: only a real socket counts."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return -1
    try:
        fd = sock.fileno()
        return fd if fd >= 0 and stat.S_ISSOCK(os.fstat(fd).st_mode) else -1
    except (OSError, ValueError):
        return -1


def can_use_sendfile(writer: asyncio.StreamWriter) -> bool:
    """True when the C engine would send on this connection with zero-copy
    sendfile: False for TLS transports (unless kernel TLS transmit is active
    on the socket), False without a raw socket."""
    transport = writer.transport
    fd = _socket_fd(transport)
    if fd < 0:
        return False
    return lib.sf_can_use(fd, SF_TLS if is_tls(transport) else 0) == 1


def create_sendfile_callable(
    writer: asyncio.StreamWriter,
    *,
    write_timeout: float = 30.0,
) -> SendfileCallable:
    """Return ``async def sendfile(path, offset, count) -> None`` bound to
    ``writer``.  What the caller already wrote (headers) goes out first; then
    the region, moved by the C engine.

    - A client that disconnects ends it quietly (no exception escapes).
    - A file shorter than offset + count aborts the connection (the promised
      length cannot be delivered), with a warning, and returns.
    - write_timeout: if the client accepts no byte for that many seconds (or
      the buffered head does not drain in that time) the connection is
      aborted and TimeoutError raised.
    - TLS in user space (no kernel TLS), or no socket: the engine cannot
      encrypt, so the file is read in COPY_CHUNK blocks and written through
      the transport (write + drain; write_timeout bounds each drain).  Never
      loop.sendfile: uvloop does not implement it.
    """
    transport = writer.transport
    # The engine writes plain bytes to the socket: fine for TCP and for kernel
    # TLS; user-space TLS (or no socket at all) has to go through the transport.
    use_engine = _socket_fd(transport) >= 0 and (not is_tls(transport) or can_use_sendfile(writer))

    async def sendfile(path: Union[Path, str], offset: int, count: int) -> None:
        if count <= 0:
            return
        if writer.is_closing() or transport is None or transport.is_closing():
            return
        if not use_engine:
            await _through_transport(path, offset, count)
            return
        try:
            await send_file(writer, path, offset, count, idle_timeout=write_timeout)
        except ConnectionError:
            # BrokenPipeError / ConnectionResetError: the client went away.
            return
        except TruncatedFileError as e:
            _short(path, offset, count, getattr(e, "body_sent", 0))
        except OSError as e:
            if e.errno != errno.ERANGE:
                raise
            _short(path, offset, count, 0)  # region beyond the end of the file

    async def _through_transport(path: Union[Path, str], offset: int, count: int) -> None:
        # Bounded blocks, exact count: pread never reads past the region, and
        # drain() keeps at most ~COPY_CHUNK + the high-water mark buffered.
        sent = 0
        try:
            with open(path, "rb", buffering=0) as f:
                fd = f.fileno()
                while sent < count:
                    block = os.pread(fd, min(COPY_CHUNK, count - sent), offset + sent)
                    if not block:
                        break  # the file is shorter than the region
                    writer.write(block)
                    sent += len(block)
                    await asyncio.wait_for(writer.drain(), write_timeout)
        except ConnectionError:
            return
        except asyncio.TimeoutError:
            transport.abort()
            raise TimeoutError(errno.ETIMEDOUT, "client accepted no bytes within write_timeout") from None
        if sent < count:
            _short(path, offset, count, sent)

    def _short(path: Union[Path, str], offset: int, count: int, sent: int) -> None:
        logger.warning(
            "sendfile transferred %d of %d bytes for %s (offset %d): file too short, "
            "aborting connection to avoid a truncated/desynced response",
            sent, count, path, offset,
        )
        transport.abort()

    return sendfile
