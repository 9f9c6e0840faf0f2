"""The raw ASGI app test_uvicorn.py serves (files from $FILES_DIR).

    /path/NAME                     start (Content-Length) + http.response.pathsend
    /zc/NAME?offset=O&count=C      start + one zerocopysend region (O, C optional)
    /zc2/NAME?a=O,C&b=O,C          two zerocopysend regions with more_body, a body between
    /zcpos/NAME?seek=S             zerocopysend with no offset/count, after f.seek(S); then
                                   a second one must continue where the first ended (none left)
    /chunked/NAME                  no Content-Length: chunked framing around a zerocopysend
    /missing                       pathsend of a missing file; the app lets the error escape
    /missing-caught                same; the app catches it and answers with a body
    /body/NAME                     the file as one http.response.body (comparison)
    /path-after-body/NAME          a body, then pathsend (refused: RuntimeError), then a body
    /zclong/NAME?length=L&count=C  Content-Length L, then a zerocopysend of C bytes (L < C, or
                                   C beyond the end of the file); the app reports the error type
                                   in the X-Error header of a second request: /last-error
"""

import os
from urllib.parse import parse_qs

FILES = os.environ.get("FILES_DIR", "/nonexistent")
LAST_ERROR = [""]


def start(size, chunked=False):
    headers = [(b"content-type", b"application/octet-stream")]
    if not chunked:
        headers.append((b"content-length", str(size).encode()))
    return {"type": "http.response.start", "status": 200, "headers": headers}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    ext = scope.get("extensions", {})
    assert "http.response.pathsend" in ext and "http.response.zerocopysend" in ext
    parts = scope["path"].split("/")
    kind, name = parts[1], "/".join(parts[2:])
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = os.path.join(FILES, name)

    if kind == "path":
        await send(start(os.path.getsize(path)))
        await send({"type": "http.response.pathsend", "path": path})
    elif kind == "zc":
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            msg = {"type": "http.response.zerocopysend", "file": f}
            offset = int(q.get("offset", 0))
            count = int(q["count"]) if "count" in q else size - offset
            if "offset" in q:
                msg["offset"] = offset
            if "count" in q:
                msg["count"] = count
            await send(start(count))
            await send(msg)
    elif kind == "zc2":
        (o1, c1), (o2, c2) = (map(int, q[k].split(",")) for k in ("a", "b"))
        with open(path, "rb") as f:
            await send(start(c1 + 3 + c2))
            await send({"type": "http.response.zerocopysend", "file": f, "offset": o1, "count": c1, "more_body": True})
            await send({"type": "http.response.body", "body": b"---", "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f.fileno(), "offset": o2, "count": c2})
    elif kind == "zcpos":
        with open(path, "rb") as f:
            seek = int(q.get("seek", 0))
            f.seek(seek)
            await send(start(os.path.getsize(path) - seek))
            await send({"type": "http.response.zerocopysend", "file": f, "more_body": True})
            assert f.tell() == os.path.getsize(path), f.tell()
            await send({"type": "http.response.zerocopysend", "file": f})  # nothing left
    elif kind == "chunked":
        with open(path, "rb") as f:
            await send(start(0, chunked=True))
            await send({"type": "http.response.body", "body": b"<", "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f, "more_body": True})
            await send({"type": "http.response.body", "body": b">"})
    elif kind == "missing":
        await send(start(7))
        await send({"type": "http.response.pathsend", "path": os.path.join(FILES, "no-such-file")})
    elif kind == "missing-caught":
        await send(start(9))
        try:
            await send({"type": "http.response.pathsend", "path": os.path.join(FILES, "no-such-file")})
        except FileNotFoundError:
            await send({"type": "http.response.body", "body": b"not found"})
    elif kind == "zclong":
        with open(path, "rb") as f:
            await send(start(int(q["length"])))
            try:
                await send({"type": "http.response.zerocopysend", "file": f, "offset": 0, "count": int(q["count"])})
            except Exception as e:  # noqa: BLE001 - reported to the test
                LAST_ERROR[0] = type(e).__name__
                raise
    elif kind == "last-error":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"0"), (b"x-error", LAST_ERROR[0].encode())]})
        await send({"type": "http.response.body", "body": b""})
    elif kind == "path-after-body":
        await send(start(4))
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        try:
            await send({"type": "http.response.pathsend", "path": path})
        except RuntimeError:
            await send({"type": "http.response.body", "body": b"cd"})
    elif kind == "body":
        with open(path, "rb") as f:
            data = f.read()
        await send(start(len(data)))
        await send({"type": "http.response.body", "body": data})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
