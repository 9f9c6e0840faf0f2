"""A keep-alive HTTP/1.1 static file server on asyncio streams + evsendfile.

    EVSENDFILE_LIBRARY=/path/to/libevsendfile.so.2 python3 static_server.py ROOT [PORT]
"""

import asyncio
import os
import sys

import evsendfile


async def serve_file(writer: asyncio.StreamWriter, root: str, target: str, head_only: bool) -> bool:
    """Answers one request; returns False when the connection must close."""
    path = os.path.realpath(os.path.join(root, target.lstrip("/")))
    if not path.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(path):
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True
    with open(path, "rb") as f:  # one open file: its size and its bytes agree
        size = os.fstat(f.fileno()).st_size
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
        if head_only:
            writer.write(head)
            return True
        try:
            # head + body in order, by the C engine; returns the body bytes sent
            await evsendfile.send_file(writer, f, 0, size, head=head, idle_timeout=30)
        except (ConnectionError, TimeoutError, evsendfile.TruncatedFileError):
            return False  # the transport is already aborted
    return True


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, root: str) -> None:
    try:
        while True:
            try:
                request = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method not in ("GET", "HEAD"):
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            elif not await serve_file(writer, root, target, method == "HEAD"):
                return
            if b"\r\nconnection: close" in request.lower():
                return
    finally:
        writer.close()


async def main(root: str, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, root), "127.0.0.1", port)
    print("serving", root, "on", server.sockets[0].getsockname(), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8080))
