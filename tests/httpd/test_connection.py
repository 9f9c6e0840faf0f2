"""Raw-socket conversations: pipelining, keep-alive, HTTP/1.0, the request
limits (400/413/414/431/505) and the timeouts."""
import os
import socket

import pytest

from conftest import wait_until
from httpclient import Conn


def body_of(docroot, name):
    with open(os.path.join(docroot, name), "rb") as f:
        return f.read()


def test_pipelined_requests_come_back_in_order(server, docroot):
    reqs = [("GET", "/hello.txt", ""), ("HEAD", "/m4.bin", ""), ("GET", "/nope", ""),
            ("GET", "/k16p1.bin", ""), ("GET", "/m4.bin", "Range: bytes=5-9\r\n"),
            ("GET", "/k1.bin", "Range: bytes=0-1,10-11\r\n"), ("GET", "/m4.bin", ""),
            ("POST", "/hello.txt", ""), ("GET", "/k16.bin", ""), ("GET", "/empty.bin", "")] * 3
    c = Conn(server.port)
    c.send(b"".join(("%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % r).encode() for r in reqs))
    m4 = body_of(docroot, "m4.bin")
    for method, path, extra in reqs:
        status, h, body = c.response(head_only=method == "HEAD")
        if path == "/nope":
            assert status == 404
        elif method == "POST":
            assert status == 405
        elif extra.startswith("Range: bytes=5"):
            assert status == 206 and body == m4[5:10]
        elif extra:
            assert status == 206 and h["content-type"][0].startswith("multipart/byteranges")
        elif method == "HEAD":
            assert status == 200 and int(h["content-length"][0]) == len(m4)
        else:
            assert status == 200 and body == body_of(docroot, path[1:])
    c.get("/hello.txt")  # still usable afterwards
    assert c.response()[2] == b"hello, world\n"
    c.close()
    server.assert_fds_settle()


def test_pipelined_requests_split_at_every_byte(server):
    """The parser copes with heads arriving in arbitrary pieces."""
    data = b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /k1.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\n\r\n"
    c = Conn(server.port)
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        c.send(data[i:i + 1])
    assert c.response()[2] == b"hello, world\n"
    assert c.response()[2] == bytes(range(4))
    c.close()


def test_connection_close_is_honoured(server):
    c = Conn(server.port)
    c.get("/hello.txt", "Connection: close\r\n")
    status, h, body = c.response()
    assert h["connection"] == ["close"] and body == b"hello, world\n"
    assert c.read_to_eof() == b""
    c.close()


def test_http10_closes_unless_keep_alive(server):
    c = Conn(server.port)
    c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    assert c.response()[1]["connection"] == ["close"]
    assert c.read_to_eof() == b""
    c.close()
    c = Conn(server.port)
    c.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
    for _ in range(2):
        status, h, body = c.response()
        assert h["connection"] == ["keep-alive"] and body == b"hello, world\n"
    c.close()


@pytest.mark.parametrize("raw,status", [
    (b"GET /hello.txt HTTP/1.1\r\n\r\n", 400),                        # no Host
    (b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  # two Hosts
    (b"GET /hello.txt\r\n\r\n", 400),                                 # HTTP/0.9
    (b"GET  /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", 400),
    (b"GET /hello.txt HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 413),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n" + b"X-Fill: " + b"y" * 9000 + b"\r\n\r\n", 431),
    (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 150 + b"\r\n", 431),
])
def test_bad_requests_get_an_answer_then_close(server, raw, status):
    c = Conn(server.port)
    c.send(raw + b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
    got, h, body = c.response()
    assert got == status
    assert h["connection"] == ["close"]
    assert b"hello, world" not in c.read_to_eof()  # nothing after the error is served
    c.close()
    server.assert_fds_settle()


def test_content_length_zero_is_fine(server):
    c = Conn(server.port)
    c.get("/hello.txt", "Content-Length: 0\r\n")
    assert c.response()[0] == 200
    c.close()


def test_header_timeout_closes_a_slowloris(start_server):
    s = start_server("--header-timeout", "200")
    c = Conn(s.port)
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n")  # never finished
    assert c.read_to_eof() == b""
    c.close()
    c = Conn(s.port)  # and a connection that never sends a byte
    assert c.read_to_eof() == b""
    c.close()
    s.assert_fds_settle()


def test_keepalive_timeout_closes_idle_connections(start_server):
    s = start_server("--keepalive-timeout", "200")
    c = Conn(s.port)
    c.get("/hello.txt")
    assert c.response()[0] == 200
    assert c.read_to_eof() == b""
    c.close()
    s.assert_fds_settle()


def test_max_conns_closes_the_extra_connection(start_server):
    s = start_server("--max-conns", "2")
    a, b = Conn(s.port), Conn(s.port)
    for c in (a, b):  # both are really held by the server
        c.get("/hello.txt")
        assert c.response()[0] == 200
    extra = Conn(s.port)
    extra.get("/hello.txt")
    assert extra.read_to_eof() == b""
    extra.close()
    a.close()

    def served():
        c = Conn(s.port)
        try:
            c.get("/hello.txt")
            return c.response()[0] == 200
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return False
        finally:
            c.close()
    wait_until(served, "a free connection slot after one closed")
    b.close()
    s.assert_fds_settle()


def test_half_close_still_gets_every_answer(server, docroot):
    """printf 'GET ...' | nc: the client shuts its side after the requests."""
    with open(os.path.join(docroot, "m4.bin"), "rb") as f:
        m4 = f.read()
    c = Conn(server.port)
    c.send(b"GET /m4.bin HTTP/1.1\r\nHost: t\r\n\r\n" + b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n" * 2)
    c.s.shutdown(socket.SHUT_WR)
    assert c.response()[2] == m4
    assert c.response()[2] == b"hello, world\n"
    assert c.response()[2] == b"hello, world\n"
    assert c.read_to_eof() == b""
    c.close()
    server.assert_fds_settle()
