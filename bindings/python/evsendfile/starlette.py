"""evsendfile.starlette.FileResponse: Starlette's FileResponse (same
arguments and headers) that hands the body to the server.

- ``http.response.pathsend`` advertised (e.g. evsendfile.uvicorn): the
  response sends the path and the server moves the bytes (zero-copy).
- Not advertised and no Range: exactly Starlette's own FileResponse.
- A single ``Range: bytes=...`` on a 200 response: 206 with Content-Range,
  the region sent by ``http.response.zerocopysend`` when advertised (read in
  chunks otherwise); an unsatisfiable range: 416 with ``bytes */size``.
  Several ranges, or an ``If-Range`` that does not match the ETag or
  Last-Modified: the whole file (200), as RFC 9110 allows.
HEAD sends the headers only.  Conditional requests (304) are the app's
business, as with Starlette's own class.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any, Optional

import anyio
from starlette import responses
from starlette.types import Receive, Scope, Send

__all__ = ["FileResponse", "parse_range"]

PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def parse_range(value: str, size: int) -> Optional[tuple[int, int]]:
    """(offset, count) for a single byte range of a `size`-byte file;
    None when the header is to be ignored (syntax we do not serve, several
    ranges); raises ValueError when the range is unsatisfiable (416)."""
    m = _RANGE.match(value.strip().replace(" ", ""))
    if m is None:
        return None  # several ranges, another unit, bad syntax: ignored
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise ValueError("unsatisfiable range")
        n = min(n, size)
        return size - n, n
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise ValueError("unsatisfiable range")
    return start, end - start + 1


class FileResponse(responses.FileResponse):
    """Drop-in for starlette.responses.FileResponse (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.status_code == 200:
            self.headers.setdefault("accept-ranges", "bytes")  # the one added header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        range_value, if_range = self._range_request(scope)
        if range_value is None and PATHSEND not in extensions:
            await super().__call__(scope, receive, send)  # Starlette's own behaviour
            return

        if self.stat_result is None:
            try:
                st = await anyio.to_thread.run_sync(os.stat, self.path)
            except FileNotFoundError:
                raise RuntimeError(f"File at path {self.path} does not exist.")
            if not stat.S_ISREG(st.st_mode):
                raise RuntimeError(f"File at path {self.path} is not a file.")
            self.set_stat_headers(st)
            size = st.st_size
        else:
            size = self.stat_result.st_size

        region = None
        if range_value is not None and (
            if_range is None or if_range in (self.headers.get("etag"), self.headers.get("last-modified"))
        ):
            try:
                region = parse_range(range_value, size)
            except ValueError:
                await self._send_416(send, size)
                if self.background is not None:
                    await self.background()
                return
        if region is not None:
            self.status_code = 206
            self.headers["content-range"] = f"bytes {region[0]}-{region[0] + region[1] - 1}/{size}"
            self.headers["content-length"] = str(region[1])

        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self.send_header_only or scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif region is None and PATHSEND in extensions:
            await send({"type": PATHSEND, "path": os.path.abspath(os.fspath(self.path))})
        else:
            await self._send_region(send, extensions, *(region or (0, size)))
        if self.background is not None:
            await self.background()

    def _range_request(self, scope: Scope) -> tuple[Optional[str], Optional[str]]:
        """(Range, If-Range) header values when a Range is to be considered."""
        if self.status_code != 200 or scope.get("method") not in ("GET", "HEAD"):
            return None, None
        value = if_range = None
        for name, raw in scope.get("headers", ()):
            if name == b"range":
                value = raw.decode("latin-1")
            elif name == b"if-range":
                if_range = raw.decode("latin-1").strip()
        return value, if_range

    async def _send_416(self, send: Send, size: int) -> None:
        self.status_code = 416
        self.headers["content-range"] = f"bytes */{size}"
        self.headers["content-length"] = "0"
        await send({"type": "http.response.start", "status": 416, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_region(self, send: Send, extensions: dict, offset: int, count: int) -> None:
        if ZEROCOPYSEND in extensions:
            with open(self.path, "rb") as f:
                await send({"type": ZEROCOPYSEND, "file": f, "offset": offset, "count": count})
            return
        async with await anyio.open_file(self.path, mode="rb") as f:
            await f.seek(offset)
            while True:
                chunk = await f.read(min(self.chunk_size, count))
                count -= len(chunk)
                more = count > 0 and len(chunk) > 0
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break
