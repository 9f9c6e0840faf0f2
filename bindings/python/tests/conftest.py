"""Shared helpers: real asyncio servers on loopback, test files, deadlines.

Tests are plain functions that call run(); nothing here sleeps a fixed time:
waits poll a condition under a generous deadline.

Every test runs once per event loop named by ``--loop`` (default
``asyncio,uvloop``): the loop policy is set for the test, so run(),
asyncio.run() in threads, and everything else create that kind of loop.
uvloop missing is an error unless ``--loop=asyncio`` is given."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import socket
import sys
import termios
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEADLINE = 60.0  # seconds; a guard against hangs, never a timing assertion


LOOPS = ("asyncio", "uvloop")


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--loop", default=",".join(LOOPS),
                     help="comma-separated event loops to run every test under: asyncio, uvloop")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "loopless: the test starts no event loop in this process (run once)")


def _loops(config: Any) -> list[str]:
    names = [n.strip() for n in config.getoption("--loop").split(",") if n.strip()]
    for n in names:
        if n not in LOOPS:
            raise pytest.UsageError(f"--loop: unknown loop {n!r} (known: {', '.join(LOOPS)})")
    if "uvloop" in names:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise pytest.UsageError("uvloop is not installed (Debian: python3-uvloop); pass --loop=asyncio") from None
    return names


def pytest_generate_tests(metafunc: Any) -> None:
    if "event_loop_kind" in metafunc.fixturenames:
        loops = ["asyncio"] if metafunc.definition.get_closest_marker("loopless") else _loops(metafunc.config)
        metafunc.parametrize("event_loop_kind", loops, indirect=True)


@pytest.fixture(autouse=True)
def event_loop_kind(request: Any) -> Any:
    """The event loop of this run of the test (parametrized, see above)."""
    if request.param == "asyncio":
        policy: Any = asyncio.DefaultEventLoopPolicy()
    else:
        import uvloop

        policy = uvloop.EventLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    try:
        yield request.param
    finally:
        asyncio.set_event_loop_policy(None)


def run(coro: Awaitable[Any], timeout: float = DEADLINE) -> Any:
    """Run a coroutine on a fresh loop; fail on a deadline or on any error the
    loop reported to its exception handler (e.g. a callback into a dead future)."""
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: errors.append(ctx))
        return await asyncio.wait_for(coro, timeout)

    result = asyncio.run(main())
    assert not errors, f"event loop reported errors: {errors}"
    return result


async def wait_until(cond: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll cond() every few ms until it holds; fail after `timeout`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.005)


def unsent_bytes(sock: Any) -> int:
    """Bytes in the kernel send queue of `sock` (SIOCOUTQ)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
    return buf[0]


def unread_bytes(sock: Any) -> int:
    """Bytes waiting in the kernel receive queue of `sock` (FIONREAD)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return buf[0]


def make_file(path: Any, size: int) -> bytes:
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return data


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler, ssl: Any = None) -> AsyncIterator[int]:
    """A real asyncio server on 127.0.0.1; yields its port.  An exception in
    the handler is re-raised here so that tests see it."""
    failures: list[BaseException] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def wrapped(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(r, w)
        except BaseException as e:  # noqa: BLE001 - reported to the test below
            failures.append(e)
            raise
        finally:
            w.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0, ssl=ssl)
    try:
        yield server.sockets[0].getsockname()[1]
        for t in list(tasks):
            if not t.done():
                await asyncio.wait_for(asyncio.shield(t), DEADLINE)
    finally:
        server.close()
        await server.wait_closed()
    if failures and not isinstance(failures[0], asyncio.CancelledError):
        raise failures[0]


async def connect(port: int, rcvbuf: Optional[int] = None, ssl: Any = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, ssl=ssl, server_hostname="localhost" if ssl else None)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        try:
            b = await reader.read(1 << 20)
        except ConnectionError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


@pytest.fixture(autouse=True)
def _no_leftover_transfers() -> Any:
    yield
    from evsendfile import _worker

    assert not _worker._pending, "a transfer outlived its test"


@pytest.fixture(params=["inline", "worker"])
def engine_path(request, monkeypatch):
    """Runs a test twice: small regions stepped on the asyncio thread (the
    default), and every region on the worker thread."""
    from evsendfile import _inline

    if request.param == "worker":
        monkeypatch.setattr(_inline, "AVAILABLE", False)
    elif not _inline.AVAILABLE:
        pytest.skip("inline stepping unavailable here")
    return request.param
