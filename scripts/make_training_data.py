#!/usr/bin/env python3
"""Writes synthetic rides with their observed ETA, for retraining the example `eta` model
(docs/tutorials/retrain-a-model.md) and for the training tests.

Usage: make_training_data.py OUT [--rows N] [--seed S] [--slower F]
OUT ends in .jsonl (one {"features": {...}, "eta_seconds": y} per line) or .csv (a header, then
one row per ride). --slower F multiplies every ETA by F: a city where rides got slower, which a
model trained before does not know.
"""
import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from make_example_models import feature_names, synthetic_rides

EXAMPLE_MANIFEST = Path(__file__).resolve().parent.parent / "examples/models/eta/1/model.yaml"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--slower", type=float, default=1.0)
    args = parser.parse_args()
    names = feature_names(EXAMPLE_MANIFEST)
    x, y = synthetic_rides(args.rows, np.random.default_rng(args.seed))
    y = y * args.slower
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".csv":
        with open(args.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names + ["eta_seconds"])
            for row, label in zip(x, y):
                w.writerow(["" if math.isnan(v) else repr(float(v)) for v in row] + [float(label)])
    else:
        with open(args.out, "w") as f:
            for row, label in zip(x, y):
                features = {n: (None if math.isnan(v) else float(v)) for n, v in zip(names, row)}
                f.write(json.dumps({"features": features, "eta_seconds": float(label)}) + "\n")
    print(f"wrote {args.rows} rides to {args.out}")


if __name__ == "__main__":
    main()
