"""The program as a whole: command line, errors at start, threads, the copy
path, the access log, and the graceful stop on SIGTERM / SIGINT."""
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import BINARY, DEADLINE, wait_until
from httpclient import Conn, curl


def run(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=DEADLINE)


def test_help_documents_every_option():
    r = run("--help")
    assert r.returncode == 0
    for opt in ("--listen", "--threads", "--no-sendfile", "--force-sendfile", "--access-log", "--dotfiles", "--max-conns",
                "--header-timeout", "--keepalive-timeout", "--send-timeout", "--stop-timeout", "ROOT"):
        assert opt in r.stdout


def test_missing_root_is_a_one_line_error(tmp_path):
    r = run("--listen", "127.0.0.1:0", str(tmp_path / "nope"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "nope" in r.stderr and "No such file" in r.stderr


def test_taken_port_is_a_one_line_error(server, docroot):
    r = run("--listen", "127.0.0.1:%d" % server.port, docroot)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Address already in use" in r.stderr


@pytest.mark.parametrize("args", [("--threads", "x"), ("--listen", "localhost"), ("--bogus",)])
def test_bad_arguments_exit_2(args, docroot):
    assert run(*args, docroot).returncode == 2


def test_threads_share_the_port(start_server, docroot):
    s = start_server("--threads", "3")
    assert len(os.listdir("/proc/%d/task" % s.pid)) == 4  # main + 3 loops
    conns = [Conn(s.port) for _ in range(30)]
    for c in conns:
        c.get("/k16p1.bin")
    for c in conns:
        assert c.response()[0] == 200
        c.close()
    s.assert_fds_settle()
    assert s.stop() == 0


def test_force_sendfile_serves_the_same_bytes(start_server, docroot):
    s = start_server("--force-sendfile")
    assert "sendfile" in s.output() and "copy path" not in s.output()
    with open(os.path.join(docroot, "m4.bin"), "rb") as f:
        want = f.read()
    assert curl(s.base + "/m4.bin")[2] == want
    assert s.stop() == 0


def test_no_sendfile_serves_the_same_bytes(start_server, docroot):
    s = start_server("--no-sendfile")
    assert "copy path" in s.output()
    with open(os.path.join(docroot, "m4.bin"), "rb") as f:
        want = f.read()
    assert curl(s.base + "/m4.bin")[2] == want
    assert curl(s.base + "/m4.bin", "-r", "5-9,100000-")[0] == 206


@contextlib.contextmanager
def traced(s, tmp_path, calls):
    """strace attached to every thread of server `s`, tracing `calls`;
    yields the log's path (complete once the block has ended)."""
    log = str(tmp_path / "strace.log")
    tracer = subprocess.Popen(["strace", "-f", "-e", "trace=" + calls, "-o", log, "-p", str(s.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def attached():
            tasks = glob.glob("/proc/%d/task/*/status" % s.pid)
            return tasks and all("TracerPid:\t%d\n" % tracer.pid in open(t).read() for t in tasks)
        wait_until(attached, "strace to attach to every thread of the server")
        yield log
    finally:
        tracer.terminate()
        tracer.wait(timeout=DEADLINE)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_peer_is_asked_once_per_connection(start_server, tmp_path):
    """The body's method depends on the client (sf_peer_flags): asked at a
    connection's first large body, then passed to every later one, so no
    response asks again.  Counted with strace attached to the server."""
    s = start_server()
    with traced(s, tmp_path, "getpeername") as log:
        for _ in range(2):
            c = Conn(s.port)
            c.get("/hello.txt")
            assert c.response()[0] == 200  # small: the method is not asked
            for _ in range(4):
                c.get("/k32p1.bin")  # one over the small path
                status, _, body = c.response()
                assert status == 200 and len(body) == 32769
            c.close()
    with open(log) as f:
        asked = f.read().count("getpeername(")
    assert asked == 2, "getpeername %d times for 2 connections with 4 large bodies each" % asked


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("path,extra", [("/hello.txt", ""), ("/m4.bin", ""),
                                        ("/m4.bin", "Range: bytes=0-9,100000-199999,4000000-\r\n")])
def test_a_closing_response_ends_with_its_last_byte(start_server, tmp_path, path, extra):
    """A response that ends the connection is sent with SF_SHUT_WR: the
    library shuts the socket right after the last byte (of the last part of
    a multipart response), before the server's own done callback; the server
    then only lingers, never shuts again.  A keep-alive response is not shut."""
    s = start_server()
    with traced(s, tmp_path, "sendmsg,sendfile,shutdown,close") as log:
        c = Conn(s.port)
        c.get(path, extra)
        assert c.response()[0] in (200, 206)  # keep-alive: no shutdown
        c.get(path, "Connection: close\r\n" + extra)
        status, h, _ = c.response()
        assert status in (200, 206) and h["connection"] == ["close"]
        with pytest.raises(EOFError):
            c.response()
        c.close()
        wait_until(lambda: "close(" in open(log).read().split("shutdown(")[-1], "the connection's close")
    with open(log) as f:
        calls = [line.split()[1].split("(")[0] for line in f if "(" in line and "resumed>" not in line]
    assert calls.count("shutdown") == 1, calls
    at = calls.index("shutdown")
    # Right after the last byte: the call before is the body's last write,
    # and the response's file is closed only after it (by the done callback).
    assert calls[at - 1] in ("sendmsg", "sendfile"), calls[at - 3:at + 3]
    assert "close" in calls[at + 1:], calls[at:]


def test_access_log(start_server):
    s = start_server("--access-log")
    curl(s.base + "/hello.txt")
    curl(s.base + "/nope")
    wait_until(lambda: '"GET /nope HTTP/1.1" 404' in s.output(), "the log line")
    assert '"GET /hello.txt HTTP/1.1" 200 13' in s.output()


def test_ipv6_listen(docroot, tmp_path):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    log = open(tmp_path / "v6.log", "w+")
    p = subprocess.Popen([BINARY, "--listen", "[::1]:0", docroot], stdout=log, stderr=subprocess.STDOUT)
    try:
        port = wait_until(lambda: (lambda m: m and int(m.group(1)))(
            __import__("re").search(r"http://\[::1\]:(\d+)/", open(tmp_path / "v6.log").read())), "URL")
        assert curl("http://[::1]:%d/hello.txt" % port)[2] == b"hello, world\n"
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=DEADLINE) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_finishes_sends_and_closes_idle(start_server, docroot, sig):
    s = start_server()
    with open(os.path.join(docroot, "m4.bin"), "rb") as f:
        want = f.read()
    idle = Conn(s.port)
    idle.get("/hello.txt")
    assert idle.response()[0] == 200
    busy = Conn(s.port, rcvbuf=16 * 1024)
    busy.get("/m4.bin")
    busy._fill(4096)  # the send is in flight
    s.proc.send_signal(sig)
    assert idle.read_to_eof() == b""  # idle keep-alive: closed at once
    head, _, body = busy.read_to_eof().partition(b"\r\n\r\n")
    assert b"Connection" not in head or b"close" in head
    assert body == want  # the in-flight response completed
    assert s.proc.wait(timeout=DEADLINE) == 0
    with pytest.raises(ConnectionRefusedError):
        Conn(s.port)


def test_stop_timeout_cuts_a_stalled_send(start_server, docroot):
    p = os.path.join(docroot, "stall-stop.bin")
    with open(p, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    try:
        s = start_server("--stop-timeout", "200")
        c = Conn(s.port, rcvbuf=16 * 1024)
        c.get("/stall-stop.bin")
        c._fill(4096)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=DEADLINE) == 0  # we never read: the deadline cut it
        assert len(c.read_to_eof()) < 64 * 1024 * 1024
        c.close()
    finally:
        os.unlink(p)
