#!/usr/bin/env python3
"""Writes XGBoost models with categorical splits, and XGBoost's own predictions for them, for the
tree runtime's tests: OUT/xgb_categorical_<objective>.json and OUT/xgb_categorical_<objective>
.cases.json ({"rows": [[...], ...], "predictions": [...]}).

Features: 0 categorical with 60 categories (two 32-bit words of bitset), 1 numeric, 2 categorical
with 5 categories. The rows include what a client may send: missing values, negative, fractional,
unseen and huge categories."""
import json
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
n = 4000
X = np.column_stack([rng.integers(0, 60, n), rng.normal(size=n), rng.integers(0, 5, n)]).astype(float)
signal = np.sin(X[:, 0]) * 3 + X[:, 1] + (X[:, 2] == 3) * 2
types = ["c", "q", "c"]

rows = rng.normal(size=(3000, 3))
rows[:, 0] = rng.integers(0, 60, 3000)
rows[:, 2] = rng.integers(0, 5, 3000)
odd = rng.random(3000)
rows[odd < 0.05, 0] = np.nan
rows[(odd >= 0.05) & (odd < 0.08), 0] = -rng.integers(1, 5, ((odd >= 0.05) & (odd < 0.08)).sum())
rows[(odd >= 0.08) & (odd < 0.11), 0] += 0.5  # fractional: truncated
rows[(odd >= 0.11) & (odd < 0.14), 0] = rng.integers(60, 200, ((odd >= 0.11) & (odd < 0.14)).sum())
rows[(odd >= 0.14) & (odd < 0.15), 0] = 1e9
rows[(odd >= 0.15) & (odd < 0.2), 1] = np.nan
rows[(odd >= 0.2) & (odd < 0.25), 2] = np.nan

for objective, label in (("reg:squarederror", signal),
                         ("binary:logistic", (signal > 0.5).astype(float))):
    train = xgb.DMatrix(X, label=label, feature_types=types, enable_categorical=True)
    params = {"tree_method": "hist", "max_cat_to_onehot": 1, "max_depth": 5, "eta": 0.3,
              "objective": objective, "nthread": 1, "seed": 1}
    booster = xgb.train(params, train, 30)
    name = "xgb_categorical_" + objective.split(":")[0]
    booster.save_model(str(out / f"{name}.json"))
    test = xgb.DMatrix(rows, feature_types=types, enable_categorical=True)
    predictions = booster.predict(test).astype(float).tolist()
    as_json = [[None if np.isnan(v) else float(v) for v in row] for row in rows]
    (out / f"{name}.cases.json").write_text(json.dumps({"rows": as_json,
                                                         "predictions": predictions}))
print(f"wrote categorical XGBoost test models to {out}")
