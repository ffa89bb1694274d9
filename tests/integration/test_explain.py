"""Explanations over real HTTP: `"explain": true` on /infer and the v2 `explain` parameter give each
row's feature contributions (exact TreeSHAP in the native engine), which add up to the output
and equal XGBoost's own pred_contribs; models that cannot explain, and bad requests, say why."""
import json
import math

import numpy as np
import pytest

from conftest import Server, metric, selftest_cases


def eta_rows(version=2):
    return [c["features"] for c in selftest_cases("eta", version)]


def test_one_row_explained_adds_up_to_its_output(server):
    row = eta_rows()[0]
    r = server.post("/infer", {"model_id": "eta", "version": 2, "features": row, "explain": True})
    assert r.status_code == 200, r.text
    answer = r.json()
    explanation = answer["explanation"]
    assert list(explanation["contributions"]) == list(row)  # every feature, in schema order
    total = explanation["bias"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(answer["output"], rel=1e-5)
    # Without explain, the same answer and no explanation.
    plain = server.post("/infer", {"model_id": "eta", "version": 2, "features": row}).json()
    assert plain["output"] == answer["output"] and "explanation" not in plain


def test_a_batch_gets_one_explanation_per_row_equal_to_xgboosts(server, example_models):
    xgb = pytest.importorskip("xgboost")
    rows = eta_rows()[:10]
    r = server.post("/infer", {"model_id": "eta", "version": 2, "instances": rows,
                               "explain": True})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer["explanations"]) == len(rows)
    booster = xgb.Booster(model_file=str(example_models / "eta" / "2" / "model.json"))
    names = list(rows[0])
    matrix = np.array([[np.nan if row[n] is None else row[n] for n in names] for row in rows],
                      dtype=np.float32)
    want = booster.predict(xgb.DMatrix(matrix, feature_names=names), pred_contribs=True)
    for got, expected, output in zip(answer["explanations"], want, answer["outputs"], strict=True):
        values = [got["contributions"][n] for n in names] + [got["bias"]]
        for a, b in zip(values, expected, strict=True):
            assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), (a, b)
        assert sum(values) == pytest.approx(output, rel=1e-5)


def test_v2_explain_parameter_adds_a_contributions_tensor(server):
    row = eta_rows()[1]
    inputs = [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in row.items()]
    r = server.post("/v2/models/eta/versions/2/infer",
                    {"inputs": inputs, "parameters": {"explain": True}})
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    c = outputs["contributions"]
    assert c["datatype"] == "FP64" and c["shape"] == [1, len(row) + 1]
    assert c["parameters"]["columns"].split(",") == list(row) + ["bias"]
    assert sum(c["data"]) == pytest.approx(outputs["eta_seconds"]["data"][0], rel=1e-5)
    r = server.post("/v2/models/eta/versions/2/infer",
                    {"inputs": inputs, "parameters": {"explain": "yes"}})
    assert r.status_code == 400 and "explain" in r.json()["error"]


def test_explanations_refused_with_the_reason(repo_copy):
    # eta version 1 served by the library: explanations need the native engine.
    manifest = repo_copy / "eta" / "1" / "model.yaml"
    manifest.write_text(manifest.read_text() + "engine: library\n")
    s = Server(repo_copy)
    try:
        row = eta_rows(1)[0]
        r = s.post("/infer", {"model_id": "eta", "version": 1, "features": row, "explain": True})
        assert r.status_code == 400, r.text
        assert "XGBoost library" in r.json()["error"]
        # A runtime without explanations: refused before predicting, counted as the client's.
        surge = selftest_cases("surge", 1)[0]["features"]
        r = s.post("/infer", {"model_id": "surge", "features": surge, "explain": True})
        assert r.status_code == 400, r.text
        assert "does not explain" in r.json()["error"]
        assert metric(s, "forklift_requests_total", model_id="surge", version="1",
                      outcome="client_error") == 1
        assert metric(s, "forklift_requests_total", model_id="surge", version="1",
                      outcome="ok") == 0
        # Bad values and too many rows.
        r = s.post("/infer", {"model_id": "eta", "features": row, "explain": 1})
        assert r.status_code == 400 and "'explain' must be true or false" in r.json()["error"]
        r = s.post("/infer", {"model_id": "eta", "version": 2, "instances": [row] * 11,
                              "explain": True})
        assert r.status_code == 400 and "at most 10 rows" in r.json()["error"]
        # explain: false is a plain request.
        r = s.post("/infer", {"model_id": "eta", "version": 2, "features": row, "explain": False})
        assert r.status_code == 200 and "explanation" not in r.json()
    finally:
        assert s.stop() == 0
