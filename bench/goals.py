#!/usr/bin/python3
"""Issue 7's and issue 16's goals, checked against the CSV that `core_bench --csv FILE` writes.

    /usr/bin/python3 bench/goals.py /tmp/core_bench.csv

Ratios are medians of per-round ratios (contenders of one round ran
back to back, so a round's ratio is the least disturbed by the machine):
  large:  evsf-async, evsf-step and evsf-sendfile (SF_FORCE_SENDFILE: the sink is on
          loopback, where evsf-async copies) GB/s >= 0.97 x the limit (the faster
          limit-* contender of the round), CPU/GB <= 1.05 x the limit's
  sizes:  evsf-async, evsf-trusted (SF_TRUSTED), evsf-known (SF_TRUSTED | SF_KNOWN_SIZE),
          evsf-shut (the same, SF_SHUT_WR on a connection's last transfer) and evsf-step GB/s >= 1.0 x the better of
          evbuf-sendfile, evbuf-mmap and copy in the round (the ratios
          against the better evbuffer one and against copy alone follow)
Standard library only.
"""
import csv
import statistics
import sys
from collections import defaultdict

LIBRARY = ("evsf-async", "evsf-trusted", "evsf-known", "evsf-shut", "evsf-step", "evsf-sendfile")
BASELINE = ("evbuf-sendfile", "evbuf-mmap", "copy")
LIMIT = ("limit-blocking", "limit-poll")


def load(path):
    """{workload: {round: {contender: (gbps, cpu)}}}, in file order."""
    cells = defaultdict(lambda: defaultdict(dict))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                cells[row["workload"]][int(row["round"])][row["contender"]] = (
                    float(row["gbps"]), float(row["cpu_s_per_gb"]))
            except (TypeError, ValueError):
                continue  # a damaged line
    return cells


def paired(rounds, name, refs):
    """Median over rounds of name / (fastest of refs): GB/s ratio, CPU ratio."""
    g, c = [], []
    for per in rounds.values():
        have = [r for r in refs if r in per]
        if name not in per or not have:
            continue
        ref = max(have, key=lambda r: per[r][0])
        g.append(per[name][0] / per[ref][0])
        c.append(per[name][1] / per[ref][1])
    return (statistics.median(g), statistics.median(c)) if g else (None, None)


def verdict(ok):
    return "pass" if ok else "MISS"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cells = load(sys.argv[1])
    misses = 0
    for w, rounds in cells.items():
        if w.startswith("crossover"):
            continue
        for name in LIBRARY:
            if w.startswith("large"):
                g, c = paired(rounds, name, LIMIT)
                if g is None:
                    continue
                misses += (g < 0.97) + (c > 1.05)
                print(f"{w:14} {name:12} GB/s {g:5.2f} x limit (>= 0.97 {verdict(g >= 0.97)})"
                      f"   CPU/GB {c:5.2f} x limit (<= 1.05 {verdict(c <= 1.05)})")
            else:
                g, c = paired(rounds, name, BASELINE)
                if g is None:
                    continue
                misses += g < 1.0
                ge, _ = paired(rounds, name, BASELINE[:2])
                gc, _ = paired(rounds, name, BASELINE[2:])
                ge, gc = ge or float("nan"), gc or float("nan")  # a workload without one of them
                print(f"{w:14} {name:12} GB/s {g:5.2f} x best of evbuffer/copy (>= 1.0 {verdict(g >= 1.0)})"
                      f"   CPU/GB {c:5.2f} x its   [GB/s {ge:5.2f} x evbuffer, {gc:5.2f} x copy]")
    print(f"{misses} goal(s) missed")


if __name__ == "__main__":
    main()
