"""The one inference path (core/inference): both protocols go through it, so what one route
does with a version the other does too. Written for a defect: the Open Inference Protocol route
called a batching version's blocking predict, so a v2 request waiting for its batch held up its
event loop and every other connection on it."""
import json
import math
import select
import shutil
import socket
import http.client

from conftest import Server, selftest_cases


def batched_eta(repo):
    """eta version 2 only, batching two rows a call: a lone request waits up to the longest queue
    delay allowed (1 s) for a second one."""
    shutil.rmtree(repo / "eta" / "1")
    manifest = repo / "eta" / "2" / "model.yaml"
    manifest.write_text(manifest.read_text() +
                        "dynamic_batching:\n  max_batch_size: 2\n  max_queue_delay_us: 1000000\n")


def send(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + data)
    return sock


def answered(sock):
    """Whether the server has started answering on `sock` (without reading the answer)."""
    return bool(select.select([sock], [], [], 0)[0])


def read_answer(sock):
    with sock:
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def complete_case():
    """A self-test case of eta v2 with every feature given (v2 tensors have no null)."""
    return next(c for c in selftest_cases("eta", 2) if None not in c["features"].values())


def v2_body(case):
    return {"inputs": [{"name": name, "datatype": "FP32" if isinstance(value, float) else "INT64",
                        "shape": [1], "data": [value]}
                       for name, value in case["features"].items()]}


def test_a_v2_request_waiting_for_its_batch_does_not_hold_up_its_event_loop(repo_copy):
    batched_eta(repo_copy)
    # One serving thread: one event loop for every connection.
    s = Server(repo_copy, "--threads", "1")
    try:
        case = complete_case()
        # The v2 request waits (up to 1 s) in the batching queue for a second row. A /healthz on
        # another connection meanwhile must be answered while it waits. With the old blocking
        # call, /healthz could only be answered after it: the loop was inside predict. Tried a few
        # times, so that a CI machine stalling this process for a whole second cannot fail it.
        outcomes = []
        for _ in range(3):
            waiting = send(s.port, "POST", "/v2/models/eta/infer", v2_body(case))
            health = send(s.port, "GET", "/healthz")
            status, _ = read_answer(health)
            assert status == 200
            outcomes.append(not answered(waiting))
            status, body = read_answer(waiting)
            assert status == 200, body
            assert body["model_version"] == "2"
            assert len(body["outputs"][0]["data"]) == 1
            assert math.isclose(body["outputs"][0]["data"][0], case["expected"], rel_tol=1e-5)
            if outcomes[-1]:
                break
        assert any(outcomes), "/healthz was answered only after the batched v2 request, 3 times"
    finally:
        assert s.stop() == 0


def test_both_protocols_give_the_same_answer_and_count_on_the_same_version(repo_copy):
    s = Server(repo_copy)
    try:
        case = complete_case()
        one = s.post("/infer", {"model_id": "eta", "version": 2, "features": case["features"]})
        two = s.post("/v2/models/eta/versions/2/infer", v2_body(case))
        assert one.status_code == 200, one.text
        assert two.status_code == 200, two.text
        assert two.json()["outputs"][0]["data"] == [one.json()["output"]]
        metrics = s.get("/metrics").text
        assert 'forklift_requests_total{model_id="eta",version="2",outcome="ok"} 2' in metrics
    finally:
        assert s.stop() == 0
