"""The model: a linear score from weights.json. forklift's python runtime calls load(path) once
per version and predict(model, features) per request, with features as {name: column}: numpy
arrays for numbers and booleans (one entry per row), lists of str for strings."""
import json

import numpy as np


def load(path):
    with open(path) as f:
        weights = json.load(f)
    return weights["bias"], weights["per_feature"]


def predict(model, features):
    bias, per_feature = model
    rows = len(next(iter(features.values())))
    score = np.full(rows, bias, dtype=np.float64)
    for name, weight in per_feature.items():
        score += weight * np.asarray(features[name], dtype=np.float64)
    return score
