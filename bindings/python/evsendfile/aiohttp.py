"""evsendfile.aiohttp.FileResponse: aiohttp's web.FileResponse with the body
moved by the evsendfile C engine.

Everything aiohttp decides stays aiohttp's (Range, If-Range, conditional
requests, 304/412/416, HEAD, compression, content type): this subclass only
overrides the hook that moves the body once the headers are written.  When
the engine cannot send on the connection (user-space TLS, no socket, chunked
or compressed output), aiohttp's own method runs.
"""

from __future__ import annotations

from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from . import can_use_sendfile, send_file

__all__ = ["FileResponse"]

_StreamResponse = web.StreamResponse


class FileResponse(web.FileResponse):
    """Drop-in for aiohttp.web.FileResponse (same arguments)."""

    async def _sendfile(self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int) -> AbstractStreamWriter:
        writer = await _StreamResponse.prepare(self, request)  # writes the headers
        assert writer is not None
        transport = writer.transport  # type: ignore[attr-defined]
        if self.compression or writer.chunked or transport is None or not can_use_sendfile(writer):  # type: ignore[attr-defined,arg-type]
            # aiohttp's own transfer (it prepares once: prepare() is idempotent)
            return await super()._sendfile(request, fobj, offset, count)
        # The headers in the transport's buffer go first, then the region.  A
        # ConnectionError (client gone) ends the connection quietly in aiohttp.
        await send_file(writer, fobj, offset, count)  # type: ignore[arg-type]
        await _StreamResponse.write_eof(self)
        return writer
