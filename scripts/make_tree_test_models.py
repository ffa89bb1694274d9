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

# Several outputs, for the native engine: three classes (multi:softprob, multi:softmax) and two
# regression targets (one tree per target and round), with XGBoost's own predictions on rows with
# missing values. OUT/xgb_<name>.json and OUT/xgb_<name>.cases.json as above; predictions are a
# list per row (or a class index for multi:softmax).
Xn = rng.normal(size=(3000, 6))
rows_n = rng.normal(size=(2000, 6))
rows_n[rng.random((2000, 6)) < 0.1] = np.nan
classes = (Xn[:, 0] + Xn[:, 1] * Xn[:, 2] > 0).astype(int) + (Xn[:, 3] > 1).astype(int)
targets = np.column_stack([Xn[:, 0] * 2 + Xn[:, 4], np.sin(Xn[:, 1]) + Xn[:, 5]])
for name, objective, label, extra in (
        ("multiclass_softprob", "multi:softprob", classes, {"num_class": 3}),
        ("multiclass_softmax", "multi:softmax", classes, {"num_class": 3}),
        ("multitarget", "reg:squarederror", targets, {})):
    params = {"tree_method": "hist", "max_depth": 4, "eta": 0.3, "objective": objective,
              "nthread": 1, "seed": 1, **extra}
    booster = xgb.train(params, xgb.DMatrix(Xn, label=label), 20)
    booster.save_model(str(out / f"xgb_{name}.json"))
    predictions = booster.predict(xgb.DMatrix(rows_n)).astype(float).tolist()
    as_json = [[None if np.isnan(v) else float(v) for v in row] for row in rows_n]
    (out / f"xgb_{name}.cases.json").write_text(json.dumps({"rows": as_json,
                                                             "predictions": predictions}))

# One small regressor in both of XGBoost's formats: the native engine reads JSON only, so the
# UBJSON copy is served by the library (the xgboost runtime's fallback).
booster = xgb.train({"max_depth": 3, "objective": "reg:squarederror", "nthread": 1, "seed": 1},
                    xgb.DMatrix(Xn, label=targets[:, 0]), 10)
booster.save_model(str(out / "xgb_small_reg.json"))
booster.save_model(str(out / "xgb_small_reg.ubj"))
print(f"wrote multi-output and UBJSON XGBoost test models to {out}")
