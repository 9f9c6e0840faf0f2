#!/usr/bin/python3
"""Draws throughput against transfer size, one panel per concurrency, from the
CSV that `core_bench --csv FILE` writes (medians over the rounds).

    build/bench/core_bench --csv /tmp/core_bench.csv
    /usr/bin/python3 bench/plot.py /tmp/core_bench.csv bench/throughput.png

Needs python3-matplotlib (`.ci/install-deps --bench`).
"""
import csv
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {  # contender -> (colour, line style); the library solid, the others dashed
    "evsf-async": ("tab:blue", "-"),
    "evsf-known": ("tab:purple", "-"),   # SF_TRUSTED | SF_KNOWN_SIZE: what a server passes
    "evsf-shut": ("black", "-"),         # the same, SF_SHUT_WR on a connection's last response
    "evsf-step": ("tab:cyan", "-"),
    "evbuf-sendfile": ("tab:orange", "--"),
    "evbuf-mmap": ("tab:red", "--"),
    "copy": ("tab:green", "--"),
}


def load(path):
    """{conns: {contender: {size: [GB/s per round]}}} for the size x concurrency workloads."""
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            name = row["workload"]
            if name in ("large", "workload") or name.startswith("crossover") or name.endswith(" read"):
                continue
            try:
                cells[int(row["conns"])][row["contender"]][int(row["size"])].append(float(row["gbps"]))
            except (TypeError, ValueError):
                print("skipping a malformed row:", row, file=sys.stderr)
    return cells


def size_label(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cells = load(sys.argv[1])
    if not cells:
        sys.exit("no size x concurrency rows in " + sys.argv[1])
    conns = sorted(cells)
    fig, axes = plt.subplots(1, len(conns), figsize=(5 * len(conns), 4.2), sharey=True, squeeze=False)
    for ax, c in zip(axes[0], conns):
        sizes = set()
        for name, (colour, style) in STYLE.items():
            by_size = cells[c].get(name)
            if not by_size:
                continue
            xs = sorted(by_size)
            sizes.update(xs)
            ys = [statistics.median(by_size[x]) for x in xs]
            ax.plot(xs, ys, style, color=colour, marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sizes))
        ax.set_xticklabels([size_label(s) for s in sorted(sizes)])
        ax.set_title(f"{c} connection{'s' if c > 1 else ''}")
        ax.set_xlabel("transfer size (+ 200 B head)")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("GB/s (median of rounds)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("core_bench: loopback TCP, page-cache-warm file, sink in another process")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=90)


if __name__ == "__main__":
    main()
