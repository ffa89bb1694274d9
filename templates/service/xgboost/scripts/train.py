#!/usr/bin/env python3
"""Trains the example model and writes it, with its self-tests, into a model repository.

Usage: train.py SOURCE_MODELS OUTPUT_MODELS
SOURCE_MODELS is this repository's models/ (model.yaml and friends, copied as they are); the
trained model.json and a selftest.jsonl of XGBoost's own predictions go beside them in OUTPUT_MODELS.
Replace the synthetic data with your training data.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb


def synthetic(rows, rng):
    x = np.column_stack([rng.gamma(2.0, 3.0, rows), rng.integers(0, 24, rows),
                         rng.random(rows) < 2 / 7]).astype(np.float32)
    y = 1.5 + 2.0 * x[:, 0] + 0.1 * x[:, 1] - 0.5 * x[:, 2] + rng.normal(0, 0.2, rows)
    return x, y


def main():
    source, output = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(source, output)
    for version_dir in sorted(p for p in output.glob("*/*") if p.is_dir()):
        rng = np.random.default_rng(int(version_dir.name))
        x, y = synthetic(5000, rng)
        booster = xgb.train({"max_depth": 4, "eta": 0.3, "seed": 1, "nthread": 1},
                            xgb.DMatrix(x, label=y), 60)
        booster.save_model(str(version_dir / "model.json"))
        cases, _ = synthetic(8, np.random.default_rng(100))
        with open(version_dir / "selftest.jsonl", "w") as f:
            for row, want in zip(cases, booster.inplace_predict(cases)):
                features = {"distance_km": float(row[0]), "hour_of_day": int(row[1]),
                            "is_weekend": bool(row[2])}
                f.write(json.dumps({"features": features, "expected": float(want),
                                    "rtol": 1e-5}) + "\n")
        print(f"trained {version_dir}")


if __name__ == "__main__":
    main()
