"""The aiohttp app test_aiohttp.py serves: python3 _aiohttp_app.py PORT LOOP [KEY CERT]
/ours/NAME with evsendfile.aiohttp.FileResponse, /stock/NAME with aiohttp's."""

import asyncio
import os
import ssl
import sys

from aiohttp import web

from evsendfile.aiohttp import FileResponse

FILES = os.environ.get("FILES_DIR", "/nonexistent")


def handler(cls):
    async def endpoint(request):
        return cls(os.path.join(FILES, request.match_info["name"]))

    return endpoint


def main():
    port, loop = int(sys.argv[1]), sys.argv[2]
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    context = None
    if len(sys.argv) > 4:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[3])
    app = web.Application()
    app.router.add_get("/ours/{name}", handler(FileResponse))
    app.router.add_get("/stock/{name}", handler(web.FileResponse))
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=lambda *a: None)


if __name__ == "__main__":
    main()
