"""The seed's stack for the optional runtimes' models: Flask behind Gunicorn serving `fraud`
(the same TorchScript file through PyTorch, one intra-op thread) and `cancel_risk` (the same
model.py and pickle), with the same JSON contract as forklift's POST /infer.

Run: FORKLIFT_MODELS=build/models gunicorn -w 2 -b 127.0.0.1:9091 --chdir bench flask_runtimes:app
"""
import importlib.util
import os
import uuid
from pathlib import Path

import numpy as np
import torch
import yaml
from flask import Flask, jsonify, request

MODELS = Path(os.environ.get("FORKLIFT_MODELS", "build/models"))
torch.set_num_threads(1)


def schema(model_dir):
    manifest = yaml.safe_load((model_dir / "model.yaml").read_text())
    return [(f["name"], f["type"]) for f in manifest["features"]]


FRAUD_DIR = MODELS / "fraud" / "1"
FRAUD_FEATURES = schema(FRAUD_DIR)
fraud = torch.jit.load(str(FRAUD_DIR / "model.pt"))
fraud.eval()

CANCEL_DIR = MODELS / "cancel_risk" / "1"
CANCEL_FEATURES = schema(CANCEL_DIR)
spec = importlib.util.spec_from_file_location("cancel_risk_model", CANCEL_DIR / "model.py")
cancel_code = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cancel_code)
cancel_state = cancel_code.load(str(CANCEL_DIR / "pipeline.pkl"))

CHECKS = {"float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "bool": lambda v: isinstance(v, bool),
          "string": lambda v: isinstance(v, str)}

app = Flask(__name__)


def validated(rows, features):
    """Validates each row the way a careful Flask service would; returns the columns."""
    columns = {name: [] for name, _ in features}
    for row in rows:
        if not isinstance(row, dict) or set(row) != set(columns):
            raise ValueError("features must name exactly the model's features")
        for name, kind in features:
            if not CHECKS[kind](row[name]):
                raise ValueError(f"feature '{name}' must be a {kind}")
            columns[name].append(row[name])
    return columns


def predict_fraud(columns):
    x = np.column_stack([np.asarray(columns[name], dtype=np.float32) for name, _ in FRAUD_FEATURES])
    with torch.inference_mode():
        return fraud(torch.from_numpy(x)).numpy().tolist()


def predict_cancel(columns):
    arrays = {}
    for name, kind in CANCEL_FEATURES:
        dtype = {"float": np.float64, "int": np.int64, "bool": np.bool_}.get(kind)
        arrays[name] = columns[name] if dtype is None else np.asarray(columns[name], dtype=dtype)
    return np.asarray(cancel_code.predict(cancel_state, arrays), dtype=np.float64).tolist()


MODELS_BY_ID = {"fraud": (FRAUD_FEATURES, predict_fraud),
                "cancel_risk": (CANCEL_FEATURES, predict_cancel)}


@app.post("/infer")
def infer():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or body.get("model_id") not in MODELS_BY_ID:
        return jsonify(error="bad request"), 400
    features, predict = MODELS_BY_ID[body["model_id"]]
    rows = body["instances"] if "instances" in body else [body.get("features")]
    try:
        columns = validated(rows, features)
    except ValueError as e:
        return jsonify(error=str(e)), 400
    outputs = predict(columns)
    answer = {"model_id": body["model_id"], "version": 1, "request_id": uuid.uuid4().hex}
    if "instances" in body:
        answer["outputs"] = outputs
    else:
        answer["output"] = outputs[0]
    return jsonify(answer)
