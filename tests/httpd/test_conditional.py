"""If-None-Match / If-Modified-Since: 304 without a body."""
import os

from httpclient import curl


def test_if_none_match_gives_304(server):
    _, h, _ = curl(server.base + "/hello.txt")
    status, h2, body = curl(server.base + "/hello.txt", "-H", "If-None-Match: " + h["etag"][0])
    assert status == 304 and body == b""
    assert h2["etag"] == h["etag"]
    assert "content-length" not in h2


def test_if_none_match_list_weak_and_star(server):
    etag = curl(server.base + "/hello.txt")[1]["etag"][0]
    assert curl(server.base + "/hello.txt", "-H", 'If-None-Match: "a", W/%s' % etag)[0] == 304
    assert curl(server.base + "/hello.txt", "-H", "If-None-Match: *")[0] == 304
    assert curl(server.base + "/hello.txt", "-H", 'If-None-Match: "nope"')[0] == 200


def test_if_modified_since(server):
    lm = curl(server.base + "/hello.txt")[1]["last-modified"][0]
    assert curl(server.base + "/hello.txt", "-H", "If-Modified-Since: " + lm)[0] == 304
    assert curl(server.base + "/hello.txt", "-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT")[0] == 200
    assert curl(server.base + "/hello.txt", "-H", "If-Modified-Since: garbage")[0] == 200


def test_if_none_match_wins_over_if_modified_since(server):
    lm = curl(server.base + "/hello.txt")[1]["last-modified"][0]
    status, _, body = curl(server.base + "/hello.txt", "-H", 'If-None-Match: "other"',
                           "-H", "If-Modified-Since: " + lm)
    assert status == 200 and body == b"hello, world\n"


def test_etag_changes_when_the_file_changes(server, docroot):
    p = os.path.join(docroot, "changing.txt")
    with open(p, "wb") as f:
        f.write(b"one")
    etag = curl(server.base + "/changing.txt")[1]["etag"][0]
    with open(p, "wb") as f:
        f.write(b"three")
    status, h, body = curl(server.base + "/changing.txt", "-H", "If-None-Match: " + etag)
    assert status == 200 and body == b"three" and h["etag"][0] != etag
