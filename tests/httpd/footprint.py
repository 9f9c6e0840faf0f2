"""What a server process holds, read from /proc: fds, RSS, CPU ticks and how
often its threads went to sleep.  Used to check that an attack leaves the
server where it was: same fd count, RSS back near a warmed-up baseline, and
still answering.

RSS slack: glibc never returns every freed chunk to the kernel (the worker
thread's arena only shrinks from its top, and there is no malloc_trim), so
RSS is compared with a baseline taken *after a warm-up round of the same
attack* -- the allocator has then already grown to what the attack needs, and
a leak shows up as growth on top of it.  RSS_SLACK covers page-granular
jitter of that reuse.  Under AddressSanitizer freed memory sits in a
quarantine (up to 256 MiB) by design, so RSS says nothing there: the RSS
check is skipped and LeakSanitizer's report at exit does that job instead."""
import os

from httpclient import Conn

RSS_SLACK = 4 * 1024 * 1024


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def _tasks(pid):
    return os.listdir("/proc/%d/task" % pid)


def cpu_ticks(pid):
    """utime + stime of every thread, in clock ticks."""
    total = 0
    for tid in _tasks(pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total


def sleeps(pid):
    """Voluntary context switches of every thread: how often they blocked."""
    total = 0
    for tid in _tasks(pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def sanitized(pid):
    """True for an AddressSanitizer build (its runtime is mapped)."""
    with open("/proc/%d/maps" % pid) as f:
        return "asan" in f.read()


def still_serves(server):
    c = Conn(server.port)
    c.get("/hello.txt")
    status, _, body = c.response()
    c.close()
    assert (status, body) == (200, b"hello, world\n")


class Footprint:
    """warm() after a first round of an attack, check() after the next ones."""

    def __init__(self, server):
        self.s = server
        self.rss = None

    def settle(self):
        self.s.assert_fds_settle()
        assert self.s.alive(), self.s.output()

    def warm(self):
        self.settle()
        self.rss = rss(self.s.pid)
        return self.rss

    def check(self, what=""):
        self.settle()
        now = rss(self.s.pid)
        if self.rss is not None and not sanitized(self.s.pid):
            assert now <= self.rss + RSS_SLACK, "%s: RSS grew from %d to %d bytes" % (what, self.rss, now)
        still_serves(self.s)
        self.s.assert_fds_settle()
        return now

