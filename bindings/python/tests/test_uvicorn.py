"""evsendfile.uvicorn: real uvicorn (Debian's 0.17) in a subprocess, run by
`python3 -m evsendfile.uvicorn`, serving tests/_uvicorn_app.py; clients are
curl and raw sockets.  Every test runs on both loops (asyncio, uvloop) and
both of uvicorn's HTTP parsers (h11, httptools)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from _servers import (
    GIB, LOOPS, STRACE_OK, PYTHON, SIZES, Reader, Server, connect, content, curl, free_port, make_cert, make_files, request,
    sendfile_bytes, wait_until,
)

# The servers run in subprocesses, each test on both loops (LOOPS): no loop in this process.
pytestmark = pytest.mark.loopless

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_files(tmp_path_factory.mktemp("files"))


def launch(files: Path, loop: str, http: str, log: Path, tls: bool = False, prefix: list[str] = (),  # type: ignore[assignment]
           extra: list[str] = ()) -> Server:  # type: ignore[assignment]
    port = free_port()
    argv = [*prefix, PYTHON, "-m", "evsendfile.uvicorn", "_uvicorn_app:app", "--port", str(port),
            "--loop", loop, "--http", http, "--app-dir", str(HERE), *extra]
    if tls:
        key, cert = make_cert(files)
        argv += ["--ssl-keyfile", key, "--ssl-certfile", cert]
    os.environ["FILES_DIR"] = str(files)
    return Server(argv, port, log, HERE, tls=tls)


@pytest.fixture(scope="module", params=[(lp, h) for h in ("h11", "httptools") for lp in LOOPS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def server(request: pytest.FixtureRequest, files: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    loop, http = request.param
    srv = launch(files, loop, http, tmp_path_factory.mktemp("log") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def clean_log(server: Server):  # type: ignore[no-untyped-def]
    """The test must leave no traceback or error in the server's log."""
    server.new_log()
    yield
    log = server.new_log()
    assert "Traceback" not in log and "ERROR" not in log, log


@pytest.mark.parametrize("size", SIZES)
def test_pathsend_bytes_exact(server: Server, files: Path, size: int, clean_log: None) -> None:
    r = curl(f"{server.url}/path/f{size}", "-D", "-", "-o", str(files / f"out{size}"))
    assert r.returncode == 0, r.stderr
    assert b"content-length: %d" % size in r.stdout.lower()
    assert (files / f"out{size}").read_bytes() == content(files, f"f{size}")


@pytest.mark.parametrize("size", [1, 32 * 1024 + 1, 8 << 20])
def test_zerocopysend_whole_file(server: Server, files: Path, size: int, clean_log: None) -> None:
    r = curl(f"{server.url}/zc/f{size}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == content(files, f"f{size}")


@pytest.mark.parametrize("offset,count", [(0, 0), (1, 1), (12345, 32 * 1024), (1 << 20, (8 << 20) - (1 << 20))])
def test_zerocopysend_offset_count(server: Server, files: Path, offset: int, count: int, clean_log: None) -> None:
    r = curl(f"{server.url}/zc/f{8 << 20}?offset={offset}&count={count}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == content(files, f"f{8 << 20}", offset, count)


def test_zerocopysend_two_regions_more_body(server: Server, files: Path, clean_log: None) -> None:
    big = content(files, f"f{8 << 20}")
    r = curl(f"{server.url}/zc2/f{8 << 20}?a=5,100000&b=3000000,5000000")
    assert r.returncode == 0, r.stderr
    assert r.stdout == big[5:100005] + b"---" + big[3000000:8000000]


def test_zerocopysend_from_file_position(server: Server, files: Path, clean_log: None) -> None:
    r = curl(f"{server.url}/zcpos/f{32 * 1024 + 1}?seek=1000")
    assert r.returncode == 0, r.stderr
    assert r.stdout == content(files, f"f{32 * 1024 + 1}", 1000)


def test_zerocopysend_chunked(server: Server, files: Path, clean_log: None) -> None:
    s = connect(server.port)
    with s:
        s.sendall(request(f"/chunked/f{8 << 20}") + request(f"/chunked/f{0}"))
        reader = Reader(s)
        status, headers, body = reader.response()
        assert headers["transfer-encoding"] == "chunked"
        assert body == b"<" + content(files, f"f{8 << 20}") + b">"
        assert reader.response()[2] == b"<>"


def test_one_gib_sparse(server: Server, files: Path, clean_log: None) -> None:
    for kind in ("path", "zc"):
        curl_p = subprocess.Popen(["curl", "-sS", f"{server.url}/{kind}/sparse"], stdout=subprocess.PIPE)
        cmp = subprocess.run(["cmp", "-", str(files / "sparse")], stdin=curl_p.stdout, capture_output=True)
        curl_p.stdout.close()  # type: ignore[union-attr]
        assert curl_p.wait() == 0
        assert cmp.returncode == 0, cmp.stdout


def test_head(server: Server, files: Path, clean_log: None) -> None:
    s = connect(server.port)
    with s:
        s.sendall(request(f"/path/f{8 << 20}", "HEAD") + request(f"/zc/f{1}", "HEAD") + request(f"/path/f{1}"))
        reader = Reader(s)
        for _ in range(2):
            status, headers, _b = reader.response(head_only=True)
            assert status == 200 and "content-length" in headers
        assert reader.response()[2] == content(files, "f1")  # nothing was sent for the HEADs


def test_keepalive_and_pipelining_after_zero_copy(server: Server, files: Path, clean_log: None) -> None:
    big = content(files, f"f{8 << 20}")
    s = connect(server.port)
    with s:
        reader = Reader(s)
        for _ in range(3):  # keep-alive, one at a time
            s.sendall(request(f"/path/f{8 << 20}"))
            assert reader.response()[2] == big
        batch = [f"/path/f{8 << 20}", f"/zc/f{32 * 1024}", f"/body/f{1}", f"/zc2/f{8 << 20}?a=0,10&b=20,10",
                 f"/path/f{0}", f"/zc/f{8 << 20}?offset=7&count=70000"]
        s.sendall(b"".join(request(p) for p in batch))  # pipelined
        expected = [big, content(files, f"f{32 * 1024}"), content(files, "f1"), big[:10] + b"---" + big[20:30],
                    b"", big[7:70007]]
        for want in expected:
            status, _h, body = reader.response()
            assert status == 200 and body == want


def test_pathsend_missing_file_uncaught(server: Server) -> None:
    server.new_log()
    s = connect(server.port)
    with s:
        s.sendall(request("/missing"))
        data = b""
        while True:  # the server closes the connection: no hang (guarded by the socket timeout)
            b = s.recv(65536)
            if not b:
                break
            data += b
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\n")  # head only, then closed
    wait_until(lambda: "FileNotFoundError" in server.log(), "the app's error in the log")
    assert curl(f"{server.url}/path/f1").stdout == content(server_files(server), "f1")  # healthy


def server_files(server: Server) -> Path:
    return Path(os.environ["FILES_DIR"])


def test_pathsend_missing_file_app_sees_it(server: Server, clean_log: None) -> None:
    s = connect(server.port)
    with s:
        s.sendall(request("/missing-caught") + request("/missing-caught"))
        reader = Reader(s)
        for _ in range(2):  # the connection stays usable
            assert reader.response() [2] == b"not found"


@pytest.mark.parametrize("name,length,count,error", [
    (f"f{8 << 20}", 10, 20, ("LocalProtocolError", "RuntimeError")),  # longer than Content-Length (h11, httptools)
    ("f1", 5, 5, ("OSError", "TruncatedFileError")),  # the file ends before the region
    (f"f{32 * 1024}", (1 << 20) + 1, (1 << 20) + 1, ("OSError", "TruncatedFileError")),
])
def test_bad_region_reaches_the_app(server: Server, name: str, length: int, count: int, error: tuple) -> None:
    server.new_log()
    s = connect(server.port)
    with s:
        s.sendall(request(f"/zclong/{name}?length={length}&count={count}"))
        data = b""
        while True:  # the connection is closed, not left hanging
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: %d" % length in head
    assert len(body) < length  # never a complete-looking response
    r = curl(f"{server.url}/last-error", "-D", "-")
    assert any(f"x-error: {e}".encode() in r.stdout for e in error), r.stdout
    wait_until(lambda: "Exception in ASGI application" in server.log()[server.mark:], "the error in the log")


def test_client_disconnects_mid_body(server: Server, files: Path, clean_log: None) -> None:
    curl(f"{server.url}/path/f{8 << 20}")  # the library's worker thread (made on first use) exists now
    baseline = server.fds()
    for kind in ("path", "zc"):
        for _ in range(5):
            s = connect(server.port, rcvbuf=16384)
            s.sendall(request(f"/{kind}/sparse"))
            assert len(s.recv(65536)) > 0
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            s.close()
    assert curl(f"{server.url}/path/f{8 << 20}").stdout == content(files, f"f{8 << 20}")
    wait_until(lambda: server.fds() <= baseline, f"server fds back to {baseline} (now {server.fds()})")


def test_slow_reader(server: Server, files: Path, clean_log: None) -> None:
    want = content(files, f"f{8 << 20}")
    s = connect(server.port, rcvbuf=4096)
    with s:
        s.sendall(request(f"/zc/f{8 << 20}"))
        got = bytearray()
        while len(got) < len(want) + 50:
            b = s.recv(7000)  # small reads: the server keeps meeting a full socket
            if not b:
                break
            got += b
            if len(got) >= len(want) and b"\r\n\r\n" in got:
                head_end = got.index(b"\r\n\r\n") + 4
                if len(got) - head_end >= len(want):
                    break
        assert bytes(got[got.index(b"\r\n\r\n") + 4:]) == want


@pytest.mark.skipif(not STRACE_OK, reason="strace unusable here")
@pytest.mark.parametrize("loop", LOOPS)
def test_tls_copy_path(loop: str, files: Path, tmp_path: Path) -> None:
    srv = launch(files, loop, "h11", tmp_path / "tls.log", tls=True,
                 prefix=["strace", "-f", "-qq", "-o", str(tmp_path / "strace"), "-e", "trace=sendfile"])
    try:
        big = content(files, f"f{8 << 20}")
        for path, want in [(f"/path/f{8 << 20}", big), (f"/path/f{32 * 1024 + 1}", content(files, f"f{32 * 1024 + 1}")),
                           (f"/zc2/f{8 << 20}?a=1,65536&b=4000000,1000", big[1:65537] + b"---" + big[4000000:4001000]),
                           (f"/chunked/f{1}", b"<" + content(files, "f1") + b">")]:
            r = curl(srv.url + path)
            assert r.returncode == 0, r.stderr
            assert r.stdout == want
    finally:
        log = srv.stop()
    assert "Traceback" not in log, log
    assert sendfile_bytes((tmp_path / "strace").read_text()) == 0  # no plaintext around TLS


@pytest.mark.skipif(not STRACE_OK, reason="strace unusable here")
@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_plain_tcp_uses_sendfile(loop: str, http: str, files: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # curl is on this host, which gets the copy path by default (bench/RESULTS.md): force sendfile.
    monkeypatch.setenv("EVSENDFILE_FORCE_SENDFILE", "1")
    trace = tmp_path / "strace"
    srv = launch(files, loop, http, tmp_path / "server.log",
                 prefix=["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=sendfile"])
    try:
        for kind in ("path", "zc"):
            r = curl(f"{srv.url}/{kind}/f{8 << 20}")
            assert r.stdout == content(files, f"f{8 << 20}")
    finally:
        srv.stop()
    assert sendfile_bytes(trace.read_text()) == 2 * (8 << 20)


def test_launcher_workers(files: Path, tmp_path: Path) -> None:
    """--workers N: each worker process serves with the evsendfile protocol."""
    srv = launch(files, "asyncio", "httptools", tmp_path / "server.log", extra=["--workers", "2"])
    try:
        # The first worker to listen answers at once; the second may still be
        # starting (a loaded machine), and one stopped before it started logs nothing.
        wait_until(lambda: srv.log().count("Application startup complete") == 2, "both workers to start")
        for _ in range(6):
            r = curl(f"{srv.url}/path/f{8 << 20}")
            assert r.returncode == 0 and r.stdout == content(files, f"f{8 << 20}")
    finally:
        log = srv.stop()
    assert log.count("Started server process") == 2 and "Traceback" not in log, log


def test_pathsend_after_body_is_refused(server: Server, clean_log: None) -> None:
    assert curl(f"{server.url}/path-after-body/f1").stdout == b"abcd"


def test_other_uvicorn_versions_are_refused() -> None:
    code = "import uvicorn; uvicorn.__version__ = '0.18.0'; import evsendfile.uvicorn"
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(HERE.parent)))
    assert r.returncode != 0
    assert "ImportError: evsendfile.uvicorn supports uvicorn 0.17.x, not 0.18.0" in r.stderr


@pytest.mark.parametrize("loop", LOOPS)
def test_stalled_client_cut_by_idle_timeout(loop: str, files: Path, tmp_path: Path) -> None:
    srv = launch(files, loop, "h11", tmp_path / "server.log", extra=["--sendfile-idle-timeout", "1"])
    try:
        assert curl(f"{srv.url}/path/f{8 << 20}").stdout == content(files, f"f{8 << 20}")  # worker thread made
        baseline = srv.fds()
        s = connect(srv.port, rcvbuf=4096)
        with s:
            s.sendall(request("/path/sparse"))  # and read nothing: the server stalls, then cuts
            wait_until(lambda: srv.fds() >= baseline + 2, "the server to hold the connection and the file")
            wait_until(lambda: srv.fds() <= baseline, "the server to let the stalled connection go")
            got = 0
            try:
                while True:
                    b = s.recv(1 << 20)
                    if not b:
                        break
                    got += len(b)
            except ConnectionResetError:
                pass
            assert got < GIB
        assert curl(f"{srv.url}/path/f{8 << 20}").stdout == content(files, f"f{8 << 20}")  # healthy
    finally:
        log = srv.stop()
    assert "Traceback" not in log, log
