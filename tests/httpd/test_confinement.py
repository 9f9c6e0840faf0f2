"""The root is a wall: traversal, encodings, NUL, symlinks, dotfiles.
Run twice: with openat2(RESOLVE_BENEATH) and with the openat + /proc check."""
import pytest

from conftest import Server
from httpclient import Conn, curl


@pytest.fixture(scope="module", params=["openat2", "fallback"])
def srv(request, docroot, tmp_path_factory):
    env = {"EVSENDFILE_HTTPD_NO_OPENAT2": "1"} if request.param == "fallback" else {}
    s = Server(docroot, env=env, tmpdir=str(tmp_path_factory.mktemp("conf")))
    want = "openat2" if request.param == "openat2" else "openat+check"
    if want not in s.output():
        s.stop()
        pytest.skip("kernel has no openat2")
    yield s
    s.assert_fds_settle()
    assert s.stop() == 0


@pytest.mark.parametrize("path", [
    "/../outside/secret.txt", "/sub/../../outside/secret.txt", "/%2e%2e/outside/secret.txt",
    "/%2E%2E%2Foutside%2Fsecret.txt", "/sub/%2e%2e/%2e%2e/outside/secret.txt", "/..%2foutside/secret.txt",
    "/hello.txt%00.html", "/%", "/%zz", "/%2", "/sub/..",
])
def test_traversal_and_bad_encodings_are_400(srv, path):
    status, _, body = curl(srv.base + path)
    assert status == 400
    assert b"SECRET" not in body


def test_symlink_out_of_the_root_is_refused(srv):
    for path in ("/escape.txt", "/escape-dir/secret.txt", "/abs-escape.txt"):
        status, _, body = curl(srv.base + path)
        assert status == 403, path
        assert b"SECRET" not in body


def test_symlink_inside_the_root_is_served(srv):
    assert curl(srv.base + "/inside-link.txt")[2] == b"hello, world\n"
    assert curl(srv.base + "/sub-link/page.css")[2] == b"body{}\n"


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/%2eenv", "/sub/../.env"])
def test_dotfiles_are_hidden(srv, path):
    status, _, body = curl(srv.base + path)
    assert status in (400, 404) if ".." in path else status == 404
    assert b"SECRET" not in body


def test_raw_nul_and_control_bytes_in_the_target_are_400(srv):
    for target in (b"/hello.txt\x00", b"/hel\x01lo.txt", b"hello.txt", b"x://x/hello.txt"):
        c = Conn(srv.port)
        c.send(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response()[0] == 400, target
        c.close()


def test_dotfiles_served_when_asked(start_server, docroot):
    s = start_server("--dotfiles")
    assert curl(s.base + "/.env")[2] == b"SECRET=1\n"
    assert curl(s.base + "/escape.txt")[0] == 403  # still confined
