"""Plain GET/HEAD over curl: bytes, headers, index files, errors."""
import os

import pytest

from httpclient import Conn, curl


@pytest.mark.parametrize("name", ["hello.txt", "empty.bin", "k1.bin", "k16.bin", "k16p1.bin", "k32.bin", "k32p1.bin",
                                  "m4.bin", "sub/page.css"])
def test_get_returns_the_exact_bytes(server, docroot, name):
    status, h, body = curl(server.base + "/" + name)
    with open(os.path.join(docroot, name), "rb") as f:
        want = f.read()
    assert status == 200
    assert body == want
    assert h["content-length"] == [str(len(want))]
    assert h["accept-ranges"] == ["bytes"]
    assert "etag" in h and "last-modified" in h and "date" in h


@pytest.mark.parametrize("name,ctype", [
    ("hello.txt", "text/plain; charset=utf-8"),
    ("index.html", "text/html; charset=utf-8"),
    ("sub/page.css", "text/css; charset=utf-8"),
    ("k1.bin", "application/octet-stream"),
])
def test_content_type_from_extension(server, name, ctype):
    assert curl(server.base + "/" + name)[1]["content-type"] == [ctype]


# Every extension the server knows (examples/httpd/mime.c), in any case; and
# what it does not know.
KNOWN_TYPES = {
    "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8", "json": "application/json",
    "txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8",
    "xml": "application/xml", "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg",
    "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "avif": "image/avif", "ico": "image/x-icon",
    "pdf": "application/pdf", "wasm": "application/wasm", "zip": "application/zip", "gz": "application/gzip",
    "tar": "application/x-tar", "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg",
    "ogg": "audio/ogg", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf",
}


def test_every_known_extension_any_case(server, docroot):
    os.makedirs(os.path.join(docroot, "types"), exist_ok=True)
    cases = {}
    for ext, ctype in KNOWN_TYPES.items():
        for name in ("t." + ext, "U." + ext.upper(), "m.x." + ext[0].upper() + ext[1:]):
            cases[name] = ctype
    for name in ("noext", "t.bin", "t.", "t.toolongextension", "t.htmlx", "t.ht", ".hidden-dir/../t.woff3"):
        cases[os.path.basename(name)] = "application/octet-stream"
    for name in cases:
        with open(os.path.join(docroot, "types", name), "wb") as f:
            f.write(b"x")
    c = Conn(server.port)
    for name, ctype in cases.items():
        c.get("/types/" + name)
        status, h, _ = c.response()
        assert (name, status, h["content-type"]) == (name, 200, [ctype])
    c.close()


def test_head_has_get_headers_and_no_body(server):
    s1, get_h, _ = curl(server.base + "/m4.bin")
    s2, head_h, body = curl(server.base + "/m4.bin", "-I")
    assert (s1, s2) == (200, 200)
    assert body == b""
    for k in ("content-length", "etag", "last-modified", "content-type"):
        assert head_h[k] == get_h[k]


def test_head_then_get_on_one_connection(server):
    """No body after a HEAD: the next response starts right after the head."""
    c = Conn(server.port)
    c.get("/k16p1.bin", method="HEAD")
    c.get("/hello.txt")
    status, h, _ = c.response(head_only=True)
    assert status == 200 and h["content-length"] == ["16385"]
    assert c.response()[2] == b"hello, world\n"
    c.close()


def test_directory_serves_index_html(server):
    assert curl(server.base + "/")[2] == b"<h1>root index</h1>\n"
    assert curl(server.base + "/sub/")[2] == b"<h1>sub index</h1>\n"


def test_directory_without_slash_redirects(server):
    status, h, _ = curl(server.base + "/sub?x=1")
    assert status == 301
    assert h["location"] == ["/sub/?x=1"]


def test_directory_without_index_is_404_not_a_listing(server):
    status, _, body = curl(server.base + "/noindex/")
    assert status == 404
    assert b"file.bin" not in body


def test_percent_encoded_names_and_query_strings(server):
    assert curl(server.base + "/name%20with%20space.txt")[2] == b"spaced\n"
    assert curl(server.base + "/hello.txt?v=1#frag")[2] == b"hello, world\n"
    assert curl(server.base + "//sub/./page.css")[2] == b"body{}\n"


def test_missing_file_is_404(server):
    status, h, body = curl(server.base + "/nope.txt")
    assert status == 404
    assert body == b"404 Not Found\n"
    assert h["content-length"] == [str(len(body))]


def test_head_of_missing_file_is_404_without_body(server):
    status, h, body = curl(server.base + "/nope.txt", "-I")
    assert status == 404 and body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "get"])
def test_other_methods_are_405(server, method):
    status, h, _ = curl(server.base + "/hello.txt", "-X", method)
    assert status == 405
    assert h["allow"] == ["GET, HEAD"]


def test_fifo_is_refused_without_blocking(server):
    assert curl(server.base + "/fifo")[0] == 403
    assert curl(server.base + "/hello.txt")[0] == 200  # the loop is not stuck on the FIFO
