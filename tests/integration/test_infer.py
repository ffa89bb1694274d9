"""POST /infer: forklift's own request shape, over real HTTP."""
import json
import math

import pytest

from conftest import selftest_cases


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-4)


def test_health_and_readiness(server):
    assert server.get("/healthz").json() == {"live": True}
    assert server.get("/readyz").json() == {"ready": True}


def test_one_row_answers_what_xgboost_predicted(server):
    for case in selftest_cases("eta", 2)[:5]:
        r = server.post("/infer", {"model_id": "eta", "features": case["features"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model_id"] == "eta"
        assert body["version"] == 2  # the latest version serves by default
        assert close(body["output"], case["expected"])
        assert body["request_id"]
        assert r.headers["x-request-id"] == body["request_id"]


def test_explicit_version(server):
    case = selftest_cases("eta", 1)[3]
    r = server.post("/infer", {"model_id": "eta", "version": 1, "features": case["features"]})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert close(r.json()["output"], case["expected"])


def test_batch(server):
    cases = selftest_cases("eta", 2)
    r = server.post("/infer", {"model_id": "eta", "instances": [c["features"] for c in cases]})
    assert r.status_code == 200, r.text
    outputs = r.json()["outputs"]
    assert len(outputs) == len(cases)
    assert all(close(o, c["expected"]) for o, c in zip(outputs, cases))


def test_custom_cpp_runtime(server):
    for case in selftest_cases("surge", 1):
        r = server.post("/infer", {"model_id": "surge", "features": case["features"]})
        assert r.status_code == 200, r.text
        assert close(r.json()["output"], case["expected"])


def test_request_id_from_the_client_is_kept(server):
    case = selftest_cases("eta", 2)[0]
    r = server.post("/infer", {"model_id": "eta", "features": case["features"]},
                    headers={"x-request-id": "trace-123"})
    assert r.json()["request_id"] == "trace-123"


def test_keep_alive_reuses_one_connection(server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    case = selftest_cases("surge", 1)[0]
    body = json.dumps({"model_id": "surge", "features": case["features"]})
    for _ in range(20):
        conn.request("POST", "/infer", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()


def eta_features():
    return dict(selftest_cases("eta", 2)[1]["features"])


BAD_REQUESTS = [
    ("malformed JSON", '{"model_id": "eta", "features": {', 400, "malformed JSON"),
    ("not an object", "[1, 2]", 400, "must be a JSON object"),
    ("empty body", "", 400, "body is empty"),
    ("no model id", {"features": {}}, 400, "'model_id' is required"),
    ("unknown model", {"model_id": "nope", "features": {}}, 404, "unknown model 'nope'"),
    ("unknown version", {"model_id": "eta", "version": 99, "features": {}}, 404,
     "version 99 of model 'eta' does not exist"),
    ("bad version", {"model_id": "eta", "version": -2, "features": {}}, 400,
     "'version' must be a positive integer"),
    ("wrong type", "wrong_type", 400, "feature 'trip_distance_km' must be a number"),
    ("missing feature", "missing", 400, "missing feature 'pickup_lat'"),
    ("unknown feature", "unknown", 400, "unknown feature 'colour'"),
    ("null not allowed", "null", 400, "feature 'driver_rating' is null"),
    ("NaN as Python writes it", "nan", 400, "feature 'driver_rating' is NaN or Infinity"),
    ("wrong type for int", {"model_id": "surge", "features": {
        "open_requests": 1.5, "available_drivers": 1, "hour_of_day": 1, "is_raining": False,
        "city": "sf"}}, 400, "feature 'open_requests' must be an integer"),
    ("wrong type for bool", {"model_id": "surge", "features": {
        "open_requests": 1, "available_drivers": 1, "hour_of_day": 1, "is_raining": "no",
        "city": "sf"}}, 400, "feature 'is_raining' must be true or false"),
]


def build_body(spec):
    if not isinstance(spec, str) or spec not in ("wrong_type", "missing", "unknown", "null", "nan"):
        return spec
    if spec == "nan":  # json.dumps writes a bare NaN, which is not JSON
        f = eta_features()
        f["driver_rating"] = float("nan")
        return json.dumps({"model_id": "eta", "features": f})
    f = eta_features()
    if spec == "wrong_type":
        f["trip_distance_km"] = "far"
    elif spec == "missing":
        del f["pickup_lat"]
    elif spec == "unknown":
        f["colour"] = 1
    elif spec == "null":
        f["driver_rating"] = None
    return {"model_id": "eta", "features": f}


@pytest.mark.parametrize("name,spec,status,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_a_clear_answer(server, name, spec, status, message):
    r = server.post("/infer", build_body(spec))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"], r.json()
    # The server is still fine afterwards.
    assert server.get("/healthz").status_code == 200


def test_missing_value_allowed_where_the_schema_says_so(server):
    case = selftest_cases("eta", 2)[0]
    assert case["features"]["traffic_index"] is None
    r = server.post("/infer", {"model_id": "eta", "features": case["features"]})
    assert r.status_code == 200, r.text
    assert close(r.json()["output"], case["expected"])


def test_wrong_method_is_405(server):
    r = server.get("/infer")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert "error" in r.json()


def test_unknown_path_is_404(server):
    r = server.get("/predict")
    assert r.status_code == 404
    assert "no route" in r.json()["error"]


def test_huge_body_is_413(example_models):
    from conftest import Server
    s = Server(example_models, "--max-body-bytes", "1024")
    try:
        body = '{"model_id": "eta", "features": {' + '"x": 1,' * 500 + '"y": 2}}'
        r = s.post("/infer", body)
        assert r.status_code == 413
        assert "larger than the limit of 1024 bytes" in r.json()["error"]
        assert s.get("/healthz").status_code == 200
    finally:
        assert s.stop() == 0


def test_garbage_http_is_400_and_the_server_survives(server):
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert server.get("/healthz").status_code == 200


def test_oversized_headers_are_431(server):
    r = server.get("/healthz", headers={"x-padding": "a" * 20000})
    assert r.status_code == 431
    assert "headers are larger" in r.json()["error"]


def test_head_is_get_without_the_body(server):
    for path in ("/readyz", "/healthz", "/v2/health/ready", "/v2/models/eta", "/metrics"):
        get, head = server.get(path), server.session.head(server.url + path, timeout=10)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["Content-Type"] == get.headers["Content-Type"]
        if path != "/metrics":  # the counters move between the two calls
            assert int(head.headers["Content-Length"]) == len(get.content), path
    assert server.session.head(server.url + "/v2/models/nope", timeout=10).status_code == 404
    assert server.session.head(server.url + "/infer", timeout=10).status_code == 405
    # The connection stays usable after a HEAD (no body was expected or sent).
    assert server.get("/readyz").json()["ready"] is True
