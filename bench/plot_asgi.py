#!/usr/bin/python3
"""Draws the ASGI/aiohttp benchmark: median GB/s of each contender in each
(size, connections) cell, one panel per event loop, from the CSV that
asgi_bench.py writes with EVSF_BENCH_CSV=FILE.

    EVSF_BENCH_CSV=/tmp/asgi.csv /usr/bin/python3 bench/asgi_bench.py
    /usr/bin/python3 bench/plot_asgi.py /tmp/asgi.csv bench/asgi.png

Needs python3-matplotlib (`.ci/install-deps --bench`).
"""
import csv
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402

# stock contenders hatched, evsendfile's solid; each pair shares a colour
STYLE = {
    "uvicorn": ("tab:orange", "//"),
    "evsf-uvicorn": ("tab:orange", ""),
    "aiohttp": ("tab:blue", "//"),
    "evsf-aiohttp": ("tab:blue", ""),
}
LABEL = {
    "uvicorn": "uvicorn + Starlette FileResponse",
    "evsf-uvicorn": "evsendfile.uvicorn + evsendfile.starlette",
    "aiohttp": "aiohttp web.FileResponse",
    "evsf-aiohttp": "evsendfile.aiohttp.FileResponse",
}


def load(path):
    """({loop: {(size, conns): {contender: median GB/s}}}, cell order, rounds)."""
    runs = defaultdict(list)
    cells, rounds = [], set()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            cell = (row["size"], int(row["conns"]))
            if cell not in cells:
                cells.append(cell)
            runs[(row["loop"], cell, row["contender"])].append(float(row["gbps"]))
            rounds.add(row["round"])
    out = defaultdict(dict)
    for (loop, cell, contender), values in runs.items():
        out[loop].setdefault(cell, {})[contender] = statistics.median(values)
    return out, cells, len(rounds)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_asgi.py RESULTS.csv OUT.png")
    data, cells, rounds = load(sys.argv[1])
    loops = sorted(data)
    fig, axes = plt.subplots(1, len(loops), figsize=(6 * len(loops), 4.2), sharey=True, squeeze=False)
    width = 0.2
    for ax, loop in zip(axes[0], loops):
        for i, contender in enumerate(STYLE):
            xs = [k + (i - 1.5) * width for k in range(len(cells))]
            ys = [data[loop].get(cell, {}).get(contender, 0) for cell in cells]
            colour, hatch = STYLE[contender]
            ax.bar(xs, ys, width, color=colour if not hatch else "white", edgecolor=colour, hatch=hatch,
                   label=LABEL[contender])
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels(["%s\n%d conn%s" % (s, n, "" if n == 1 else "s") for s, n in cells])
        ax.set_yscale("log")
        ax.set_title("%s (medians of %d rounds)" % (loop, rounds))
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].set_ylabel("GB/s (log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, frameon=False)
    fig.suptitle("File responses over loopback, wrk -t1, 2-core VM", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
