"""The Starlette app test_starlette.py serves (files from $FILES_DIR):
/ours/NAME with evsendfile.starlette.FileResponse, /stock/NAME with Starlette's,
/ours-dl/NAME and /stock-dl/NAME with filename, media type and extra headers."""

import os

from starlette.applications import Starlette
from starlette.responses import FileResponse as StockFileResponse
from starlette.routing import Route

from evsendfile.starlette import FileResponse

FILES = os.environ.get("FILES_DIR", "/nonexistent")


def handler(cls, **kwargs):
    async def endpoint(request):
        return cls(os.path.join(FILES, request.path_params["name"]), **kwargs)

    return endpoint


dl = dict(filename="naïve file.bin", media_type="application/x-test", headers={"x-extra": "1"})
app = Starlette(routes=[
    Route("/ours/{name:path}", handler(FileResponse), methods=["GET", "HEAD"]),
    Route("/stock/{name:path}", handler(StockFileResponse), methods=["GET", "HEAD"]),
    Route("/ours-dl/{name:path}", handler(FileResponse, **dl), methods=["GET", "HEAD"]),
    Route("/stock-dl/{name:path}", handler(StockFileResponse, **dl), methods=["GET", "HEAD"]),
])
