#!/usr/bin/python3
"""engine_seeds.py -- writes the hand-made seeds of corpus/engine/.

The byte layout mirrors read_plan() in fuzz_engine.c; change both together.
Run from anywhere: python3 tests/fuzz/engine_seeds.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'engine')
SETUP = ['open', 'close', 'fstat', 'fstatfs', 'fcntl', 'getsockopt', 'setsockopt', 'getsockname']


def u8(v): return bytes([v & 255])
def u16(v): return struct.pack('>H', v)
def u32(v): return struct.pack('>I', v)


def fault(ft):
    """ft = (error index in fuzz_engine.c's table, first call (0-based), every, times-1, cap byte)."""
    if ft is None:
        return u8(0)
    idx, first, every, times, cap = ft
    return u8(idx << 1 | 1) + u8(first) + u8(every) + u8(times) + u8(cap)


def plan(stepping=0, tcp=0, path=0, cork=0, size=100000, bufs=None, nosf=0, nocork=0, tls=0, chunk=None,
         offset=0, count=('eof',), head=120, tail=20, hsplit=1, tsplit=1, faults=(None,) * 4, setup=None,
         close=None, trunc=None, cancel=None, script=b'', disk=None, inline=0):
    """disk = (probe mode 0 real / 1 cold / 2 every other call / 3 errno, errno EINVAL?, fetch fails?)."""
    m = stepping | tcp << 1 | path << 2 | cork << 3 | 3 << 4 | (1 << 6 if bufs else 0)
    b = u8(m) + u32(size)
    b += u8(nosf | nocork << 1 | (4 if chunk else 0) | (8 if disk else 0) |
            (0xc0 if tls else 0)) + (u8(chunk) if chunk else b'')
    if disk:
        b += u8(disk[0] | disk[1] << 2 | disk[2] << 3 | (0x10 if inline else 0))
    b += u32(offset)
    kind = count[0]
    b += {'eof': u8(0), 'exact': u8(1), 'zero': u8(3)}.get(kind, b'') or (u8(2) + u32(count[1]))
    b += u16(head) + u8(tail)
    b += u8(hsplit) + u8(100) * max(hsplit - 1, 0)
    b += u8(tsplit) + u8(100) * max(tsplit - 1, 0)
    if bufs and not tcp:
        b += u8(bufs[0]) + u8(bufs[1])
    b += b''.join(fault(ft) for ft in faults)
    setup = setup or {}
    b += u8(sum(1 << SETUP.index(name) for name in setup))
    b += b''.join(fault(setup[name]) for name in SETUP if name in setup)
    b += u8((close is not None) | (2 if trunc else 0) | (4 if cancel is not None else 0)) + u32(close or 0)
    if trunc:
        b += u8(trunc[0])
    b += u32(trunc[1] if trunc else 0)
    if cancel is not None:
        b += u8(cancel)
    return b + script


SEEDS = {
    'async-unix-plain': plan(),
    'step-unix-plain': plan(stepping=1),
    'async-tcp-cork': plan(tcp=1),
    'async-tcp-callercork': plan(tcp=1, cork=1),
    'step-tcp-nocork-path': plan(stepping=1, tcp=1, path=1, nocork=1),
    'small-body': plan(size=3000, offset=100, count=('n', 500)),
    'small-edge': plan(size=32768, count=('exact',)),
    'small-edge-plus-one': plan(size=32769, count=('exact',)),
    'tcp-head-only': plan(tcp=1, tail=0),
    'empty-region': plan(size=10, offset=10, count=('zero',)),
    'past-eof': plan(size=1000, offset=0, count=('n', 1001)),
    'offset-past-eof': plan(size=1000, offset=1001),
    'tls': plan(tls=1),
    'nosendfile-chunk': plan(nosf=1, chunk=3),
    'sendfile-einval': plan(faults=((3, 0, 0, 1, 0), None, None, None)),
    'sendfile-eio': plan(faults=((9, 0, 0, 1, 0), None, None, None)),
    'sendfile-short-eintr': plan(faults=((1, 1, 1, 4, 41), None, None, None)),
    'pread-eio': plan(nosf=1, faults=(None, (2, 0, 0, 1, 0), None, None)),
    'pread-eagain-copy': plan(nosf=1, faults=(None, (5, 0, 0, 0, 0), None, None)),
    'pread-eagain-small': plan(size=3000, faults=(None, (5, 0, 0, 0, 0), None, None)),
    'sendmsg-eagain': plan(faults=(None, None, None, (2, 1, 1, 3, 33))),
    'sendmsg-epipe': plan(size=2000, faults=(None, None, None, (5, 0, 0, 1, 0))),
    'close-early-unix': plan(close=5000, bufs=(4, 4)),
    'close-early-tcp': plan(tcp=1, close=70000),
    'truncate': plan(trunc=(2, 50000), bufs=(4, 4), script=b'\x05' * 50),
    'truncate-copy': plan(nosf=1, trunc=(1, 20000), bufs=(2, 2), script=b'\x05' * 50),
    'cancel-async': plan(cancel=3, bufs=(4, 4), script=b'\x03' * 20),
    'cancel-step-path': plan(stepping=1, path=1, cancel=2, bufs=(4, 4)),
    'slow-reader': plan(bufs=(1, 1), chunk=10, head=500, tail=150, hsplit=4, tsplit=3,
                        script=bytes([0, 1, 0xe0, 2, 0x21, 0x45]) * 30),
    'open-fails': plan(path=1, setup={'open': (1, 0, 0, 0, 0)}),
    'close-fails-path': plan(path=1, setup={'close': (0, 0, 0, 0, 0)}),
    'fstat-fails': plan(setup={'fstat': (0, 0, 0, 0, 0)}),
    'fcntl-fails': plan(setup={'fcntl': (0, 0, 0, 0, 0)}),
    'uncork-fails': plan(tcp=1, setup={'setsockopt': (0, 1, 0, 0, 0)}),
    'cork-query-fails': plan(tcp=1, cork=1, setup={'getsockopt': (2, 1, 0, 0, 0)}),
    'cold-async': plan(chunk=100, disk=(1, 0, 0)),
    'cold-step-tcp': plan(stepping=1, tcp=1, chunk=100, disk=(1, 0, 0)),
    'cold-copy-alternate': plan(nosf=1, chunk=50, disk=(2, 0, 0)),
    'cold-fetch-fails': plan(tcp=1, disk=(1, 0, 1)),
    'cold-probe-errno': plan(disk=(3, 1, 0)),
    'cold-truncate': plan(chunk=100, disk=(1, 0, 0), trunc=(1, 40000), bufs=(4, 4)),
    'cold-cancel': plan(chunk=100, disk=(1, 0, 0), cancel=1),
    'cold-cancel-step': plan(stepping=1, path=1, chunk=100, disk=(1, 0, 0), cancel=1),
    'disk-inline': plan(disk=(1, 0, 0), inline=1),
}

if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, 'seed-' + name), 'wb') as f:
            f.write(data)
    print(f'{len(SEEDS)} seeds in {OUT}')
