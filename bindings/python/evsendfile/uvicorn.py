"""uvicorn with zero-copy file responses: the ASGI extensions
``http.response.pathsend`` and ``http.response.zerocopysend``, moved by the
evsendfile C engine (sendfile on plain TCP; a copy through the transport on
user-space TLS).

    uvicorn.run(app, http=evsendfile.uvicorn.H11Protocol)
    python3 -m evsendfile.uvicorn MODULE:APP [--host H] [--port P] [--loop asyncio|uvloop]
                                            [--http h11|httptools] [--workers N]
                                            [--ssl-keyfile F --ssl-certfile F] [--sendfile-idle-timeout S]

Everything else is uvicorn's own protocol (keep-alive, pipelining, HEAD,
timeouts, logging, lifespan): the classes here subclass uvicorn's, and only
the request-response cycle's ``send`` learns the two extension messages.
uvicorn builds its cycle objects by a module-global name inside a method, so
the subclass uses a copy of that one method whose global ``RequestResponseCycle``
is ours; that reaches into uvicorn's internals, so the uvicorn versions are
pinned (``TESTED_UVICORN``) and any other version fails at import.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import stat
import sys
import types
from typing import Any, Callable, Optional

import uvicorn

from . import create_sendfile_callable, send_file

TESTED_UVICORN = ("0.17",)  # major.minor series whose internals this module was tested against

if ".".join(uvicorn.__version__.split(".")[:2]) not in TESTED_UVICORN:
    raise ImportError(
        f"evsendfile.uvicorn supports uvicorn {', '.join(v + '.x' for v in TESTED_UVICORN)}, "
        f"not {uvicorn.__version__}: it subclasses uvicorn's protocol internals"
    )

from uvicorn.protocols.http import h11_impl  # noqa: E402
from uvicorn.protocols.utils import is_ssl  # noqa: E402

try:
    from uvicorn.protocols.http import httptools_impl
except ImportError:  # httptools not installed
    httptools_impl = None  # type: ignore[assignment]

__all__ = ["H11Protocol", "HttpToolsProtocol", "ZeroCopyCycle", "EXTENSIONS", "main"]

logger = logging.getLogger("uvicorn.error")

PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
EXTENSIONS = (PATHSEND, ZEROCOPYSEND)


class _FileBody:
    """A body piece h11 frames by its length (send_with_data_passthrough)."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


class _FlowWriter:
    """What send_file and create_sendfile_callable need of a StreamWriter,
    for a uvicorn connection: its transport, write, is_closing, and drain()
    through uvicorn's own flow control (uvicorn's protocol receives
    pause_writing/resume_writing)."""

    __slots__ = ("transport", "_flow")

    def __init__(self, transport: asyncio.Transport, flow: Any) -> None:
        self.transport = transport
        self._flow = flow

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    async def drain(self) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError(errno.ECONNRESET, "connection closed")
        await self._flow.drain()


class _Capture:
    """Stands in for the transport while uvicorn writes the response head."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _idle_timeout_from_env() -> Optional[float]:
    value = os.environ.get("EVSENDFILE_UVICORN_IDLE_TIMEOUT", "")
    return float(value) if value else None


class ZeroCopyCycle:
    """Mixin for uvicorn's RequestResponseCycle classes (h11 and httptools)."""

    # Seconds a client may accept no byte of a file body before the
    # connection is aborted; None (uvicorn's own behaviour): no limit.
    # Set it here (ZeroCopyCycle.sendfile_idle_timeout = 30), or with
    # $EVSENDFILE_UVICORN_IDLE_TIMEOUT, which --workers processes inherit.
    sendfile_idle_timeout: Optional[float] = _idle_timeout_from_env()

    # Set by uvicorn's cycle __init__: scope, transport, flow, disconnected,
    # response_started, response_complete.
    scope: dict
    transport: Any
    flow: Any
    disconnected: bool
    response_started: bool
    response_complete: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        extensions = self.scope.setdefault("extensions", {})
        for name in EXTENSIONS:
            extensions.setdefault(name, {})
        self._body_sent = False  # an http.response.body or zerocopysend went out
        self._head = b""  # the response head uvicorn wrote, held back (see _start)

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started:
            await self._start(message)
            return
        try:
            if kind not in EXTENSIONS or not self.response_started or self.response_complete:
                self._flush_head()
                if kind == "http.response.body":
                    self._body_sent = True
                # uvicorn's own send: also raises its errors for a file message
                # before http.response.start or after the response completed.
                await super().send(message)  # type: ignore[misc]
                return
            if self.disconnected:
                return
            if kind == PATHSEND:
                if self._body_sent:
                    raise RuntimeError("http.response.pathsend cannot follow http.response.body")
                more_body = False
            else:
                more_body = bool(message.get("more_body", False))
            self._body_sent = True
            if self.scope["method"] != "HEAD":
                if kind == PATHSEND:
                    await self._send_path(message["path"])
                else:
                    await self._send_fd(message)
                if self.disconnected:
                    return
        finally:
            self._flush_head()  # whatever happened, the head goes before anything else
        # Completion (end of message, keep-alive or close, pipelining) is uvicorn's.
        await super().send({"type": "http.response.body", "body": b"", "more_body": more_body})  # type: ignore[misc]

    async def _start(self, message: Any) -> None:
        """uvicorn's http.response.start, with the head it writes held back
        until the next send of this cycle or the end of this loop iteration:
        a file body that follows at once leaves with it (one writev for a
        small body; the ASGI spec lets a server wait for the first body)."""
        transport, capture = self.transport, _Capture(self.transport)
        self.transport = capture
        try:
            await super().send(message)  # type: ignore[misc]
        finally:
            self.transport = transport
        if capture.data:
            self._head = capture.data
            asyncio.get_running_loop().call_soon(self._flush_head)

    def _flush_head(self) -> None:
        head, self._head = self._head, b""
        if head and not self.disconnected and not self.transport.is_closing():
            self.transport.write(head)

    async def _send_path(self, path: Any) -> None:
        if not isinstance(path, str):
            raise TypeError(f"http.response.pathsend 'path' must be a str, not {type(path).__name__}")
        # An error here (missing file...) reaches the app before any body byte:
        # the app may still answer with http.response.body.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", path)
            await self._send_region(fd, 0, st.st_size)
        finally:
            os.close(fd)

    async def _send_fd(self, message: Any) -> None:
        file = message["file"]
        fd = file if isinstance(file, int) and not isinstance(file, bool) else file.fileno()
        offset = message.get("offset")
        count = message.get("count")
        from_position = offset is None
        if from_position:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        if count is None:
            count = os.fstat(fd).st_size - offset
            if count < 0:
                raise OSError(errno.ERANGE, "offset beyond the end of the file")
        if offset < 0 or count < 0:
            raise ValueError("zerocopysend offset and count must be >= 0")
        await self._send_region(fd, offset, count)
        if from_position and not self.disconnected:
            os.lseek(fd, offset + count, os.SEEK_SET)  # as sendfile(2) without an offset does

    async def _send_region(self, fd: int, offset: int, count: int) -> None:
        frame_head, tail = self._frame(count)  # the protocol's framing; raises on a length mismatch
        held, self._head = self._head, b""  # a response head still held goes first
        head = held + frame_head
        if count == 0 and not head and not tail:
            return
        transport = self.transport
        try:
            if is_ssl(transport):
                await self._copy(fd, offset, count, head, tail)
            else:
                await send_file(
                    _FlowWriter(transport, self.flow),  # type: ignore[arg-type]
                    fd, offset, count, head=head, tail=tail, idle_timeout=self.sendfile_idle_timeout,
                )
        except (ConnectionError, TimeoutError) as e:
            # The client went away (or accepted nothing for too long): like
            # any disconnect in uvicorn, the app is not bothered with it.
            if not transport.is_closing():
                transport.abort()
            self.disconnected = True
            logger.debug("file body not delivered: %s", e)
        except BaseException:
            if not transport.is_closing():
                self._head = held  # refused before any byte went out: the head still goes first
            raise

    async def _copy(self, fd: int, offset: int, count: int, head: bytes, tail: bytes) -> None:
        """User-space TLS: the engine cannot encrypt, so the package's copy
        path (create_sendfile_callable) writes the region through the
        transport, with uvicorn's flow control.  It takes a path: the very
        file already open, through /proc/self/fd."""
        transport = self.transport
        if head:
            transport.write(head)
        # write_timeout None: no stall limit, like uvicorn (asyncio.wait_for(..., None))
        copy = create_sendfile_callable(_FlowWriter(transport, self.flow), write_timeout=self.sendfile_idle_timeout)  # type: ignore[arg-type]
        await copy(f"/proc/self/fd/{fd}", offset, count)
        if tail and not transport.is_closing():
            transport.write(tail)

    def _frame(self, count: int) -> tuple[bytes, bytes]:
        """Bytes before and after `count` body bytes, by the protocol's framing."""
        raise NotImplementedError


class _H11Cycle(ZeroCopyCycle, h11_impl.RequestResponseCycle):
    def _frame(self, count: int) -> tuple[bytes, bytes]:
        import h11

        body = _FileBody(count)
        pieces = self.conn.send_with_data_passthrough(h11.Data(data=body))  # type: ignore[attr-defined]
        at = next((i for i, p in enumerate(pieces) if p is body), None)
        if at is None:  # an empty piece: h11 writes no chunk for it
            return b"".join(pieces), b""
        return b"".join(pieces[:at]), b"".join(pieces[at + 1:])


def _with_cycle(method: Callable[..., Any], cycle: type) -> Callable[..., Any]:
    """`method` running with the module global RequestResponseCycle = cycle."""
    if "RequestResponseCycle" not in method.__code__.co_names:
        raise ImportError(f"uvicorn {uvicorn.__version__}: {method.__qualname__} does not build "
                          "a RequestResponseCycle; evsendfile.uvicorn cannot hook it")
    namespace = dict(method.__globals__, RequestResponseCycle=cycle)
    copy = types.FunctionType(method.__code__, namespace, method.__name__, method.__defaults__, method.__closure__)
    copy.__qualname__ = method.__qualname__
    copy.__doc__ = method.__doc__
    return copy


class H11Protocol(h11_impl.H11Protocol):
    """uvicorn's h11 protocol, advertising and serving pathsend and zerocopysend."""

    handle_events = _with_cycle(h11_impl.H11Protocol.handle_events, _H11Cycle)


if httptools_impl is not None:

    class _HttpToolsCycle(ZeroCopyCycle, httptools_impl.RequestResponseCycle):
        chunked_encoding: Optional[bool]
        expected_content_length: int

        def _frame(self, count: int) -> tuple[bytes, bytes]:
            # uvicorn's httptools rules: chunked, or a Content-Length countdown.
            if self.chunked_encoding:
                return (b"%x\r\n" % count, b"\r\n") if count else (b"", b"")
            if count > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= count
            return b"", b""

    class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):  # type: ignore[no-redef]
        """uvicorn's httptools protocol, advertising and serving pathsend and zerocopysend."""

        on_headers_complete = _with_cycle(httptools_impl.HttpToolsProtocol.on_headers_complete, _HttpToolsCycle)

else:
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m evsendfile.uvicorn",
        description="Run an ASGI app under uvicorn with zero-copy file responses "
        "(http.response.pathsend / zerocopysend).",
    )
    parser.add_argument("app", help="MODULE:APP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--http", choices=("h11", "httptools"), default="h11")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--ssl-keyfile")
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--sendfile-idle-timeout", type=float, default=None, metavar="S",
                        help="abort a connection whose client accepts no byte of a file body for S seconds")
    parser.add_argument("--app-dir", default=".", help="prepended to sys.path (default: the current directory)")
    args = parser.parse_args(argv)

    # The properly named module (not __main__), so that --workers can pickle the class.
    from evsendfile import uvicorn as this

    protocol = this.H11Protocol if args.http == "h11" else this.HttpToolsProtocol
    if protocol is None:
        parser.error("httptools is not installed")
    if args.sendfile_idle_timeout is not None:
        if args.sendfile_idle_timeout <= 0:
            parser.error("--sendfile-idle-timeout must be > 0")
        os.environ["EVSENDFILE_UVICORN_IDLE_TIMEOUT"] = str(args.sendfile_idle_timeout)  # --workers inherit it
        this.ZeroCopyCycle.sendfile_idle_timeout = args.sendfile_idle_timeout
    sys.path.insert(0, os.path.abspath(args.app_dir))
    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        loop=args.loop,
        http=protocol,
        workers=args.workers,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
        log_level=args.log_level,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
