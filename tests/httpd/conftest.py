"""Fixtures for the evsendfile-httpd tests: a document root full of test
files and a running server (the real binary) on a free loopback port.

The binary comes from $EVSENDFILE_HTTPD (default: build/examples/evsendfile-httpd
under the repository).  No fixed sleeps anywhere: we wait on conditions
(the printed URL, a port that accepts, an fd count) with generous deadlines.
"""
import os
import re
import signal
import subprocess
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("EVSENDFILE_HTTPD",
                        os.path.join(REPO, "build", "examples", "evsendfile-httpd"))
DEADLINE = 20.0  # seconds; a guard against hangs, never a measurement


def wait_until(cond, what, deadline=DEADLINE, interval=0.01):
    """Polls cond() until it returns a true value; fails the test after deadline."""
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Server:
    def __init__(self, root, args=(), env=None, tmpdir=None, preexec_fn=None):
        if not os.access(BINARY, os.X_OK):
            pytest.fail("no server binary at %s (build it, or set EVSENDFILE_HTTPD)" % BINARY)
        self.log_path = os.path.join(tmpdir or root, "server-%d.log" % time.monotonic_ns())
        self.log = open(self.log_path, "w+")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([BINARY, "--listen", "127.0.0.1:0", *args, root],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid

        def url():
            if self.proc.poll() is not None:
                raise AssertionError("server exited: " + self.output())
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", self.output())
            return m and int(m.group(1))
        self.port = wait_until(url, "the server's URL line")
        self.base = "http://127.0.0.1:%d" % self.port
        # Every fd the idle server holds (root, listener, loop, pipes) exists
        # before it prints its URL: this is the count to come back to.
        self.baseline = fd_count(self.pid)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def fds(self):
        return fd_count(self.pid)

    def assert_fds_settle(self):
        """Every connection and file the tests used is closed again."""
        wait_until(lambda: self.fds() == self.baseline,
                   "the fd count to return to %d (now %d)" % (self.baseline, self.fds()))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not stop on %s" % sig)
        self.log.close()
        return self.proc.returncode


def make_docroot(root):
    """The files every test can rely on."""
    os.makedirs(root, exist_ok=True)

    def put(name, data):
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return p

    pattern = bytes(range(256))
    put("hello.txt", b"hello, world\n")
    put("index.html", b"<h1>root index</h1>\n")
    put("sub/index.html", b"<h1>sub index</h1>\n")
    put("sub/page.css", b"body{}\n")
    put("noindex/file.bin", b"x")
    put("empty.bin", b"")
    put("k1.bin", (pattern * 4)[:1024])
    put("k16.bin", (pattern * 64)[:16384])
    put("k16p1.bin", (pattern * 65)[:16385])
    put("k32.bin", (pattern * 128)[:32768])             # the small-body limit exactly
    put("k32p1.bin", (pattern * 129)[:32769])           # one over: the sendfile path
    put("m4.bin", os.urandom(4 * 1024 * 1024))
    put("name with space.txt", b"spaced\n")
    put(".env", b"SECRET=1\n")
    put(".git/config", b"[core]\n")
    os.mkfifo(os.path.join(root, "fifo"))
    return root


@pytest.fixture(scope="session")
def docroot(tmp_path_factory):
    base = tmp_path_factory.mktemp("httpd")
    root = make_docroot(str(base / "root"))
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"OUTSIDE-SECRET\n")
    os.symlink("../outside/secret.txt", os.path.join(root, "escape.txt"))
    os.symlink("../outside", os.path.join(root, "escape-dir"))
    os.symlink(str(outside / "secret.txt"), os.path.join(root, "abs-escape.txt"))
    os.symlink("hello.txt", os.path.join(root, "inside-link.txt"))
    os.symlink("sub", os.path.join(root, "sub-link"))
    return root


@pytest.fixture(scope="session")
def server(docroot, tmp_path_factory):
    s = Server(docroot, tmpdir=str(tmp_path_factory.mktemp("log")))
    yield s
    assert s.alive(), "the server died during the tests:\n" + s.output()
    assert s.stop() == 0


@pytest.fixture
def start_server(docroot, tmp_path):
    """Starts extra servers with their own options; stops them after the test."""
    started = []

    def start(*args, root=None, env=None, preexec_fn=None):
        s = Server(root or docroot, args, env=env, tmpdir=str(tmp_path), preexec_fn=preexec_fn)
        started.append(s)
        return s
    yield start
    for s in started:
        if s.alive():
            s.stop(signal.SIGKILL)
