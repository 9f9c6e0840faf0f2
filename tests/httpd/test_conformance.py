"""Requests from a hostile-use review: the directory redirect must never send
a client to another host, and the RFC 9110/9112 corners nginx gets right
(absolute-form targets, repeated Connection lines, the three HTTP date
forms, 405 before 413).  Each request is followed by a pipelined GET: the
stream must stay in step (or close, when that is the documented answer)."""
import os
import shutil

import pytest

from httpclient import Conn, curl

HELLO = b"hello, world\n"


@pytest.fixture(scope="module")
def dirs(docroot):
    """Directories a redirect can point at, one named with a backslash
    (browsers read "/\\x" in a Location as "//x": another host)."""
    made = [os.path.join(docroot, d) for d in ("sub/deeper", "\\evil.example", "a b")]
    for d in made:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "wb") as f:
            f.write(b"<h1>%s</h1>\n" % os.path.basename(d).encode())
    yield
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def exchange(server, head, then_get=True):
    """Sends one request head (plus a pipelined GET /hello.txt); returns the
    first response and whether the pipelined one came back."""
    c = Conn(server.port)
    c.send(head + (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n" if then_get else b""))
    st, h, body = c.response(head_only=head.startswith(b"HEAD "))
    if h.get("connection") == ["close"]:
        second = c.read_to_eof()
        assert second == b"", second[:80]  # nothing is served after a close
        served_next = False
    else:
        assert c.response()[2] == HELLO  # still in step
        served_next = True
    c.close()
    return st, h, body, served_next


def get(server, target, extra=b"", method=b"GET"):
    return exchange(server, method + b" " + target + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")


# ------------------------------------------------------------ open redirect

@pytest.mark.parametrize("target,location", [
    (b"//sub", "/sub/"),
    (b"///sub", "/sub/"),
    (b"//////sub?x=1", "/sub/?x=1"),
    (b"//sub/deeper", "/sub/deeper/"),
    (b"/sub//deeper", "/sub/deeper/"),
    (b"/%2F%2Fsub", "/sub/"),
    (b"/%2f/sub", "/sub/"),
    (b"/./sub", "/sub/"),
    (b"/sub/.", "/sub/"),
    (b"/.", "/"),
    (b"/%5Cevil.example", "/%5Cevil.example/"),   # a backslash never goes out raw
    (b"/\\evil.example", "/%5Cevil.example/"),
    (b"/a%20b", "/a%20b/"),
    (b"http://t//sub", "/sub/"),                  # absolute-form with the same trick
])
def test_directory_redirect_stays_on_this_host(server, dirs, target, location):
    st, h, _, _ = get(server, target)
    assert st == 301, (target, st)
    loc = h["location"][0]
    assert loc == location, (target, loc)
    assert not loc.startswith("//") and "\\" not in loc and "://" not in loc
    server.assert_fds_settle()


def test_curl_following_the_redirect_stays_here(server, dirs):
    """curl -L resolves Location like a browser: "//sub/" would be http://sub/."""
    for target in ("//sub", "///sub/deeper", "/%5Cevil.example"):
        st, _, body = curl(server.base + target, "-L", "--max-redirs", "2")
        assert st == 200, target
        assert body.startswith(b"<h1>"), (target, body)


# ------------------------------------------------------------ absolute-form

@pytest.mark.parametrize("target,status,body", [
    (b"http://t/hello.txt", 200, HELLO),
    (b"HTTP://T/hello.txt", 200, HELLO),              # scheme and host are case-insensitive
    (b"http://127.0.0.1:8080/hello.txt?v=1", 200, HELLO),
    (b"https://t/hello.txt", 200, HELLO),
    (b"http://t", 200, b"<h1>root index</h1>\n"),     # empty path: "/"
    (b"http://t?x=1", 200, b"<h1>root index</h1>\n"),
    (b"http://t/sub/", 200, b"<h1>sub index</h1>\n"),
    (b"http://other.example/hello.txt", 200, HELLO),  # the authority replaces Host
    (b"http://t/nope", 404, None),
    (b"http://t/../outside/secret.txt", 400, None),
    (b"http://t/etc/passwd", 404, None),
])
def test_absolute_form_targets_are_served(server, target, status, body):
    st, h, got, _ = get(server, target)
    assert st == status, (target, st)
    if body is not None:
        assert got == body


@pytest.mark.parametrize("target", [
    b"ftp://t/hello.txt",        # not an http(s) URI
    b"http:/hello.txt",
    b"http:///hello.txt",        # empty authority
    b"http://user@t/hello.txt",  # userinfo: RFC 9110 4.2.4, an error
    b"http:",
    b"hello.txt",
    b"*",
])
def test_other_targets_are_400(server, target):
    st, h, _, _ = get(server, target)
    assert st == 400 and h["connection"] == ["close"], (target, st)


def test_absolute_form_still_needs_a_host_header_in_http11(server):
    st, _, _, _ = exchange(server, b"GET http://t/hello.txt HTTP/1.1\r\n\r\n")
    assert st == 400
    st, _, body, _ = exchange(server, b"GET http://t/hello.txt HTTP/1.0\r\n\r\n", then_get=False)
    assert st == 200 and body == HELLO


# ------------------------------------------------------------ Connection lists

@pytest.mark.parametrize("lines", [
    b"Connection: close\r\nConnection: keep-alive\r\n",
    b"Connection: close\r\nConnection: x-other\r\n",
    b"Connection: x-other\r\nConnection: close\r\n",
    b"Connection: keep-alive, close\r\n",
    b"Connection: x-a,\r\nConnection: , CLOSE ,\r\n",
    b"Connection: te\r\nConnection: close\r\nConnection: upgrade\r\n",
])
def test_close_anywhere_in_repeated_connection_lines_closes(server, lines):
    st, h, body, served_next = get(server, b"/hello.txt", lines)
    assert st == 200 and body == HELLO
    assert h["connection"] == ["close"] and not served_next


def test_http10_keep_alive_then_close_line_closes(server):
    st, h, _, served_next = exchange(
        server, b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")
    assert st == 200 and h["connection"] == ["close"] and not served_next


def test_http10_keep_alive_on_a_second_line_keeps_alive(server):
    st, h, _, served_next = exchange(
        server, b"GET /hello.txt HTTP/1.0\r\nConnection: x-other\r\nConnection: keep-alive\r\n\r\n")
    assert st == 200 and h["connection"] == ["keep-alive"] and served_next


def test_repeated_if_none_match_lines_form_one_list(server):
    etag = curl(server.base + "/hello.txt")[1]["etag"][0].encode()
    for lines in (b'If-None-Match: "a"\r\nIf-None-Match: ' + etag + b"\r\n",
                  b"If-None-Match: " + etag + b'\r\nIf-None-Match: "b"\r\n',
                  b'If-None-Match: "a"\r\nIf-None-Match: "b", *\r\n'):
        st, _, _, served_next = get(server, b"/hello.txt", lines)
        assert st == 304 and served_next, lines
    st, _, body, _ = get(server, b"/hello.txt", b'If-None-Match: "a"\r\nIf-None-Match: "b"\r\n')
    assert st == 200 and body == HELLO


def test_more_than_eight_if_none_match_lines_are_400(server):
    lines = b"".join(b'If-None-Match: "e%d"\r\n' % i for i in range(8))
    assert get(server, b"/hello.txt", lines)[0] == 200
    st, h, _, _ = get(server, b"/hello.txt", lines + b'If-None-Match: "e8"\r\n')
    assert st == 400 and h["connection"] == ["close"]


# ------------------------------------------------------------ HTTP dates

def test_if_modified_since_accepts_all_three_date_forms(server, docroot):
    p = os.path.join(docroot, "dated.txt")
    with open(p, "wb") as f:
        f.write(b"dated\n")
    os.utime(p, (784111777, 784111777))  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
    for when, want in [
        (b"Sun, 06 Nov 1994 08:49:37 GMT", 304),     # IMF-fixdate
        (b"Sunday, 06-Nov-94 08:49:37 GMT", 304),    # RFC 850
        (b"Sun Nov  6 08:49:37 1994", 304),          # asctime
        (b"Sun Nov 16 08:49:37 1994", 304),
        (b"Sun, 06 Nov 1994 08:49:36 GMT", 200),     # one second too early
        (b"Sunday, 06-Nov-94 08:49:36 GMT", 200),    # 1994: 2094 is over 50 years ahead
        (b"Sun Nov  6 08:49:36 1994", 200),
        (b"Monday, 07-Nov-94 00:00:00 GMT", 304),
        (b"Sat, 01 Jan 2000 00:00:00 GMT", 304),
        (b"Saturday, 01-Jan-00 00:00:00 GMT", 304),  # two-digit year: 2000, not 1900
        # invalid: ignored, the file is sent
        (b"garbage", 200),
        (b"Sun, 06 Nov 1994 08:49:37", 200),
        (b"Sun, 06 Nov 1994 08:49:37 GMT junk", 200),
        (b"Sun, 31 Feb 2000 00:00:00 GMT", 200),
        (b"Sun, 06 Foo 2030 08:49:37 GMT", 200),
        (b"Sun, 06 Nov 2030 25:49:37 GMT", 200),
        (b"Sunday, 06-Nov-2030 08:49:37 GMT", 200),
        (b"Sun Nov 6 08:49:37 2030", 200),          # asctime pads the day with a space
        (b"Sun Nov  6 08:49:37 2030 GMT", 200),
        (b"", 200),
    ]:
        st, _, body, _ = get(server, b"/dated.txt", b"If-Modified-Since: " + when + b"\r\n")
        assert st == want, (when, st)
        assert body == (b"" if want == 304 else b"dated\n")
    os.unlink(p)


def test_if_range_accepts_an_rfc850_date(server, docroot):
    p = os.path.join(docroot, "dated2.txt")
    with open(p, "wb") as f:
        f.write(b"0123456789")
    os.utime(p, (784111777, 784111777))
    st, _, body, _ = get(server, b"/dated2.txt", b"Range: bytes=0-1\r\nIf-Range: Sunday, 06-Nov-94 08:49:37 GMT\r\n")
    assert st == 206 and body == b"01"
    st, _, body, _ = get(server, b"/dated2.txt", b"Range: bytes=0-1\r\nIf-Range: Sun Nov  6 08:49:36 1994\r\n")
    assert st == 200 and body == b"0123456789"
    os.unlink(p)


# ------------------------------------------------------------ 405 before 413

@pytest.mark.parametrize("method", [b"PUT", b"POST", b"DELETE", b"PATCH"])
@pytest.mark.parametrize("framing", [b"Content-Length: 5\r\n\r\nhello",
                                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"])
def test_a_body_on_another_method_is_405_then_close(server, method, framing):
    c = Conn(server.port)
    c.send(method + b" /hello.txt HTTP/1.1\r\nHost: t\r\n" + framing +
           b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
    st, h, body = c.response()
    assert st == 405 and h["allow"] == ["GET, HEAD"] and h["connection"] == ["close"]
    assert c.read_to_eof() == b""  # the body is never read as a request
    c.close()
    server.assert_fds_settle()


def test_a_get_with_a_body_is_still_413(server):
    c = Conn(server.port)
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
    st, h, _ = c.response()
    assert st == 413 and h["connection"] == ["close"]
    c.close()


def test_405_without_a_body_keeps_the_connection(server):
    st, h, _, served_next = get(server, b"/hello.txt", method=b"DELETE")
    assert st == 405 and h["allow"] == ["GET, HEAD"] and served_next
