"""The README's server example: the file is the README's code, and it serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import make_file

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(HERE, "examples", "static_server.py")


def test_readme_shows_the_example_verbatim():
    readme = open(os.path.join(HERE, "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert open(EXAMPLE).read() in blocks


def test_example_serves_files_with_keepalive(tmp_path):
    data = make_file(tmp_path / "a.bin", 3 * 1024 * 1024 + 5)
    small = make_file(tmp_path / "b.txt", 100)
    env = dict(os.environ, PYTHONPATH=HERE)
    proc = subprocess.Popen([sys.executable, EXAMPLE, str(tmp_path), "0"], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "serving ROOT on ('127.0.0.1', PORT)"
        port = int(line.rsplit(",", 1)[1].strip(" )\n"))
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /a.bin HTTP/1.1\r\n\r\nGET /b.txt HTTP/1.1\r\n\r\n"
                      b"GET /nope HTTP/1.1\r\n\r\nHEAD /b.txt HTTP/1.1\r\nConnection: close\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        expected = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data
                    + b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + small
                    + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                    + b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        assert got == expected
    finally:
        proc.terminate()
        proc.wait(30)
