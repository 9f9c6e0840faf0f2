"""Soak (issue 6): wrk at 512 connections for a bounded time while the files
are rewritten, truncated and extended underneath, plus a Python client
pipelining whole-file, single-range and multi-range requests beside it.

Every file is self-describing (see pattern()), and every change keeps it so:
shrinking truncates, growing appends the pattern's own bytes, rewriting puts
the same bytes back or renames a fresh copy over it.  So any body that is not
exactly its slice of the pattern is a misframed or desynchronised response.
A truncation under a response in flight legitimately ends in the server
closing that connection (SF_ETRUNCATED, README) -- wrk counts a socket error,
our client checks that what did arrive was right -- but never a wrong byte.
After: no crash, fds back to baseline, RSS flat against the warm-up run, a
clean exit on SIGTERM.

EVSF_SOAK_SECONDS (default 15) sets the measured run's length."""
import os
import random
import re
import shutil
import subprocess
import threading

import pytest

from conftest import DEADLINE
from footprint import Footprint
from httpclient import Conn, parse_head

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = int(os.environ.get("EVSF_SOAK_SECONDS", "15"))
FILES = {"s0.bin": 1024, "s1.bin": 16384, "s2.bin": 200 * 1024, "s3.bin": 1024 * 1024}
MAX = max(FILES.values())


def pattern(n):
    """Byte i is byte i % 8 of "%07x\\n" % (i - i % 8): an offset stamp every 8 bytes."""
    return b"".join(b"%07x\n" % i for i in range(0, n + 8, 8))[:n]


PATTERN = pattern(MAX)


def note(fmt, *args):
    print("[soak] " + fmt % args)


class Mutator(threading.Thread):
    """Changes the files while they are served, never away from the pattern."""

    def __init__(self, root, align):
        super().__init__(daemon=True)
        self.root = root
        self.align = align
        self.stop = threading.Event()
        self.ops = {"truncate": 0, "extend": 0, "rewrite": 0, "replace": 0}
        self.rng = random.Random(6)

    def run(self):
        while not self.stop.wait(0.002):  # pace: ~500 changes a second at most
            name, top = self.rng.choice(list(FILES.items()))
            path = os.path.join(self.root, name)
            size = os.path.getsize(path)
            op = self.rng.choice(list(self.ops))
            if op == "truncate" and size > 0:
                os.truncate(path, self.rng.randrange(size) // self.align * self.align)
            elif op == "extend" and size < top:
                new = self.rng.randrange(size, top) + 1
                with open(path, "r+b") as f:
                    os.pwrite(f.fileno(), PATTERN[size:new], size)
            elif op == "rewrite" and size > 0:
                a = self.rng.randrange(size)
                b = min(size, a + 65536)
                with open(path, "r+b") as f:
                    os.pwrite(f.fileno(), PATTERN[a:b], a)
            elif op == "replace":
                tmp = path + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(PATTERN[:self.rng.randrange(top) + 1])
                os.rename(tmp, path)
            else:
                continue
            self.ops[op] += 1

    def restore(self):
        for name, size in FILES.items():
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(PATTERN[:size])


ZEROED = [0]  # bodies with zeros where the pattern was (zeros-ok mode only)


def check_body(body, first, what, zeros_ok=False):
    want = PATTERN[first:first + len(body)]
    if body == want:
        return
    assert zeros_ok, "%s: wrong bytes at [%d, %d)" % (what, first, first + len(body))
    bad = [i for i in range(len(body)) if body[i] != want[i] and body[i] != 0]
    assert not bad, "%s: wrong non-zero byte at %d" % (what, first + bad[0])
    ZEROED[0] += 1


def multipart_slices(ctype, body):
    """Parses a multipart/byteranges body into [(first, data)]."""
    boundary = re.search(r"boundary=(\S+)", ctype).group(1).encode()
    parts = body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n", "bad multipart framing"
    out = []
    for p in parts[1:-1]:
        assert p.startswith(b"\r\n") and p.endswith(b"\r\n"), "bad part framing"
        head, _, data = p[2:-2].partition(b"\r\n\r\n")
        m = re.search(rb"Content-Range: bytes (\d+)-(\d+)/\d+", head)
        assert m and int(m.group(2)) - int(m.group(1)) + 1 == len(data), "part length"
        out.append((int(m.group(1)), data))
    return out


class Pipeliner(threading.Thread):
    """Keep-alive connections carrying 8 pipelined requests at a time; checks
    framing and bytes of every answer, including multipart ones."""

    def __init__(self, port, zeros_ok):
        super().__init__(daemon=True)
        self.port = port
        self.zeros_ok = zeros_ok
        self.stop = threading.Event()
        self.counts = {"responses": 0, "cut": 0, "connections": 0, "bytes": 0}
        self.error = None
        self.rng = random.Random(7)

    def request(self):
        name, size = self.rng.choice(list(FILES.items()))
        kind = self.rng.randrange(4)
        rng = ["", "Range: bytes=%d-%d\r\n" % (size // 3, size // 2),
               "Range: bytes=0-99,%d-%d,-50\r\n" % (size // 2, size // 2 + 4096), "Range: bytes=-10\r\n"][kind]
        return ("GET /%s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (name, rng)).encode()

    def read_answer(self, c):
        """One response; returns False when the server closed inside it."""
        try:
            while b"\r\n\r\n" not in c.buf:
                c._fill()
        except EOFError:
            assert c.buf == b"", "closed inside a response head"
            return False
        head, _, c.buf = c.buf.partition(b"\r\n\r\n")
        status, h = parse_head(head)
        n = int(h["content-length"][0])
        try:
            body = c.read_exact(n)
        except EOFError:
            body, c.buf = c.buf, b""
            if status == 200:
                check_body(body, 0, "cut 200", self.zeros_ok)
            elif status == 206 and "content-range" in h:
                check_body(body, int(re.match(r"bytes (\d+)", h["content-range"][0]).group(1)), "cut 206", self.zeros_ok)
            self.counts["cut"] += 1
            return False
        self.counts["responses"] += 1
        self.counts["bytes"] += n
        if status == 200:
            check_body(body, 0, "200", self.zeros_ok)
        elif status == 206 and "content-range" in h:
            check_body(body, int(re.match(r"bytes (\d+)", h["content-range"][0]).group(1)), "206", self.zeros_ok)
        elif status == 206:
            for first, data in multipart_slices(h["content-type"][0], body):
                check_body(data, first, "multipart", self.zeros_ok)
        else:
            assert status == 416, status
        return True

    def run(self):
        try:
            while not self.stop.is_set():
                c = Conn(self.port)
                self.counts["connections"] += 1
                try:
                    while not self.stop.is_set():
                        c.send(b"".join(self.request() for _ in range(8)))
                        if not all(self.read_answer(c) for _ in range(8)):
                            break
                except (ConnectionResetError, BrokenPipeError):
                    self.counts["cut"] += 1
                c.close()
        except BaseException as e:  # reported by the test
            self.error = e


def run_wrk(port, seconds, zeros_ok):
    args = ["wrk", "-t2", "-c512", "-d%ds" % seconds, "--timeout", "10s",
            "-s", os.path.join(HERE, "soak_check.lua"), "http://127.0.0.1:%d/" % port, "--"]
    args += ["%s:%d" % kv for kv in FILES.items()] + (["zeros-ok"] if zeros_ok else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + DEADLINE + 30)
    assert r.returncode == 0, r.stderr + r.stdout
    m = re.search(r"^SOAK (.*)$", r.stdout, re.M)
    assert m, r.stdout + r.stderr
    stats = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    why = re.search(r"^SOAK first_error=(.*)$", r.stdout, re.M)
    return stats, why and why.group(1)


@pytest.fixture
def soak_root(tmp_path):
    root = str(tmp_path / "soak")
    os.makedirs(root)
    with open(os.path.join(root, "hello.txt"), "wb") as f:
        f.write(b"hello, world\n")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def soak_round(s, root, seconds, align):
    zeros_ok = align == 1
    mut, pipe = Mutator(root, align), Pipeliner(s.port, zeros_ok)
    mut.restore()
    mut.start()
    pipe.start()
    try:
        stats, why = run_wrk(s.port, seconds, zeros_ok)
    finally:
        pipe.stop.set()
        mut.stop.set()
        pipe.join(DEADLINE)
        mut.join(DEADLINE)
    assert not pipe.is_alive() and not mut.is_alive()
    if pipe.error:
        raise pipe.error
    assert s.alive(), "the server died: " + s.output()[-2000:]
    assert stats["errors"] == 0, "wrk saw %d bad responses, first: %s" % (stats["errors"], why)
    assert stats["checked"] > 0 and pipe.counts["responses"] > 0
    return stats, pipe.counts, mut.ops


# Truncating a file in place zeroes the tail of the page (or large folio)
# that keeps the new end of file, and the kernel does not order that against
# readers: a read racing it can return those zeros with a full count, and
# with sendfile -- pages sent by reference -- bytes already handed to the
# socket can still turn into zeros until they are copied out.  So a complete
# response can carry zeros where the file was cut, on either path (measured:
# a few per 10^5 responses with the copy path, ~4 % with sendfile).  Two runs:
#   sendfile, truncating only to multiples of 2 MiB (the largest page-cache
#     folio on x86-64; here, to 0): nothing is zeroed in place, so every
#     body must match the pattern exactly;
#   copy path, truncating to any length: a body may hold zeros where the
#     pattern had bytes (counted), never any other difference -- the
#     pattern has no zero byte, so a misframed body still fails.
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian package wrk)")
@pytest.mark.parametrize("mode,align", [("sendfile", 2 << 20), ("copy", 1)])
def test_soak_under_rewrites_and_truncation(start_server, soak_root, mode, align):
    # The copy path takes a 256 KiB buffer per transfer (SF_COPY_BUFFER_SIZE):
    # 512 at once is 128 MiB.  glibc mmaps such blocks until the first free,
    # then raises its mmap threshold and keeps later ones on the heap, where
    # they stay resident -- whether that happens in the warm-up or later is
    # luck.  A fixed threshold keeps them mmapped (returned on free), so RSS
    # measures what is still held.
    # The client is on this host: "sendfile" must be forced (the default would copy).
    s = start_server("--no-sendfile" if mode == "copy" else "--force-sendfile", root=soak_root,
                     env={"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"})
    fp = Footprint(s)
    soak_round(s, soak_root, 3, align)  # warm-up: the allocator grows to 512 connections' worth
    before = fp.warm()
    stats, counts, ops = soak_round(s, soak_root, SECONDS, align)
    after = fp.check("soak")  # fds at baseline, RSS within the slack, still serving
    note("%s: wrk %ds x 512 conns: %s", mode, SECONDS, stats)
    note("pipeliner: %s", counts)
    note("mutations: %s; bodies with truncation zeros (copy run): %d", ops, ZEROED[0])
    note("fds %d -> %d, RSS after warm-up %d -> after soak %d", s.baseline, s.fds(), before, after)
    assert s.stop() == 0
