"""Range requests: single (206), multiple (multipart/byteranges), 416."""
import os
import re
import time

import pytest

from httpclient import curl


@pytest.fixture(scope="module")
def m4(docroot):
    with open(os.path.join(docroot, "m4.bin"), "rb") as f:
        return f.read()


def parse_multipart(ctype, body):
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", ctype)
    assert m, ctype
    delim = b"--" + m.group(1).encode()
    assert body.endswith(b"\r\n" + delim + b"--\r\n")
    parts = []
    chunks = body[: -len(b"\r\n" + delim + b"--\r\n")].split(b"\r\n" + delim + b"\r\n")
    assert chunks[0].startswith(delim + b"\r\n")
    chunks[0] = chunks[0][len(delim) + 2:]
    for c in chunks:
        head, _, data = c.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        a, b, size = map(int, re.fullmatch(rb"bytes (\d+)-(\d+)/(\d+)", fields[b"Content-Range"]).groups())
        parts.append((a, b, size, fields[b"Content-Type"], data))
    return parts


@pytest.mark.parametrize("spec,first,last", [
    ("0-0", 0, 0), ("100-199", 100, 199), ("4194000-", 4194000, 4194303),
    ("-500", 4193804, 4194303), ("4194300-9999999", 4194300, 4194303),
    ("0-", 0, 4194303), ("-99999999", 0, 4194303), ("1000000-3999999", 1000000, 3999999),
])
def test_single_range(server, m4, spec, first, last):
    status, h, body = curl(server.base + "/m4.bin", "-H", "Range: bytes=" + spec)
    assert status == 206
    assert h["content-range"] == ["bytes %d-%d/%d" % (first, last, len(m4))]
    assert h["content-length"] == [str(last - first + 1)]
    assert body == m4[first:last + 1]


def test_multiple_ranges_are_multipart(server, m4):
    status, h, body = curl(server.base + "/m4.bin", "-H", "Range: bytes=0-9, 100-199,-20, 2000000-2099999")
    assert status == 206
    assert h["content-length"] == [str(len(body))]
    parts = parse_multipart(h["content-type"][0], body)
    want = [(0, 9), (100, 199), (2000000, 2099999), (len(m4) - 20, len(m4) - 1)]  # sorted
    assert [(a, b) for a, b, *_ in parts] == want
    for a, b, size, ctype, data in parts:
        assert size == len(m4) and ctype == b"application/octet-stream"
        assert data == m4[a:b + 1]


def test_head_with_multiple_ranges_has_length_and_no_body(server):
    _, get_h, get_body = curl(server.base + "/k1.bin", "-H", "Range: bytes=0-1,5-6")
    status, h, body = curl(server.base + "/k1.bin", "-I", "-H", "Range: bytes=0-1,5-6")
    assert status == 206 and body == b""
    assert h["content-length"] == [str(len(get_body))]


def test_overlapping_and_adjacent_ranges_merge(server, m4):
    status, h, body = curl(server.base + "/m4.bin", "-H", "Range: bytes=0-50,40-60,61-70")
    assert status == 206
    assert h["content-range"] == ["bytes 0-70/%d" % len(m4)]
    assert body == m4[:71]


def test_too_many_ranges_send_the_whole_file(server, m4):
    spec = ",".join("%d-%d" % (i * 10, i * 10) for i in range(17))
    status, h, body = curl(server.base + "/m4.bin", "-H", "Range: bytes=" + spec)
    assert status == 200 and body == m4


def test_sixteen_ranges_are_served(server, m4):
    spec = ",".join("%d-%d" % (i * 10, i * 10 + 1) for i in range(16))
    status, h, body = curl(server.base + "/m4.bin", "-H", "Range: bytes=" + spec)
    assert status == 206
    assert len(parse_multipart(h["content-type"][0], body)) == 16


@pytest.mark.parametrize("spec", ["4194304-", "5000000-6000000", "-0", "4194304-4194304,9999999-"])
def test_unsatisfiable_is_416(server, m4, spec):
    status, h, _ = curl(server.base + "/m4.bin", "-H", "Range: bytes=" + spec)
    assert status == 416
    assert h["content-range"] == ["bytes */%d" % len(m4)]


@pytest.mark.parametrize("value", ["bytes=abc", "bytes=5-1", "items=0-1", "bytes=--1", "bytes 0-1"])
def test_malformed_range_is_ignored(server, m4, value):
    status, h, body = curl(server.base + "/m4.bin", "-H", "Range: " + value)
    assert status == 200 and body == m4


def test_range_on_empty_file_is_plain_200(server):
    status, h, body = curl(server.base + "/empty.bin", "-H", "Range: bytes=0-10")
    assert status == 200 and body == b""


def test_if_range(server, m4):
    _, h, _ = curl(server.base + "/m4.bin", "-I")
    etag, lm = h["etag"][0], h["last-modified"][0]
    assert curl(server.base + "/m4.bin", "-H", "Range: bytes=0-9", "-H", "If-Range: " + etag)[0] == 206
    assert curl(server.base + "/m4.bin", "-H", "Range: bytes=0-9", "-H", "If-Range: " + lm)[0] == 206
    status, _, body = curl(server.base + "/m4.bin", "-H", "Range: bytes=0-9", "-H", 'If-Range: "other"')
    assert status == 200 and body == m4
    assert curl(server.base + "/m4.bin", "-H", "Range: bytes=0-9",
                "-H", "If-Range: Thu, 01 Jan 1970 00:00:00 GMT")[0] == 200


@pytest.mark.parametrize("day", range(7))
def test_if_range_date_on_every_weekday(server, docroot, day):
    """A date is a date whatever its day name: "Wed, ..." once read as a weak
    entity tag (W/"...") and the range was dropped on Wednesdays."""
    name = "weekday%d.bin" % day
    path = os.path.join(docroot, name)
    with open(path, "wb") as f:
        f.write(b"0123456789" * 10)
    mtime = 1796169600 + 86400 * day  # 2026-12-02 (a Wednesday) + day days, 00:00 UTC
    os.utime(path, (mtime, mtime))
    _, h, _ = curl(server.base + "/" + name, "-I")
    lm = h["last-modified"][0]
    assert lm == time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(mtime))
    status, _, body = curl(server.base + "/" + name, "-H", "Range: bytes=0-9", "-H", "If-Range: " + lm)
    assert status == 206 and body == b"0123456789"
