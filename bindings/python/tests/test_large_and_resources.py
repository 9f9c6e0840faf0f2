"""Regions past 4 GiB (sparse file), descriptor hygiene, library loading."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import connect, make_file, open_fds, read_to_eof, run, serve

import evsendfile
from evsendfile import _ffi
from evsendfile._ffi import lib

GIB4 = 4 << 30
WINDOW = 32 << 20  # the region is 64 MiB: 32 MiB each side of the 4 GiB mark


def test_region_crossing_4gib_of_a_sparse_file(tmp_path):
    path = tmp_path / "sparse.bin"
    marker = os.urandom(1 << 20)  # 1 MiB of real bytes straddling 4 GiB
    with open(path, "wb") as f:
        f.truncate(GIB4 + WINDOW)
        f.seek(GIB4 - len(marker) // 2)
        f.write(marker)
    if os.stat(path).st_blocks * 512 > 64 << 20:
        pytest.skip("this filesystem does not keep files sparse")
    expected = bytearray(2 * WINDOW)
    at = WINDOW - len(marker) // 2
    expected[at : at + len(marker)] = marker
    sent = []

    async def handler(r, w):
        sent.append(await evsendfile.send_file(w, path, GIB4 - WINDOW, 2 * WINDOW))
        sent.append(await evsendfile.send_file(w, path, GIB4 + WINDOW - 5))  # to EOF
        await evsendfile.create_sendfile_callable(w)(path, GIB4 - 3, 6)

    async def main():
        async with serve(handler) as port:
            r, w = await connect(port)
            got = await read_to_eof(r)
            w.close()
        return got

    got = run(main(), timeout=120)
    assert sent == [2 * WINDOW, 5]
    assert len(got) == 2 * WINDOW + 5 + 6
    body = got[: 2 * WINDOW]
    # the bytes on both sides of the 4 GiB mark, then the whole region
    assert body[WINDOW - 4096 : WINDOW + 4096] == bytes(expected[WINDOW - 4096 : WINDOW + 4096])
    assert body == bytes(expected)
    assert got[2 * WINDOW :] == bytes(5) + marker[len(marker) // 2 - 3 : len(marker) // 2 + 3]


def test_descriptor_count_is_stable(tmp_path):
    path = tmp_path / "f.bin"
    data = make_file(path, 200_000)

    async def handler(r, w):
        sendfile = evsendfile.create_sendfile_callable(w)
        while True:
            line = await r.readline()
            if not line:
                return
            kind = line.strip()
            if kind == b"path":
                await evsendfile.send_file(w, path, head=b"H")
            elif kind == b"fd":
                with open(path, "rb") as f:
                    await evsendfile.send_file(w, f, 0)
            elif kind == b"missing":
                try:
                    await evsendfile.send_file(w, tmp_path / "missing")
                except FileNotFoundError:
                    w.write(b"E")
            elif kind == b"dropin":
                await sendfile(path, 0, len(data))
            elif kind == b"cancel":
                t = asyncio.ensure_future(evsendfile.send_file(w, path))
                await asyncio.sleep(0)
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    return

    async def session(kinds):
        async with serve(handler) as port:
            r, w = await connect(port)
            for k in kinds:
                w.write(k + b"\n")
            w.write_eof()
            await read_to_eof(r)
            w.close()

    async def main():
        await session([b"path"])  # starts the worker thread (its pipe and epoll fds)
        gc.collect()
        before = open_fds()
        for _ in range(10):
            await session([b"path", b"fd", b"missing", b"dropin"] * 3)
            await session([b"path", b"cancel"])
        gc.collect()
        return before, open_fds()

    before, after = run(main(), timeout=120)
    assert after == before


def _import_in(pkg_parent, **env_changes):
    """`import evsendfile` in a fresh interpreter, from `pkg_parent`."""
    env = dict(os.environ, LD_LIBRARY_PATH="")
    env.pop("EVSENDFILE_LIBRARY", None)
    env.update(env_changes)
    code = "import evsendfile; print(evsendfile._ffi.loaded_from); print(evsendfile.library_version())"
    return subprocess.run([sys.executable, "-c", code], cwd=pkg_parent, env=env, capture_output=True, text=True)


@pytest.fixture
def bundled(tmp_path):
    """A copy of the package with the loaded library next to it, as a wheel
    installs it; and a second copy of the library elsewhere."""
    real = _ffi.loaded_from.rsplit(" (", 1)[0]
    if os.sep not in real:
        pytest.skip("the library was loaded by name, not from a file")
    src = os.path.dirname(os.path.abspath(_ffi.__file__))
    pkg = tmp_path / "site" / "evsendfile"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
    shutil.copyfile(real, pkg / _ffi.SONAME)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(real, other / _ffi.SONAME)
    return pkg, other / _ffi.SONAME


@pytest.mark.loopless
def test_loader_prefers_the_environment_variable_to_the_bundled_copy(bundled):
    pkg, other = bundled
    p = _import_in(pkg.parent)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[0] == f"{pkg / _ffi.SONAME} (next to the package)"
    p = _import_in(pkg.parent, EVSENDFILE_LIBRARY=str(other))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[0] == f"{other} ($EVSENDFILE_LIBRARY)"


@pytest.mark.loopless
def test_loader_refuses_a_set_variable_that_does_not_load(bundled, tmp_path):
    pkg, _ = bundled
    nope = tmp_path / "nope" / _ffi.SONAME
    p = _import_in(pkg.parent, EVSENDFILE_LIBRARY=str(nope))
    assert p.returncode != 0, "a bad override must not fall back to the bundled copy"
    assert "LibraryNotFoundError" in p.stderr
    assert f"$EVSENDFILE_LIBRARY: {nope}: no such file" in p.stderr
    assert "nothing else tried" in p.stderr and "next to the package" not in p.stderr


@pytest.mark.loopless
def test_loader_reports_every_place_it_tried():
    pkg_dir = os.path.dirname(os.path.dirname(os.path.abspath(_ffi.__file__)))
    if os.path.exists(os.path.join(pkg_dir, "evsendfile", _ffi.SONAME)):
        pytest.skip("a library lies next to the source package")
    p = _import_in(pkg_dir)
    if p.returncode == 0:
        pytest.skip("libevsendfile.so.2 is installed in a standard path")
    assert "LibraryNotFoundError" in p.stderr
    for needle in ("$EVSENDFILE_LIBRARY: not set", "next to the package", "standard library paths"):
        assert needle in p.stderr, (needle, p.stderr)


@pytest.mark.loopless
def test_loader_uses_the_environment_variable():
    wanted = os.environ.get("EVSENDFILE_LIBRARY")
    if not wanted:
        pytest.skip("EVSENDFILE_LIBRARY is not set")
    assert _ffi.loaded_from == f"{wanted} ($EVSENDFILE_LIBRARY)"


@pytest.mark.loopless
def test_package_version_is_the_library_version():
    pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml")
    with open(pyproject) as f:
        version = re.search(r'^version = "([^"]+)"$', f.read(), re.M).group(1)
    assert version == evsendfile.library_version()
    assert version == ".".join(str(lib.sf_version() >> s & 0xFF) for s in (16, 8, 0))


@pytest.mark.loopless
def test_every_declared_function_is_exported_by_the_library():
    with open(_ffi.__file__) as f:
        declared = set(re.findall(r"\b(sf_\w+)\(", f.read()))
    assert {"sf_job_start", "sf_worker_submit_job", "sf_job_step"} <= declared
    for name in sorted(declared):
        assert callable(getattr(lib, name)), name  # cffi resolves the symbol here
