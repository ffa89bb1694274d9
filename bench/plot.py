#!/usr/bin/env python3
"""Draws bench/run.sh's results as one PNG: requests/s and p99 for forklift and the Flask stack
at each concurrency, and the ceilings (nginx, no-op model, eta native and xgboost).

Usage: plot.py RAW CEILINGS OUT.png   (RAW and CEILINGS: the files bench/run.sh writes)
"""
import collections
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    raw, ceilings, out = sys.argv[1:4]
    runs = collections.defaultdict(list)
    for line in open(raw):
        c, body, stack, rps, p50, p99, p999 = line.split()
        runs[(int(c), body, stack)].append((float(rps), float(p99) / 1000))
    conns = sorted({c for c, body, _ in runs if body == "one"})
    ceil = collections.defaultdict(list)
    for line in open(ceilings):
        name, rps, *_ = line.split()
        ceil[name].append(float(rps))

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    for stack, color in (("forklift", "#0b5cad"), ("flask", "#b42318")):
        label = "forklift" if stack == "forklift" else "Flask + Gunicorn"
        rps = [statistics.median(r for r, _ in runs[(c, "one", stack)]) for c in conns]
        p99 = [statistics.median(p for _, p in runs[(c, "one", stack)]) for c in conns]
        left.plot(conns, rps, "o-", color=color, label=label)
        middle.plot(conns, p99, "o-", color=color, label=label)
    for ax, title, unit in ((left, "eta, one row: requests/s", "req/s"),
                            (middle, "eta, one row: p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(conns, [str(c) for c in conns])
        ax.set_xlabel("connections (wrk, 1 thread)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    # Older ceilings files lack the one-thread cases.
    names = ["nginx", "forklift-noop", "forklift-noop-1t", "forklift-tree", "forklift-tree-1t",
             "forklift-xgboost"]
    labels = ["nginx\nfixed 200", "forklift\nno-op", "no-op\n1 thread", "forklift\neta, native",
              "eta, native\n1 thread", "forklift\neta, xgboost"]
    colors = ["#5b6570", "#0b5cad", "#3b82c4", "#1a7f37", "#2da44e", "#9a6700"]
    kept = [i for i, n in enumerate(names) if ceil[n]]
    names, labels = [names[i] for i in kept], [labels[i] for i in kept]
    colors = [colors[i] for i in kept]
    values = [statistics.median(ceil[n]) for n in names]
    bars = right.bar(labels, values, color=colors)
    right.bar_label(bars, [f"{v:,.0f}" for v in values], fontsize=8)
    right.tick_params(axis="x", labelsize=8)
    right.set_title("ceilings at 8 connections: requests/s")
    right.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
