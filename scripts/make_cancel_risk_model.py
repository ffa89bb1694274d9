#!/usr/bin/env python3
"""Trains the example scikit-learn model `cancel_risk` and writes
OUTPUT_DIR/cancel_risk/1/{model.yaml, model.py, pipeline.pkl, selftest.jsonl}.

Usage: make_cancel_risk_model.py SOURCE_DIR OUTPUT_DIR   (SOURCE_DIR: examples/optional-models)
The self-test expectations come from calling model.py's own predict() the way forklift does, so
they check the embedding (columns in, one output per row out) as well as the model.
"""
import importlib.util
import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SELFTEST_CASES = 12


def synthetic_requests(rows, rng):
    return {
        "pickup_eta_min": rng.gamma(2.0, 3.0, rows),
        "surge_multiplier": 1.0 + rng.random(rows) * 1.5,
        "rider_cancels_30d": rng.poisson(0.5, rows).astype(np.int64),
        "hour_of_day": rng.integers(0, 24, rows).astype(np.int64),
        "is_airport": rng.random(rows) < 0.15,
        "ride_type": list(rng.choice(["standard", "xl", "lux"], rows, p=[0.8, 0.15, 0.05])),
    }


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source = Path(sys.argv[1]) / "cancel_risk" / "1"
    output = Path(sys.argv[2]) / "cancel_risk" / "1"
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(source, output)
    spec = importlib.util.spec_from_file_location("cancel_risk_model", output / "model.py")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)

    rng = np.random.default_rng(0)
    train = synthetic_requests(20000, rng)
    x = code.matrix(train)
    logit = (0.25 * x[:, 0] + 0.8 * (x[:, 1] - 1) + 0.6 * x[:, 2] - 0.7 * x[:, 4]
             + 0.5 * x[:, 7] - 2.5)
    y = rng.random(len(x)) < 1 / (1 + np.exp(-logit))
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    pipeline.fit(x, y)
    with open(output / "pipeline.pkl", "wb") as f:
        pickle.dump(pipeline, f)

    model = code.load(str(output / "pipeline.pkl"))
    cases = synthetic_requests(SELFTEST_CASES, np.random.default_rng(1000))
    cases["ride_type"][0] = "bike"  # an unknown ride type takes the all-zero one-hot path
    predicted = code.predict(model, cases)
    with open(output / "selftest.jsonl", "w") as f:
        for i in range(SELFTEST_CASES):
            features = {
                "pickup_eta_min": float(cases["pickup_eta_min"][i]),
                "surge_multiplier": float(cases["surge_multiplier"][i]),
                "rider_cancels_30d": int(cases["rider_cancels_30d"][i]),
                "hour_of_day": int(cases["hour_of_day"][i]),
                "is_airport": bool(cases["is_airport"][i]),
                "ride_type": str(cases["ride_type"][i]),
            }
            f.write(json.dumps({"name": f"synthetic request {i}", "features": features,
                                "expected": float(predicted[i]), "rtol": 1e-9}) + "\n")
    print(f"trained cancel_risk/1 -> {output}")


if __name__ == "__main__":
    main()
