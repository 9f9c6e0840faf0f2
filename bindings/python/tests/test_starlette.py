"""evsendfile.starlette.FileResponse under real uvicorn subprocesses: with
evsendfile.uvicorn (pathsend/zerocopysend advertised) and with stock uvicorn
(not advertised: Starlette's own behaviour), on both loops; curl as client."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _servers import (
    LOOPS, STRACE_OK, PYTHON, SIZES, Server, content, curl, free_port, get, headers_of, make_files, sendfile_bytes,
)

# The servers run in subprocesses, each test on both loops (LOOPS): no loop in this process.
pytestmark = pytest.mark.loopless

HERE = Path(__file__).resolve().parent
BIG = f"f{8 << 20}"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_files(tmp_path_factory.mktemp("files"), sparse=False)


def launch(files: Path, loop: str, kind: str, log: Path, prefix: list[str] = ()) -> Server:  # type: ignore[assignment]
    port = free_port()
    module = "evsendfile.uvicorn" if kind == "evsendfile" else "uvicorn"
    argv = [*prefix, PYTHON, "-m", module, "_starlette_app:app", "--port", str(port), "--loop", loop,
            "--app-dir", str(HERE)]
    os.environ["FILES_DIR"] = str(files)
    return Server(argv, port, log, HERE)


@pytest.fixture(scope="module", params=[(lp, k) for k in ("evsendfile", "stock") for lp in LOOPS],
                ids=lambda p: f"{p[0]}-{p[1]}-uvicorn")
def server(request: pytest.FixtureRequest, files: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    srv = launch(files, *request.param, tmp_path_factory.mktemp("log") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def clean_log(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """No traceback in the server's log, except where a test expects one."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    server.new_log()
    yield
    log = server.new_log()
    if "missing" not in request.node.name:
        assert "Traceback" not in log, log


@pytest.mark.parametrize("size", SIZES)
def test_bytes_exact(server: Server, files: Path, size: int) -> None:
    headers, body = get(server, f"/ours/f{size}")
    assert headers["status"] == "200" and headers["content-length"] == str(size)
    assert body == content(files, f"f{size}")


def test_same_headers_as_starlette(server: Server, files: Path) -> None:
    ours, body = get(server, f"/ours-dl/{BIG}")
    stock, stock_body = get(server, f"/stock-dl/{BIG}")
    assert body == stock_body
    for h in ("date",):
        ours.pop(h), stock.pop(h)
    assert ours.pop("accept-ranges") == "bytes"  # the one addition: Range is served
    assert ours == stock
    assert stock["content-disposition"] == "attachment; filename*=utf-8''na%C3%AFve%20file.bin"


def test_head(server: Server, files: Path) -> None:
    r = curl(server.url + f"/ours/{BIG}", "-I")
    h = headers_of(r.stdout)
    assert h["status"] == "200" and h["content-length"] == str(8 << 20)


@pytest.mark.parametrize("spec,offset,count", [
    ("bytes=0-0", 0, 1),
    ("bytes=100-", 100, (8 << 20) - 100),
    ("bytes=-500", (8 << 20) - 500, 500),
    ("bytes=5-99999999", 5, (8 << 20) - 5),
    ("bytes=-99999999", 0, 8 << 20),
    ("bytes=1000000-1032767", 1000000, 32768),
])
def test_single_range(server: Server, files: Path, spec: str, offset: int, count: int) -> None:
    headers, body = get(server, f"/ours/{BIG}", "-H", f"Range: {spec}")
    assert headers["status"] == "206"
    assert headers["content-range"] == f"bytes {offset}-{offset + count - 1}/{8 << 20}"
    assert headers["content-length"] == str(count)
    assert body == content(files, BIG, offset, count)


@pytest.mark.parametrize("spec", ["bytes=8388608-", "bytes=99999999-100000000", "bytes=-0"])
def test_unsatisfiable_range(server: Server, spec: str) -> None:
    headers, body = get(server, f"/ours/{BIG}", "-H", f"Range: {spec}")
    assert headers["status"] == "416" and headers["content-range"] == f"bytes */{8 << 20}"
    assert body == b""


def test_empty_file_ranges(server: Server) -> None:
    for spec in ("bytes=0-", "bytes=-1"):
        headers, body = get(server, "/ours/f0", "-H", f"Range: {spec}")
        assert headers["status"] == "416" and headers["content-range"] == "bytes */0" and body == b""
    headers, body = get(server, "/ours/f0")
    assert headers["status"] == "200" and headers["content-length"] == "0" and body == b""


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3"])
def test_ignored_range_sends_all(server: Server, files: Path, spec: str) -> None:
    headers, body = get(server, f"/ours/f{32 * 1024 + 1}", "-H", f"Range: {spec}")
    assert headers["status"] == "200" and body == content(files, f"f{32 * 1024 + 1}")


def test_if_range(server: Server, files: Path) -> None:
    h, _ = get(server, f"/ours/{BIG}", "-I")
    matching, _ = get(server, f"/ours/{BIG}", "-H", "Range: bytes=0-9", "-H", f"If-Range: {h['etag']}")
    assert matching["status"] == "206"
    stale, body = get(server, f"/ours/{BIG}", "-H", "Range: bytes=0-9", "-H", 'If-Range: "other"')
    assert stale["status"] == "200" and body == content(files, BIG)


def test_missing_file_is_500(server: Server) -> None:
    headers, _ = get(server, "/stock/nothing-here")  # Starlette's own: RuntimeError -> 500
    assert headers["status"] == "500"
    headers, _ = get(server, "/ours/nothing-here")
    assert headers["status"] == "500"


@pytest.mark.skipif(not STRACE_OK, reason="strace unusable here")
@pytest.mark.parametrize("loop", LOOPS)
def test_served_by_sendfile_under_evsendfile_uvicorn(loop: str, files: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # curl is on this host, which gets the copy path by default (bench/RESULTS.md): force sendfile.
    monkeypatch.setenv("EVSENDFILE_FORCE_SENDFILE", "1")
    trace = tmp_path / "strace"
    srv = launch(files, loop, "evsendfile", tmp_path / "server.log",
                 prefix=["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=sendfile"])
    try:
        _, body = get(srv, f"/ours/{BIG}")
        assert body == content(files, BIG)
        _, body = get(srv, f"/ours/{BIG}", "-H", "Range: bytes=1000-2000999")
        assert body == content(files, BIG, 1000, 2000000)
        _, body = get(srv, f"/stock/{BIG}")  # Starlette's own: 64 KiB reads, no sendfile
        assert body == content(files, BIG)
    finally:
        srv.stop()
    assert sendfile_bytes(trace.read_text()) == (8 << 20) + 2000000
