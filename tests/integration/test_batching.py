"""Dynamic batching (model.yaml's `dynamic_batching`) over real HTTP: concurrent requests to one
version are predicted together, every client still gets its own answers, and the rest of the
server's behaviour (errors, the v2 route, draining on SIGTERM) is unchanged."""
import http.client
import json
import math
import re
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import Server, selftest_cases


def batched_eta(repo, max_batch_size, max_queue_delay_us):
    """Keeps only eta version 2, batching with the given settings."""
    shutil.rmtree(repo / "eta" / "1")
    manifest = repo / "eta" / "2" / "model.yaml"
    manifest.write_text(manifest.read_text() +
                        f"dynamic_batching:\n  max_batch_size: {max_batch_size}\n"
                        f"  max_queue_delay_us: {max_queue_delay_us}\n")


def metric(server, name):
    text = server.get("/metrics").text
    m = re.search(rf'^{name}{{model_id="eta",version="2"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def infer(url, body):
    return requests.post(url + "/infer", json=body, timeout=30)


def staged_infer(port, body):
    """A connection that has sent all of a POST /infer but its last byte, and that byte: the
    server cannot take the request before the byte arrives."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data) + data[:-1])
    return sock, data[-1:]


def read_answer(sock):
    with sock:
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def test_concurrent_requests_share_one_runtime_call_and_get_their_own_answers(repo_copy):
    # The longest queue delay allowed (1 s) and room for four rows: the four concurrent one-row
    # requests below are answered by one runtime call, started as soon as the fourth arrives.
    batched_eta(repo_copy, 4, 1_000_000)
    s = Server(repo_copy)
    try:
        cases = selftest_cases("eta", 2)[:4]
        # The four must all reach the queue within the 1 s delay, which threads each opening a
        # connection and sending a request do not promise on a busy 2-core CI machine (under a
        # sanitizer, too). So the requests are staged first, each on its own connection short of
        # its last byte; then the four last bytes go out back to back: what remains inside the
        # 1 s is four one-byte sends and the server's reading of them.
        staged = [staged_infer(s.port, {"model_id": "eta", "features": c["features"]})
                  for c in cases]
        for sock, last_byte in staged:
            sock.sendall(last_byte)
        answers = [read_answer(sock) for sock, _ in staged]
        for (status, body), case in zip(answers, cases, strict=True):
            assert status == 200, body
            assert math.isclose(body["output"], case["expected"], rel_tol=1e-5)
        assert metric(s, "forklift_batch_requests_sum") == 4
        assert metric(s, "forklift_batch_rows_sum") == 4
        assert metric(s, "forklift_batch_requests_count") == 1
    finally:
        assert s.stop() == 0


def test_many_clients_with_rows_and_batches_all_get_the_right_answers(repo_copy):
    batched_eta(repo_copy, 16, 200)
    s = Server(repo_copy)
    try:
        cases = selftest_cases("eta", 2)
        wrong = []
        rows_sent = []

        def client(n):
            session = requests.Session()
            for i in range(40):
                if (n + i) % 3 == 0:
                    chosen = [cases[(n + i + k) % len(cases)] for k in range(5)]
                    r = session.post(s.url + "/infer", timeout=30, json={
                        "model_id": "eta", "instances": [c["features"] for c in chosen]})
                    got = r.json().get("outputs", []) if r.status_code == 200 else []
                    expected = [c["expected"] for c in chosen]
                else:
                    case = cases[(n * 7 + i) % len(cases)]
                    r = session.post(s.url + "/infer", timeout=30,
                                     json={"model_id": "eta", "features": case["features"]})
                    got = [r.json().get("output")] if r.status_code == 200 else []
                    expected = [case["expected"]]
                rows_sent.append(len(expected))
                if len(got) != len(expected) or not all(
                        math.isclose(g, e, rel_tol=1e-5) for g, e in zip(got, expected)):
                    wrong.append((r.status_code, r.text, expected))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []
        assert metric(s, "forklift_batch_rows_sum") == sum(rows_sent)
        assert metric(s, "forklift_batch_requests_sum") == 12 * 40
        # No call held more than max_batch_size rows: the 16-row bucket holds every call.
        text = s.get("/metrics").text
        le16 = re.search(r'^forklift_batch_rows_bucket{model_id="eta",version="2",le="16"} (\d+)$',
                         text, re.M)
        count = metric(s, "forklift_batch_rows_count")
        assert le16 and int(le16.group(1)) == count
        ok = re.search(r'^forklift_requests_total{model_id="eta",version="2",outcome="ok"} (\d+)$',
                       text, re.M)
        assert ok and int(ok.group(1)) == 12 * 40
    finally:
        assert s.stop() == 0


def test_bad_requests_v2_and_errors_behave_as_without_batching(repo_copy):
    batched_eta(repo_copy, 8, 0)
    s = Server(repo_copy)
    try:
        case = next(c for c in selftest_cases("eta", 2) if None not in c["features"].values())
        r = s.post("/infer", {"model_id": "eta", "features": {**case["features"],
                                                               "trip_distance_km": "far"}})
        assert r.status_code == 400 and "trip_distance_km" in r.json()["error"]
        r = s.post("/infer", '{"model_id": "eta", "features": {')
        assert r.status_code == 400
        inputs = [{"name": k, "shape": [1], "datatype": "FP32", "data": [v]}
                  for k, v in case["features"].items()]
        r = s.post("/v2/models/eta/infer", {"inputs": inputs})
        assert r.status_code == 200, r.text
        assert math.isclose(r.json()["outputs"][0]["data"][0], case["expected"], rel_tol=1e-5)
        r = s.post("/infer", {"model_id": "eta", "features": case["features"]},
                   headers={"x-request-id": "abc-123"})
        assert r.status_code == 200 and r.json()["request_id"] == "abc-123"
        assert r.headers["x-request-id"] == "abc-123"
    finally:
        assert s.stop() == 0


def test_sigterm_answers_requests_waiting_in_the_queue(repo_copy):
    batched_eta(repo_copy, 64, 1_000_000)  # they wait a full second for company
    s = Server(repo_copy)
    cases = selftest_cases("eta", 2)[:3]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(infer, s.url, {"model_id": "eta", "features": c["features"]})
                   for c in cases]
        time.sleep(0.3)  # all three are queued by now; the delay keeps them there
        assert not any(f.done() for f in futures)
        assert s.stop() == 0
        for f, case in zip(futures, cases, strict=True):
            r = f.result()
            assert r.status_code == 200
            assert math.isclose(r.json()["output"], case["expected"], rel_tol=1e-5)
