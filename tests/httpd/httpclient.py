"""Two ways to talk to the server: curl (a real, independent client) and a
raw socket (for what curl will not do: pipelining, truncation, stalls)."""
import os
import socket
import subprocess
import tempfile

from conftest import DEADLINE


def curl(url, *args):
    """Runs curl; returns (status, headers: dict of lists, lower-case names, body)."""
    with tempfile.TemporaryDirectory() as d:
        hdr, body = os.path.join(d, "h"), os.path.join(d, "b")
        r = subprocess.run(["curl", "-sS", "--path-as-is", "--max-time", str(DEADLINE),
                            "-D", hdr, "-o", body, *args, url],
                           capture_output=True, timeout=DEADLINE + 5)
        assert r.returncode == 0, "curl failed: %r" % r.stderr
        with open(hdr, "rb") as f:
            raw = f.read()
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
    if "-I" in args and data.startswith(raw):
        data = data[len(raw):]  # curl -I writes the head to the output too
    block = raw.strip(b"\r\n").split(b"\r\n\r\n")[-1]  # the last response's head
    return parse_head(block) + (data,)


def parse_head(block):
    lines = block.split(b"\r\n")
    version, status = lines[0].split(b" ")[:2]
    assert version == b"HTTP/1.1", lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower().decode(), []).append(value.strip().decode())
    return int(status), headers


class Conn:
    """A raw HTTP/1.1 client connection with its own read buffer."""

    def __init__(self, port, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(DEADLINE)
        self.s.connect(("127.0.0.1", port))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def get(self, path, extra="", method="GET"):
        self.send(("%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method, path, extra)).encode())

    def _fill(self, n=65536):
        data = self.s.recv(n)
        if not data:
            raise EOFError("connection closed with %d bytes buffered" % len(self.buf))
        self.buf += data

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill(max(65536, n - len(self.buf)))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only=False):
        """Reads one response: (status, headers, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        block, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, headers = parse_head(block)
        n = 0 if head_only or status == 304 else int(headers["content-length"][0])
        return status, headers, self.read_exact(n)

    def read_to_eof(self):
        """Everything until the server closes (a reset counts as closed)."""
        out = bytearray(self.buf)  # not bytes +=: quadratic, a slow reader on big bodies
        self.buf = b""
        try:
            while True:
                data = self.s.recv(1 << 20)
                if not data:
                    break
                out += data
        except ConnectionResetError:
            pass
        return bytes(out)

    def closed_by_server(self):
        """True once the server closed the connection (EOF or reset)."""
        self.read_to_eof()
        return True

    def abort(self):
        """Vanish without a FIN: SO_LINGER 0 makes close() send a RST."""
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.s.close()

    def close(self):
        self.s.close()
