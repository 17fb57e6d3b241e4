#!/usr/bin/env python3
"""The diff's noise floors, measured: how far the same code's figures move
between back-to-back comparisons, cell by cell, as `loadgen diff` reads
them.

Usage: benches/diff_noise.py [--loadgen PATH] RUN_DIR RUN_DIR [RUN_DIR ...]

Every pair of the runs given (each a `loadgen compare --out` folder) is held
against each other with `loadgen diff OLD NEW`, and each cell's change
becomes a factor either way (+10% is 1.10, and so is -9.1%). The factors are
grouped by figure and by what the cell was read on (a paired ratio to the
epoll run beside it, epoll's own figure at a paired point, or an own figure
where nothing was paired), and the median, p90 and max of each group are
printed, with the number of cells, over all pairs. Cells that failed on a
side, or with no change in % (a baseline of 0, a bound), are left out, as
the diff leaves them. Nothing is started: it reads results.json files.

The paired floors in loadgen/src/report/diff/figures.rs
(`paired_floor_pct`) are about the p90 here over back-to-back runs of
`loadgen compare --profile perf --styles epoll,reactor,threads,tasks`.
"""

import argparse
import itertools
import re
import statistics
import subprocess
import sys

CHANGE = re.compile(r"^([+\u2212-])(\d+(?:\.\d+)?)%$")


def factor(change: str):
    m = CHANGE.match(change.strip())
    if not m:
        return None
    pct = float(m.group(2)) * (-1 if m.group(1) != "+" else 1)
    r = 1 + pct / 100
    if r <= 0:
        return float("inf")
    return max(r, 1 / r)


def cells(loadgen: str, old: str, new: str):
    """(scenario, row, point, figure, read on, factor) of every cell with a change."""
    out = subprocess.run(
        [loadgen, "diff", old, new], capture_output=True, text=True, check=False
    )
    if out.returncode not in (0, 3):
        sys.exit(f"loadgen diff {old} {new}: exit {out.returncode}: {out.stderr}")
    text = out.stdout.split("## Every cell", 1)[1]
    scenario = None
    header = None
    for line in text.splitlines():
        if line.startswith("### "):
            scenario = line[4:].strip()
            header = None
            continue
        if not line.startswith("|"):
            continue
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if cols[0] == "row":
            header = cols
            continue
        if header is None or set(cols[0]) <= {"-", ":"}:
            continue
        c = dict(zip(header, cols))
        f = factor(c["change"])
        if f is None:
            continue
        yield scenario, c["row"], c["point"], c["figure"], c.get("read on", "own figure"), f


def pct(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loadgen", default="target/release/loadgen")
    ap.add_argument("--cells", action="store_true", help="print every cell's factor too")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    if len(args.runs) < 2:
        sys.exit("give at least two runs")
    groups = {}
    pairs = list(itertools.combinations(args.runs, 2))
    for old, new in pairs:
        for scenario, row, point, figure, read_on, f in cells(args.loadgen, old, new):
            if args.cells:
                print(f"{old} -> {new}: {scenario} {row} {point} {figure} [{read_on}]: x{f:.3f}")
            if read_on.startswith("own figure (the reference)"):
                basis = "epoll's own, at paired points"
            elif read_on.startswith("paired ratio"):
                basis = "paired ratio to epoll"
            else:
                basis = "own figure"
            groups.setdefault((scenario, figure, basis), []).append(f)
    print(f"{len(args.runs)} runs, {len(pairs)} pairs")
    print("| scenario | figure | read on | cells | median | p90 | max |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (scenario, figure, basis), fs in sorted(groups.items()):
        print(
            f"| {scenario} | {figure} | {basis} | {len(fs)} | {statistics.median(fs):.3f} "
            f"| {pct(fs, 0.9):.3f} | {max(fs):.3f} |"
        )


if __name__ == "__main__":
    main()
