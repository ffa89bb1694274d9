"""Retrains the linear score: forklift's python trainer calls train(data, params, report) with
the rows to train on (data.X, data.y, data.feature_names, data.rows()) and writes what it returns
as the new version's artifact (weights.json; model.py, copied from the parent version, loads it)."""
import json

import numpy as np


def train(data, params, report):
    x = np.column_stack([data.X, np.ones(len(data))])  # the last column fits the bias
    coefficients, *_ = np.linalg.lstsq(x, data.y, rcond=None)
    report(1, 1)
    weights = {"bias": float(coefficients[-1]),
               "per_feature": {name: float(c) for name, c in zip(data.feature_names, coefficients)}}
    return json.dumps(weights).encode()
