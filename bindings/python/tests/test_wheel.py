"""The installable package: `pip install --no-build-isolation --no-index
bindings/python` builds a wheel that bundles libevsendfile.so.2 under a
platform tag; installed into a fresh venv, it serves a file with the bundled
library, and $EVSENDFILE_LIBRARY still overrides it.

Builds the C library with CMake (or takes $EVSENDFILE_BUILD_DIR's), so it
runs only when EVSENDFILE_TEST_WHEEL=1 (.ci/run sets it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.loopless,
    pytest.mark.skipif(os.environ.get("EVSENDFILE_TEST_WHEEL") != "1", reason="set EVSENDFILE_TEST_WHEEL=1"),
]

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVE = r"""
import asyncio, os, sys
import evsendfile
from evsendfile import _ffi

async def main(path):
    size = os.path.getsize(path)
    async def handle(r, w):
        await r.readuntil(b"\n")
        await evsendfile.send_file(w, path, 0, size, head=b"HEAD\n", tail=b"\nTAIL")
        w.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET\n")
    got = await r.read()
    w.close()
    server.close()
    await server.wait_closed()
    with open(path, "rb") as f:
        assert got == b"HEAD\n" + f.read() + b"\nTAIL", "bytes differ"
    print(evsendfile.__file__)
    print(_ffi.loaded_from)

asyncio.run(main(sys.argv[1]))
"""


def test_wheel_bundles_the_library_and_serves(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("EVSENDFILE_LIBRARY", None)
    subprocess.run(
        [py, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-cache-dir", PACKAGE],
        check=True, env=env, cwd=tmp_path,
    )
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, "evsendfile-2.1.0.dist-info", "WHEEL")) as f:
        tags = [line.split(": ", 1)[1].strip() for line in f if line.startswith("Tag: ")]
    assert tags and not any(t.endswith("-none-any") for t in tags), tags
    bundled = os.path.join(site, "evsendfile", "libevsendfile.so.2")
    assert os.path.isfile(bundled)

    data = tmp_path / "f.bin"
    data.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    run = subprocess.run([py, str(script), str(data)], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    module, loaded = run.stdout.splitlines()
    assert module == os.path.join(site, "evsendfile", "__init__.py")
    assert loaded == f"{bundled} (next to the package)"

    override = os.environ.get("EVSENDFILE_LIBRARY")
    if override:
        env["EVSENDFILE_LIBRARY"] = override
        run = subprocess.run([py, str(script), str(data)], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[1] == f"{override} ($EVSENDFILE_LIBRARY)"
