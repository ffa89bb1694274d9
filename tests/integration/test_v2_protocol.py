"""Open Inference Protocol v2 over real HTTP; every answer is checked against the published
OpenAPI description (third_party/open-inference-protocol/open_inference_rest.yaml)."""
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import selftest_cases

SPEC_PATH = Path(os.environ.get(
    "FORKLIFT_OPENAPI",
    Path(__file__).resolve().parents[2] / "third_party/open-inference-protocol/open_inference_rest.yaml"))
SPEC = yaml.safe_load(SPEC_PATH.read_text())


def check(schema_name, body):
    """Validates `body` against components/schemas/<schema_name> of the OpenAPI description."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    jsonschema.validate(body, schema)
    return body


def spec_response_schema(path, method, status):
    """The schema name the OpenAPI description gives for one response, or None."""
    op = SPEC["paths"][path][method]
    resp = op["responses"].get(str(status))
    assert resp is not None, f"{method.upper()} {path} does not document status {status}"
    content = resp.get("content", {}).get("application/json")
    return content["schema"]["$ref"].rsplit("/", 1)[1] if content else None


def test_server_live_and_ready(server):
    assert server.get("/v2/health/live").status_code == 200
    r = server.get("/v2/health/ready")
    assert r.status_code == 200
    assert r.json()["ready"] is True


def test_server_metadata(server):
    for path in ("/v2", "/v2/"):
        r = server.get(path)
        assert r.status_code == 200
        body = check(spec_response_schema("/v2/", "get", 200), r.json())
        assert body["name"] == "forklift"


def test_model_metadata(server):
    name = spec_response_schema("/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}", "get", 200)
    body = check(name, server.get("/v2/models/eta").json())
    assert body["name"] == "eta"
    assert body["versions"] == ["1", "2"]
    assert body["platform"] == "xgboost_json"
    assert len(body["inputs"]) == 16
    assert body["inputs"][0] == {"name": "trip_distance_km", "datatype": "FP32", "shape": [-1]}
    assert body["outputs"] == [{"name": "eta_seconds", "datatype": "FP32", "shape": [-1]}]
    check(name, server.get("/v2/models/eta/versions/1").json())
    surge = check(name, server.get("/v2/models/surge").json())
    assert {i["datatype"] for i in surge["inputs"]} == {"INT64", "BOOL", "BYTES"}


def test_model_ready(server):
    r = server.get("/v2/models/eta/ready")
    assert r.status_code == 200
    assert r.json() == {"name": "eta", "ready": True}
    assert server.get("/v2/models/eta/versions/1/ready").status_code == 200
    assert server.get("/v2/models/eta/versions/5/ready").status_code == 404
    r = server.get("/v2/models/nope/ready")
    assert r.status_code == 404
    check("metadata_model_error_response", r.json())


def per_feature_request(cases, datatype="FP32"):
    names = list(cases[0]["features"])
    return {"id": "req-1", "inputs": [
        {"name": n, "shape": [len(cases)], "datatype": datatype,
         "data": [c["features"][n] for c in cases]} for n in names]}


INFER = "/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/infer"


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_one_tensor_per_feature(server, datatype):
    cases = selftest_cases("eta", 2)[1:6]  # rows without missing values
    request = per_feature_request(cases, datatype)
    check("inference_request", request)
    r = server.post("/v2/models/eta/infer", request)
    assert r.status_code == 200, r.text
    body = check(spec_response_schema(INFER, "post", 200), r.json())
    assert body["model_name"] == "eta"
    assert body["model_version"] == "2"
    assert body["id"] == "req-1"
    out = body["outputs"][0]
    assert out["name"] == "eta_seconds" and out["datatype"] == "FP32" and out["shape"] == [5]
    for got, case in zip(out["data"], cases, strict=True):
        assert got == pytest.approx(case["expected"], rel=1e-5)


def test_infer_one_matrix_tensor_nested_data(server):
    cases = selftest_cases("eta", 1)[1:4]
    names = list(cases[0]["features"])
    request = {"inputs": [{"name": "input-0", "shape": [3, 16], "datatype": "FP32",
                           "data": [[c["features"][n] for n in names] for c in cases]}]}
    r = server.post("/v2/models/eta/versions/1/infer", request)
    assert r.status_code == 200, r.text
    body = check("inference_response", r.json())
    assert body["model_version"] == "1"
    assert body["id"]  # the server's request id when the client sent none
    for got, case in zip(body["outputs"][0]["data"], cases, strict=True):
        assert got == pytest.approx(case["expected"], rel=1e-5)


def test_infer_int_bool_bytes_tensors(server):
    cases = selftest_cases("surge", 1)
    f = [c["features"] for c in cases]
    request = {"inputs": [
        {"name": "open_requests", "shape": [len(f)], "datatype": "INT64",
         "data": [x["open_requests"] for x in f]},
        {"name": "available_drivers", "shape": [len(f), 1], "datatype": "INT32",
         "data": [[x["available_drivers"]] for x in f]},
        {"name": "hour_of_day", "shape": [len(f)], "datatype": "INT32",
         "data": [x["hour_of_day"] for x in f]},
        {"name": "is_raining", "shape": [len(f)], "datatype": "BOOL",
         "data": [x["is_raining"] for x in f]},
        {"name": "city", "shape": [len(f)], "datatype": "BYTES", "data": [x["city"] for x in f]},
    ], "outputs": [{"name": "surge_multiplier"}]}
    check("inference_request", request)
    r = server.post("/v2/models/surge/infer", request)
    assert r.status_code == 200, r.text
    body = check("inference_response", r.json())
    assert body["outputs"][0]["data"] == pytest.approx([c["expected"] for c in cases])


V2_ERRORS = [
    ("unknown input", {"inputs": [{"name": "nope", "shape": [1], "datatype": "FP32", "data": [1]},
                                  {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]},
     400, "unknown input 'nope'"),
    ("shape and data disagree", {"inputs": [{"name": "m", "shape": [2, 16], "datatype": "FP32",
                                             "data": [1] * 16}]}, 400, "data has 16"),
    ("bad datatype", {"inputs": [{"name": "m", "shape": [1, 16], "datatype": "COMPLEX",
                                  "data": [1] * 16}]}, 400, "'COMPLEX' is not supported"),
    ("strings for floats", {"inputs": [{"name": "m", "shape": [1, 16], "datatype": "FP32",
                                        "data": ["a"] * 16}]}, 400, "data must be numbers"),
    ("no inputs", {"id": "1"}, 400, "'inputs' is required"),
    ("malformed", "{", 400, "malformed JSON"),
]


@pytest.mark.parametrize("name,body,status,message", V2_ERRORS, ids=[e[0] for e in V2_ERRORS])
def test_infer_errors_match_the_error_schema(server, name, body, status, message):
    r = server.post("/v2/models/eta/infer", body)
    assert r.status_code == status, r.text
    check(spec_response_schema(INFER, "post", 400), r.json())
    assert message in r.json()["error"]


def test_unknown_model_is_404_with_error_body(server):
    r = server.post("/v2/models/nope/infer", {"inputs": []})
    assert r.status_code == 404
    check("inference_error_response", r.json())
    r = server.get("/v2/models/nope")
    assert r.status_code == 404
    check("metadata_model_error_response", r.json())
