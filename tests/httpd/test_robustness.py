"""What goes wrong in real life: files truncated mid-response, slow and
stalled readers, clients that vanish.  The server must close cleanly,
never desynchronise a keep-alive stream, never leak an fd, never die."""
import os
import subprocess

import pytest

from conftest import wait_until
from httpclient import Conn

BIG = 64 * 1024 * 1024


@pytest.fixture
def sparse(docroot):
    """A big all-zero file (sparse: costs no disk), removed after the test."""
    made = []

    def make(name, size=BIG):
        p = os.path.join(docroot, name)
        with open(p, "wb") as f:
            f.truncate(size)
        made.append(p)
        return p
    yield make
    for p in made:
        os.unlink(p)


@pytest.mark.parametrize("mode", ["sendfile", "copy"])
def test_truncated_file_closes_the_connection(server, start_server, sparse, mode):
    s = start_server("--force-sendfile" if mode == "sendfile" else "--no-sendfile")
    path = sparse("trunc-%s.bin" % mode)
    c = Conn(s.port, rcvbuf=64 * 1024)
    # A second request is pipelined behind: it must never be answered inside
    # (or after) the short body.
    c.send(b"GET /trunc-%s.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
           % mode.encode())
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    head, _, c.buf = c.buf.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % BIG in head
    c.read_exact(1024 * 1024)  # the transfer is under way
    os.truncate(path, 2 * 1024 * 1024)
    rest = c.read_to_eof()
    got = 1024 * 1024 + len(rest)
    assert got < BIG, "the whole declared body arrived although the file shrank"
    assert rest.count(0) == len(rest), "bytes other than the file's zeros: a desynchronised stream"
    c.close()
    s.assert_fds_settle()


def test_slow_reader_does_not_hold_up_others(server, docroot):
    with open(os.path.join(docroot, "m4.bin"), "rb") as f:
        want = f.read()
    slow = Conn(server.port, rcvbuf=16 * 1024)
    slow.get("/m4.bin")
    while b"\r\n\r\n" not in slow.buf:
        slow._fill(4096)
    for _ in range(20):  # meanwhile, on the same event loop
        c = Conn(server.port)
        c.get("/k16p1.bin")
        assert c.response()[0] == 200
        c.close()
    body = b""
    head, _, body = slow.buf.partition(b"\r\n\r\n")
    while len(body) < len(want):
        data = slow.s.recv(4096)
        assert data, "closed early"
        body += data
    assert body == want
    slow.close()
    server.assert_fds_settle()


def test_stalled_reader_is_cut_by_the_send_timeout(start_server, sparse):
    sparse("stall.bin")
    s = start_server("--send-timeout", "300")
    c = Conn(s.port, rcvbuf=16 * 1024)
    c.get("/stall.bin")
    # The response has started (the server holds the connection: waiting for
    # the fd count to settle before that would pass at once, and the reading
    # below would then count as progress and be served to the end).
    while b"\r\n\r\n" not in c.buf:
        c._fill(4096)
    # From here we read nothing: once the buffers are full, no byte leaves
    # the server's send queue, and the send idle timeout must close it.
    s.assert_fds_settle()
    data = c.read_to_eof()
    assert len(data) < BIG
    c.close()


def vanish_in_every_way(server):
    for i in range(30):
        try:
            vanish(server, i)
        except (ConnectionError, EOFError) as err:
            try:  # a refused or reset connection: did the server just die?
                server.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise err
            raise AssertionError("server killed by signal %d" % -server.proc.returncode)


def vanish(server, i):
    """Client i asks for something and disappears in one of five ways."""
    c = Conn(server.port, rcvbuf=32 * 1024)
    kind = i % 5
    if kind == 0:
        c.send(b"GET /gone.bin HTTP/1.1\r\nHost")            # half a request
    elif kind == 1:
        c.get("/gone.bin")                                   # before any reply is read
    elif kind == 2:
        c.get("/gone.bin")
        c._fill(4096)                                        # mid-body
    elif kind == 3:
        c.get("/m4.bin", "Range: bytes=0-9,1000-2000000,3000000-\r\n")
        c._fill(4096)                                        # mid-multipart
    else:
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n" * 50)  # pipelined, then gone
    if i % 2:
        c.abort()   # RST
    else:
        c.close()   # FIN


def test_abrupt_disconnects_cost_nothing(server, sparse):
    sparse("gone.bin")
    vanish_in_every_way(server)
    assert server.alive()
    c = Conn(server.port)
    c.get("/hello.txt")
    assert c.response()[2] == b"hello, world\n"
    c.close()
    server.assert_fds_settle()


def test_many_concurrent_clients(server, docroot):
    with open(os.path.join(docroot, "k16p1.bin"), "rb") as f:
        want = f.read()
    conns = [Conn(server.port) for _ in range(100)]
    for c in conns:
        c.get("/k16p1.bin")
        c.get("/hello.txt")
    for c in conns:
        assert c.response()[2] == want
        assert c.response()[2] == b"hello, world\n"
        c.close()
    server.assert_fds_settle()


def test_file_replaced_between_requests(server, docroot):
    p = os.path.join(docroot, "replaced.txt")
    with open(p, "wb") as f:
        f.write(b"a" * 100)
    c = Conn(server.port)
    c.get("/replaced.txt")
    assert c.response()[2] == b"a" * 100
    with open(p + ".tmp", "wb") as f:
        f.write(b"b" * 50)
    os.rename(p + ".tmp", p)
    c.get("/replaced.txt")
    assert c.response()[2] == b"b" * 50
    c.close()
    os.unlink(p)
    wait_until(lambda: server.alive(), "server alive")


def test_vanishing_clients_raise_no_sigpipe(start_server, sparse):
    """The server ignores SIGPIPE; here it keeps the default action, so a
    SIGPIPE escaping from the library (its header promises none) kills it."""
    sparse("gone.bin")
    s = start_server(env={"EVSENDFILE_HTTPD_DEFAULT_SIGPIPE": "1"})
    vanish_in_every_way(s)
    wait_until(lambda: not s.alive() or s.fds() == s.baseline, "the fds to settle")
    assert s.alive(), "killed by signal %d" % -s.proc.returncode
