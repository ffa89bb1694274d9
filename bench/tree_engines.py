#!/usr/bin/env python3
"""forklift's native tree engine beside the XGBoost C API, in one process, one thread each, on the
same model files and rows (bench/tree_benchmark.cc): one row per call and 1,000 rows per call,
for the example `eta` (400 trees of depth 6, 16 features) and a deeper, wider model this script
trains once (500 trees of depth 8, 50 features; cached in BUILD_DIR/bench/). Three repetitions
alternate the engines, and the table gives each ratio's median and range.

    bench/tree_engines.py BUILD_DIR [--smoke] [--out FILE] [--plot FILE.png]

--smoke: eta only, one short repetition (proves the benchmark runs; its figures mean nothing).
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def wide_model(build: Path) -> Path:
    """500 trees of depth 8 on 50 features (trained once, with Debian's python3-xgboost)."""
    path = build / "bench" / "wide-500x8.json"
    if path.exists():
        return path
    import numpy as np
    import xgboost as xgb
    print("training the 500-tree, depth-8 model (once)...", file=sys.stderr)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40000, 50))
    y = (np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2] + np.abs(X[:, 3]) + X[:, 4:20].sum(axis=1) * 0.1
         + rng.normal(scale=0.3, size=40000))
    X[rng.random(X.shape) < 0.03] = np.nan
    booster = xgb.train({"max_depth": 8, "eta": 0.05, "objective": "reg:squarederror",
                         "tree_method": "hist", "nthread": 2, "seed": 1},
                        xgb.DMatrix(X, label=y), 500)
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    return path


def run(binary: Path, models, repetitions: int, min_time: str):
    out = subprocess.run(
        [str(binary), *map(str, models), "--benchmark_format=json",
         f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}",
         "--benchmark_enable_random_interleaving=true"],
        check=True, capture_output=True, text=True)
    print(out.stderr, file=sys.stderr, end="")
    return json.loads(out.stdout), out.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--plot", type=Path, help="also draw the figures as a PNG (matplotlib)")
    args = ap.parse_args()
    binary = args.build / "tree_benchmark"
    models = [f"eta={args.build / 'models' / 'eta' / '2' / 'model.json'}"]
    if not args.smoke:
        models.append(f"wide-500x8={wide_model(args.build)}")
    data, notes = run(binary, models, 1 if args.smoke else 3, "0.05" if args.smoke else "1")
    # name: engine/model/rows:N[/no-missing] ; per repetition, ns per call. One row's kernels
    # (native: the default, AVX-512 where the CPU has it; native-avx2) go to their own table.
    times, kernels = {}, {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        engine, model, rows, *variant = b["name"].split("/")
        to_ns = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
        ns = b["real_time"] * to_ns
        if rows == "rows:1" and engine in ("native", "native-avx2"):
            row = "without missing values" if variant else "with missing values"
            kernels.setdefault((model, row), {}).setdefault(engine, []).append(ns)
        if engine == "native-avx2" or variant:
            continue
        times.setdefault((model, rows.split(":")[1]), {}).setdefault(engine, []).append(ns)
    lines = ["| model | rows per call | XGBoost C API µs per call | native µs per call | "
             "native per row | speed-up, median (range over repetitions) |",
             "|---|---:|---:|---:|---:|---:|"]
    explain_lines = ["| model | native explanation µs | its cost in native predictions | "
                     "XGBoost pred_contribs µs | speed-up over XGBoost |",
                     "|---|---:|---:|---:|---:|"]
    for (model, rows), t in sorted(times.items()):
        if "explain-native" in t and "explain-xgboost" in t:
            cost = [e / n for e, n in zip(t["explain-native"], t["native"])]
            speed = [x / e for x, e in zip(t["explain-xgboost"], t["explain-native"])]
            en = statistics.median(t["explain-native"]) / 1000
            ex = statistics.median(t["explain-xgboost"]) / 1000
            explain_lines.append(
                f"| {model} | {en:,.1f} | **{statistics.median(cost):.0f}x** "
                f"({min(cost):.0f}-{max(cost):.0f}) | {ex:,.1f} | {statistics.median(speed):.1f}x "
                f"({min(speed):.1f}-{max(speed):.1f}) |")
        ratios = [x / n for x, n in zip(t["xgboost"], t["native"])]
        xg, nat = statistics.median(t["xgboost"]) / 1000, statistics.median(t["native"]) / 1000
        lines.append(f"| {model} | {rows} | {xg:,.2f} | {nat:,.2f} | {nat / int(rows) * 1000:,.0f} ns"
                     f" | **{statistics.median(ratios):.1f}x** ({min(ratios):.1f}-{max(ratios):.1f}) |")
    kernel_lines = ["| model | one row | AVX2 kernel µs | default kernel µs | speed-up, median (range) |",
                    "|---|---|---:|---:|---:|"]
    for (model, row), t in sorted(kernels.items()):
        if "native" in t and "native-avx2" in t:
            ratios = [a / n for a, n in zip(t["native-avx2"], t["native"])]
            kernel_lines.append(
                f"| {model} | {row} | {statistics.median(t['native-avx2']) / 1000:.2f} | "
                f"{statistics.median(t['native']) / 1000:.2f} | {statistics.median(ratios):.2f}x "
                f"({min(ratios):.2f}-{max(ratios):.2f}) |")
    checks = [line for line in notes.splitlines() if "engine check" in line or "layout" in line]
    text = "\n".join(lines + [""] + explain_lines + [""] + kernel_lines + [""] +
                     [f"- {c}" for c in checks]) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    for (model, rows), t in times.items():
        if len(t.get("xgboost", [])) == 0 or len(t.get("native", [])) == 0:
            sys.exit(f"no figures for {model} {rows}")
    if args.plot:
        plot(times, args.plot)


def plot(times, out: Path):
    """Left: the speed-up over XGBoost's predict per model and rows per call, against the
    targets. Right: one row's explanation in native predictions, against the target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def spread(values):
        m = statistics.median(values)
        return m, [[m - min(values)], [max(values) - m]]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    keys = sorted(times)
    for i, (model, rows) in enumerate(keys):
        t = times[(model, rows)]
        m, err = spread([x / n for x, n in zip(t["xgboost"], t["native"])])
        left.bar(i, m, yerr=err, color="#0b5cad" if rows == "1" else "#5b9bd5", capsize=4)
        left.text(i, m, f"{m:.1f}x", ha="center", va="bottom")
        target = 6 if rows == "1" else 5
        left.plot([i - 0.4, i + 0.4], [target, target], "--", color="#b42318")
    left.set_xticks(range(len(keys)), [f"{m}\n{r} row{'s' if r != '1' else ''}" for m, r in keys])
    left.set_ylabel("native engine's speed-up over XGBoost's predict")
    left.set_title("predictions (dashed: the targets)")
    explained = [k for k in keys if "explain-native" in times[k]]
    for i, key in enumerate(explained):
        t = times[key]
        m, err = spread([e / n for e, n in zip(t["explain-native"], t["native"])])
        right.bar(i, m, yerr=err, color="#0b5cad", capsize=4)
        right.text(i, m, f"{m:.0f}x", ha="center", va="bottom")
    right.axhline(20, linestyle="--", color="#b42318")
    right.set_yscale("log")
    right.set_ylim(5, None)
    right.set_xticks(range(len(explained)), [m for m, _ in explained])
    right.set_ylabel("one row's explanation, in native predictions")
    right.set_title("explanations (dashed: the 20x target)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main()
