"""evsendfile.aiohttp.FileResponse in a real aiohttp server subprocess
(tests/_aiohttp_app.py), on both loops; curl and raw sockets as clients.
aiohttp's own FileResponse on the same server is the reference."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from _servers import (
    LOOPS, STRACE_OK, PYTHON, SIZES, Reader, Server, connect, content, free_port, get, make_cert, make_files,
    request, sendfile_bytes, wait_until,
)

# The servers run in subprocesses, each test on both loops (LOOPS): no loop in this process.
pytestmark = pytest.mark.loopless

HERE = Path(__file__).resolve().parent
BIG = f"f{8 << 20}"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_files(tmp_path_factory.mktemp("files"))


def launch(files: Path, loop: str, log: Path, tls: bool = False, prefix: list[str] = ()) -> Server:  # type: ignore[assignment]
    port = free_port()
    argv = [*prefix, PYTHON, str(HERE / "_aiohttp_app.py"), str(port), loop]
    if tls:
        argv += list(make_cert(files))
    os.environ["FILES_DIR"] = str(files)
    return Server(argv, port, log, HERE, tls=tls)


@pytest.fixture(scope="module", params=LOOPS)
def server(request: pytest.FixtureRequest, files: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    srv = launch(files, request.param, tmp_path_factory.mktemp("log") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def clean_log(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    server.new_log()
    yield
    log = server.new_log()
    assert "Traceback" not in log and "Error handling request" not in log, log


@pytest.mark.parametrize("size", SIZES)
def test_bytes_exact_and_same_headers(server: Server, files: Path, size: int) -> None:
    ours, body = get(server, f"/ours/f{size}")
    stock, stock_body = get(server, f"/stock/f{size}")
    assert body == stock_body == content(files, f"f{size}")
    ours.pop("date"), stock.pop("date")
    assert ours == stock


def test_one_gib_sparse(server: Server, files: Path) -> None:
    import subprocess

    p = subprocess.Popen(["curl", "-sS", f"{server.url}/ours/sparse"], stdout=subprocess.PIPE)
    cmp = subprocess.run(["cmp", "-", str(files / "sparse")], stdin=p.stdout, capture_output=True)
    p.stdout.close()  # type: ignore[union-attr]
    assert p.wait() == 0 and cmp.returncode == 0, cmp.stdout


@pytest.mark.parametrize("spec,offset,count", [("bytes=0-0", 0, 1), ("bytes=100-", 100, (8 << 20) - 100),
                                               ("bytes=-500", (8 << 20) - 500, 500)])
def test_range_is_aiohttps(server: Server, files: Path, spec: str, offset: int, count: int) -> None:
    headers, body = get(server, f"/ours/{BIG}", "-H", f"Range: {spec}")
    assert headers["status"] == "206"
    assert headers["content-range"] == f"bytes {offset}-{offset + count - 1}/{8 << 20}"
    assert body == content(files, BIG, offset, count)
    headers, _ = get(server, f"/ours/{BIG}", "-H", "Range: bytes=99999999-")
    assert headers["status"] == "416"


def test_conditional_and_head(server: Server) -> None:
    h, _ = get(server, f"/ours/{BIG}", "-I")
    assert h["status"] == "200" and h["content-length"] == str(8 << 20)
    h304, body = get(server, f"/ours/{BIG}", "-H", f"If-None-Match: {h['etag']}")
    assert h304["status"] == "304" and body == b""


def test_keepalive_pipelined(server: Server, files: Path) -> None:
    big = content(files, BIG)
    s = connect(server.port)
    with s:
        reader = Reader(s)
        s.sendall(b"".join(request(p) for p in [f"/ours/{BIG}", "/ours/f1", f"/ours/{BIG}", "/ours/f0"]))
        for want in (big, content(files, "f1"), big, b""):
            status, _h, body = reader.response()
            assert status == 200 and body == want


def test_client_disconnects_mid_body(server: Server, files: Path) -> None:
    get(server, f"/ours/{BIG}")  # the library's worker thread (made on first use) exists now
    baseline = server.fds()
    for _ in range(5):
        s = connect(server.port, rcvbuf=16384)
        s.sendall(request("/ours/sparse"))
        assert len(s.recv(65536)) > 0
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
    assert get(server, f"/ours/{BIG}")[1] == content(files, BIG)
    wait_until(lambda: server.fds() <= baseline, f"server fds back to {baseline} (now {server.fds()})")


def test_slow_reader(server: Server, files: Path) -> None:
    want = content(files, BIG)
    s = connect(server.port, rcvbuf=4096)
    with s:
        s.sendall(request(f"/ours/{BIG}"))
        reader = Reader(s)
        reader.sock = _Slow(s)  # type: ignore[assignment]
        assert reader.response()[2] == want


class _Slow:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv(self, n: int) -> bytes:
        return self.sock.recv(min(n, 7000))


@pytest.mark.skipif(not STRACE_OK, reason="strace unusable here")
@pytest.mark.parametrize("loop", LOOPS)
def test_tls_falls_back_to_aiohttp(loop: str, files: Path, tmp_path: Path) -> None:
    trace = tmp_path / "strace"
    srv = launch(files, loop, tmp_path / "tls.log", tls=True,
                 prefix=["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=sendfile"])
    try:
        assert get(srv, f"/ours/{BIG}")[1] == content(files, BIG)
        assert get(srv, f"/ours/{BIG}", "-H", "Range: bytes=10-99")[1] == content(files, BIG, 10, 90)
    finally:
        log = srv.stop()
    assert "Traceback" not in log, log
    assert sendfile_bytes(trace.read_text()) == 0


@pytest.mark.skipif(not STRACE_OK, reason="strace unusable here")
@pytest.mark.parametrize("loop", LOOPS)
def test_plain_tcp_uses_sendfile(loop: str, files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # curl is on this host, which gets the copy path by default (bench/RESULTS.md): force sendfile.
    monkeypatch.setenv("EVSENDFILE_FORCE_SENDFILE", "1")
    trace = tmp_path / "strace"
    srv = launch(files, loop, tmp_path / "server.log",
                 prefix=["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=sendfile"])
    try:
        assert get(srv, f"/ours/{BIG}")[1] == content(files, BIG)
        assert get(srv, f"/ours/{BIG}", "-H", "Range: bytes=10-1000009")[1] == content(files, BIG, 10, 1000000)
    finally:
        srv.stop()
    assert sendfile_bytes(trace.read_text()) == (8 << 20) + 1000000
