"""The seed's stack, as the baseline: Flask behind Gunicorn serving the same `eta` XGBoost model
with the same JSON contract as forklift's POST /infer (one row or a batch of instances).

Run: FORKLIFT_ETA_DIR=build/models/eta/2 gunicorn -w 2 -b 127.0.0.1:9090 \
       --chdir bench flask_baseline:app
"""
import os
import uuid
from pathlib import Path

import numpy as np
import xgboost as xgb
import yaml
from flask import Flask, jsonify, request

MODEL_DIR = Path(os.environ.get("FORKLIFT_ETA_DIR", "build/models/eta/2"))
manifest = yaml.safe_load((MODEL_DIR / "model.yaml").read_text())
FEATURES = [f["name"] for f in manifest["features"]]
booster = xgb.Booster()
booster.load_model(str(MODEL_DIR / "model.json"))
booster.set_param({"nthread": 1})

app = Flask(__name__)


def row_of(features):
    """Validates one feature object the way a careful Flask service would."""
    if not isinstance(features, dict):
        raise ValueError("features must be an object")
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown feature '{sorted(unknown)[0]}'")
    row = []
    for name in FEATURES:
        if name not in features:
            raise ValueError(f"missing feature '{name}'")
        value = features[name]
        if value is None:
            row.append(np.nan)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            row.append(float(value))
        else:
            raise ValueError(f"feature '{name}' must be a number")
    return row


@app.post("/infer")
def infer():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or body.get("model_id") != "eta":
        return jsonify(error="bad request"), 400
    try:
        if "instances" in body:
            rows = [row_of(f) for f in body["instances"]]
        else:
            rows = [row_of(body.get("features"))]
    except ValueError as e:
        return jsonify(error=str(e)), 400
    predictions = booster.inplace_predict(np.asarray(rows, dtype=np.float32))
    answer = {"model_id": "eta", "version": 2, "request_id": uuid.uuid4().hex}
    if "instances" in body:
        answer["outputs"] = [float(p) for p in predictions]
    else:
        answer["output"] = float(predictions[0])
    return jsonify(answer)
