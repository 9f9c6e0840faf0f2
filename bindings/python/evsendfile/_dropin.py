"""The drop-in API: the three names of the `_sendfile` module of Python ASGI
servers (SendfileRegion, can_use_sendfile, create_sendfile_callable), with the
same meaning, backed by the C engine instead of loop.sendfile()."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ._errors import TruncatedFileError
from ._ffi import SF_TLS, lib
from ._send import is_tls, send_file

logger = logging.getLogger("evsendfile")

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


def can_use_sendfile(writer: asyncio.StreamWriter) -> bool:
    """True when the C engine would send on this connection with zero-copy
    sendfile: False for TLS transports (unless kernel TLS transmit is active
    on the socket), False without a raw socket."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return False
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
    - TLS in user space (no kernel TLS): the engine cannot encrypt, so the
      transfer goes through loop.sendfile(..., fallback=True), as in the
      reference module (there write_timeout bounds each of drain and transfer).
    """
    transport = writer.transport
    # The engine writes plain bytes to the socket: fine for TCP and for kernel
    # TLS; user-space TLS (or no socket at all) has to go through the transport.
    has_socket = transport.get_extra_info("socket") is not None
    use_engine = has_socket and (not is_tls(transport) or can_use_sendfile(writer))

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
        # TLS in user space: the bytes must be encrypted by the transport, so
        # do what the reference module does: loop.sendfile with its fallback.
        try:
            await asyncio.wait_for(writer.drain(), write_timeout)
            with open(path, "rb", buffering=0) as f:
                sent = await asyncio.wait_for(
                    asyncio.get_running_loop().sendfile(transport, f, offset, count, fallback=True),
                    write_timeout,
                )
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
