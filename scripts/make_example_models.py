#!/usr/bin/env python3
"""Builds the example model repository: copies examples/models and trains the XGBoost `eta`
versions on synthetic rides, writing each version's model.json and selftest.jsonl.

Usage: make_example_models.py SOURCE_DIR OUTPUT_DIR
The expected outputs in selftest.jsonl are XGBoost's own Python predictions, so the self-tests
check that forklift's runtime reproduces exactly what the training library computes.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb
import yaml

# Per version: trees, rows of training data, random seed.
ETA_VERSIONS = {1: (300, 20000, 1), 2: (400, 30000, 2)}
SELFTEST_CASES = 24


def feature_names(manifest_path):
    manifest = yaml.safe_load(manifest_path.read_text())
    return [f["name"] for f in manifest["features"]]


def synthetic_rides(rows, rng):
    """Rides with a plausible structure: distance, traffic and weather drive the time."""
    x = np.empty((rows, 16), dtype=np.float32)
    x[:, 0] = rng.gamma(2.0, 3.5, rows)                 # trip_distance_km
    x[:, 1] = 37.70 + rng.random(rows) * 0.12           # pickup_lat
    x[:, 2] = -122.51 + rng.random(rows) * 0.14         # pickup_lng
    x[:, 3] = 37.70 + rng.random(rows) * 0.12           # dropoff_lat
    x[:, 4] = -122.51 + rng.random(rows) * 0.14         # dropoff_lng
    x[:, 5] = rng.integers(0, 24, rows)                 # hour_of_day
    x[:, 6] = rng.integers(0, 7, rows)                  # day_of_week
    x[:, 7] = rng.random(rows)                          # traffic_index
    x[:, 8] = rng.integers(0, 4, rows)                  # weather_severity
    x[:, 9] = 4.0 + rng.random(rows)                    # driver_rating
    x[:, 10] = rng.poisson(120, rows)                   # driver_trips_30d
    x[:, 11] = 1.0 + rng.random(rows) * 1.5             # surge_multiplier
    x[:, 12] = rng.random(rows)                         # pickup_density
    x[:, 13] = rng.random(rows)                         # dropoff_density
    x[:, 14] = rng.poisson(0.3, rows)                   # road_closures
    x[:, 15] = x[:, 0] * 2.2 + rng.normal(0, 2, rows)   # historical_eta_min
    rush = np.isin(x[:, 5], [7, 8, 17, 18]).astype(np.float32)
    y = (x[:, 0] * 95 * (1 + x[:, 7] + 0.4 * rush) + x[:, 8] * 40 + x[:, 14] * 120
         + x[:, 15] * 20 + rng.normal(0, 30, rows))
    # Some rides come without a traffic reading: XGBoost learns where missing values go.
    x[rng.random(rows) < 0.05, 7] = np.nan
    return x, y.astype(np.float32)


def train_eta(version, out_dir, names):
    trees, rows, seed = ETA_VERSIONS[version]
    rng = np.random.default_rng(seed)
    x, y = synthetic_rides(rows, rng)
    params = {"objective": "reg:squarederror", "max_depth": 6, "eta": 0.1, "tree_method": "hist",
              "seed": seed, "nthread": 2}
    booster = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=names), trees)
    booster.save_model(str(out_dir / "model.json"))

    cases, _ = synthetic_rides(SELFTEST_CASES, np.random.default_rng(1000 + seed))
    cases[0, 7] = np.nan  # one case exercises the missing-value path
    predicted = booster.inplace_predict(cases)
    with open(out_dir / "selftest.jsonl", "w") as f:
        for i, (row, want) in enumerate(zip(cases, predicted)):
            features = {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, row)}
            f.write(json.dumps({"name": f"synthetic ride {i}", "features": features,
                                "expected": float(want)}) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, output = Path(sys.argv[1]), Path(sys.argv[2])
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(source, output)
    for version in ETA_VERSIONS:
        out_dir = output / "eta" / str(version)
        train_eta(version, out_dir, feature_names(out_dir / "model.yaml"))
        print(f"trained eta/{version} -> {out_dir}")


if __name__ == "__main__":
    main()
