"""Real servers in subprocesses for the ASGI/aiohttp tests, and raw HTTP/1.1
clients.  Nothing sleeps a fixed time: waits poll under a deadline."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

PYTHON = "/usr/bin/python3"  # Debian's: uvicorn, starlette, aiohttp, uvloop come from Debian
BINDING = str(Path(__file__).resolve().parent.parent)
DEADLINE = 60.0
LOOPS = ["asyncio", "uvloop"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory: Path) -> tuple[str, str]:
    key, cert = str(directory / "key.pem"), str(directory / "cert.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=localhost"],
            check=True, capture_output=True,
        )
    return key, cert


class Server:
    """A server process on 127.0.0.1:port, its log in a file."""

    def __init__(self, argv: list[str], port: int, log: Path, cwd: Path, tls: bool = False) -> None:
        self.port = port
        self.log_path = log
        self.tls = tls
        self.traced = argv[0] == "strace"
        env = dict(os.environ, PYTHONPATH=BINDING + os.pathsep + str(cwd), PYTHONUNBUFFERED="1")
        self.log_file = open(log, "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.mark = 0
        end = time.monotonic() + DEADLINE
        while True:
            if self.proc.poll() is not None:
                self.log_file.close()
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end:
                    self.stop()
                    raise RuntimeError(f"server did not start: {self.log()}") from None
                time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def new_log(self) -> str:
        """The log written since the previous call."""
        text = self.log()
        new, self.mark = text[self.mark:], len(text)
        return new

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.server_pids()[0]}/fd"))

    def server_pids(self) -> list[int]:
        """The server process: under strace, strace's children."""
        if self.traced:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        return [self.proc.pid]

    def stop(self) -> str:
        if self.proc.poll() is None:
            for pid in self.server_pids():
                os.kill(pid, signal.SIGINT)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.log()


def curl(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "-k", "--max-time", "60", *args, url], capture_output=True, timeout=DEADLINE + 10)


def request(path: str, method: str = "GET", headers: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode()


class Reader:
    """Reads HTTP/1.1 responses (Content-Length or chunked) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        b = self.sock.recv(1 << 20)
        if not b:
            raise ConnectionError("connection closed by the server")
        self.buf += b

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            self._fill()

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status = int(self._line().split()[1])
        headers: dict[str, str] = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if head_only:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = bytearray()
            while True:
                n = int(self._line(), 16)
                if n == 0:
                    self._line()
                    break
                body += self._exactly(n)
                self._line()
            return status, headers, bytes(body)
        return status, headers, self._exactly(int(headers.get("content-length", "0")))


def connect(port: int, rcvbuf: Optional[int] = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(DEADLINE)
    s.connect(("127.0.0.1", port))
    return s


def wait_until(cond, what: str, timeout: float = DEADLINE) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.01)


SENDFILE_RE = re.compile(r"sendfile(?:\(| resumed>).*\) = (\d+)$", re.M)


def sendfile_bytes(strace_log: str) -> int:
    """Bytes moved by successful sendfile(2) calls in an `strace -e trace=sendfile` log."""
    return sum(int(m.group(1)) for m in SENDFILE_RE.finditer(strace_log))


SIZES = [0, 1, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 8 << 20]
GIB = 1 << 30


def make_files(d: Path, sparse: bool = True) -> Path:
    """f<size> of random bytes for each of SIZES; `sparse`: 1 GiB, mostly a
    hole, marked at both ends and in the middle."""
    for size in SIZES:
        (d / f"f{size}").write_bytes(os.urandom(size))
    if sparse:
        with open(d / "sparse", "wb") as f:
            f.truncate(GIB)
            for at in (0, GIB // 2 - 3, GIB - 16):
                f.seek(at)
                f.write(os.urandom(16))
    return d


def content(files: Path, name: str, offset: int = 0, count: Optional[int] = None) -> bytes:
    with open(files / name, "rb") as f:
        f.seek(offset)
        return f.read() if count is None else f.read(count)


def headers_of(curl_stdout: bytes) -> dict[str, str]:
    """The last response's headers from `curl -D - -o FILE` output."""
    blocks = [b for b in curl_stdout.split(b"\r\n\r\n") if b.startswith(b"HTTP/")]
    lines = blocks[-1].decode("latin-1").split("\r\n")
    out = {"status": lines[0].split()[1]}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        out[k.strip().lower()] = v.strip()
    return out


def get(server: Server, path: str, *args: str) -> tuple[dict[str, str], bytes]:
    """curl GET of `path` on `server`: (the response's headers, its body)."""
    r = curl(server.url + path, "-D", "/dev/stderr", *args)
    assert r.returncode == 0, r.stderr
    return headers_of(r.stderr), r.stdout


def _strace_works() -> bool:
    try:
        return subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=sendfile", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


STRACE_OK = _strace_works()  # missing, or ptrace not allowed (some containers)
