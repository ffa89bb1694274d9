"""Rider cancellation risk, served by forklift's python runtime.

forklift calls load(path) once per version and predict(model, features) for every request,
with features as {name: column}: numpy arrays for numbers and booleans, lists of str for strings.
"""
import pickle

import numpy as np

RIDE_TYPES = ("standard", "xl", "lux")


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def matrix(features):
    """The pipeline's input: numeric columns, then ride_type one-hot (unknown types all zero)."""
    ride_type = features["ride_type"]
    one_hot = np.array([[t == known for known in RIDE_TYPES] for t in ride_type], dtype=np.float64)
    numeric = np.column_stack([
        features["pickup_eta_min"],
        features["surge_multiplier"],
        features["rider_cancels_30d"].astype(np.float64),
        features["hour_of_day"].astype(np.float64),
        features["is_airport"].astype(np.float64),
    ])
    return np.hstack([numeric, one_hot.reshape(len(ride_type), len(RIDE_TYPES))])


def predict(model, features):
    return model.predict_proba(matrix(features))[:, 1]
