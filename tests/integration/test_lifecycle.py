"""Loading, swapping and stopping: the server keeps answering through all of it."""
import json
import shutil
import signal
import subprocess
import threading
import time

import requests

from conftest import FORKLIFT, Server, example_version_count, selftest_cases


def hammer(url, body, stop, results):
    """Sends `body` to url/infer on one keep-alive connection until `stop` is set."""
    session = requests.Session()
    while not stop.is_set():
        try:
            r = session.post(url + "/infer", data=body, timeout=10)
            results.append((r.status_code, r.json().get("version")))
        except requests.RequestException as e:  # counted as a failure below
            results.append((None, repr(e)))


def test_new_version_swaps_in_under_load_without_errors(repo_copy):
    s = Server(repo_copy, "--poll-seconds", "0.2")
    try:
        body = json.dumps({"model_id": "eta", "features": selftest_cases("eta", 2)[1]["features"]})
        stop = threading.Event()
        results = []
        threads = [threading.Thread(target=hammer, args=(s.url, body, stop, results))
                   for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        # Publish version 3 (version 2's artifact) the way a deploy would: copy, then rename.
        staging = repo_copy / "eta" / ".staging-3"
        shutil.copytree(repo_copy / "eta" / "2", staging)
        staging.rename(repo_copy / "eta" / "3")
        deadline = time.time() + 20
        while time.time() < deadline and not any(v == 3 for _, v in list(results)):
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        versions = {v for _, v in results}
        failures = [r for r in results if r[0] != 200]
        assert failures == [], failures[:5]
        assert 3 in versions, f"version 3 never answered; saw {versions}"
        assert len(results) > 100
        assert s.events("version_ready")[-1]["version"] == 3
    finally:
        assert s.stop() == 0


def test_failing_new_version_never_takes_traffic(repo_copy):
    s = Server(repo_copy, "--poll-seconds", "0.2")
    try:
        bad = repo_copy / "eta" / ".staging-3"
        shutil.copytree(repo_copy / "eta" / "2", bad)
        lines = (bad / "selftest.jsonl").read_text().splitlines()
        case = json.loads(lines[0])
        case["expected"] += 100.0
        (bad / "selftest.jsonl").write_text("\n".join([json.dumps(case)] + lines[1:]) + "\n")
        bad.rename(repo_copy / "eta" / "3")
        deadline = time.time() + 20
        while time.time() < deadline and not s.events("version_rejected"):
            time.sleep(0.05)
        rejected = s.events("version_rejected")
        assert rejected and rejected[0]["version"] == 3
        assert "self-tests failed" in rejected[0]["reason"]
        r = s.post("/infer", {"model_id": "eta", "features": case["features"]})
        assert r.status_code == 200 and r.json()["version"] == 2
        metrics = s.get("/metrics").text
        assert 'forklift_selftest_passed{model_id="eta",version="3"} 0' in metrics
        assert 'forklift_model_version_state{model_id="eta",version="3",state="failed"} 1' in metrics
    finally:
        assert s.stop() == 0


def test_broken_manifest_is_rejected_and_the_rest_serve(repo_copy):
    (repo_copy / "eta" / "3").mkdir()
    (repo_copy / "eta" / "3" / "model.yaml").write_text("runtime: xgboost\nfeatures: [\n")
    (repo_copy / "ghost" / "1").mkdir(parents=True)
    (repo_copy / "ghost" / "1" / "model.yaml").write_text(
        "runtime: xgboost\nartifact: missing.json\n"
        "features: [{name: a, type: float}]\noutput: {name: y, type: float}\n")
    s = Server(repo_copy)
    try:
        reasons = {(e["model_id"], e["version"]): e["reason"] for e in s.events("version_rejected")}
        assert "eta/3/model.yaml" in reasons[("eta", 3)]
        assert "field 'artifact'" in reasons[("ghost", 1)]
        assert "missing.json" in reasons[("ghost", 1)]
        # eta falls back to version 2; ghost has nothing, so the server is live but not ready.
        r = s.post("/infer", {"model_id": "eta", "features": selftest_cases("eta", 2)[1]["features"]})
        assert r.status_code == 200 and r.json()["version"] == 2
        ready = s.get("/readyz")
        assert ready.status_code == 503
        assert "ghost" in ready.json()["error"]
        assert s.get("/healthz").status_code == 200
        assert s.post("/infer", {"model_id": "ghost", "features": {"a": 1}}).status_code == 503
    finally:
        assert s.stop() == 0


def test_sigterm_under_load_answers_every_accepted_request(example_models):
    s = Server(example_models)
    body = json.dumps({"model_id": "eta", "instances": [
        c["features"] for c in selftest_cases("eta", 2)] * 20})
    stop = threading.Event()
    results = []
    threads = [threading.Thread(target=hammer, args=(s.url, body, stop, results)) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    code = s.proc.wait(30)
    stop.set()
    for t in threads:
        t.join()
    assert code == 0
    answered = [r for r in results if r[0] == 200]
    # Requests sent after the listener closed fail to connect, which is expected; any request
    # that reached the server got a full answer, never an error status.
    assert all(r[0] in (200, None) for r in results), [r for r in results if r[0] not in (200, None)]
    refused = [r for r in results if r[0] is None]
    assert all("Connection" in r[1] or "RemoteDisconnected" in r[1] for r in refused), refused[:3]
    assert len(answered) > 10
    s._reader.join(5)
    assert s.events("stopped")


def test_logs_are_json_lines(server):
    assert server.logs
    for line in server.logs:
        event = json.loads(line)
        assert {"ts", "level", "event"} <= event.keys()


def test_metrics_after_traffic(server):
    features = selftest_cases("eta", 2)[1]["features"]
    for _ in range(3):
        assert server.post("/infer", {"model_id": "eta", "features": features}).status_code == 200
    server.post("/infer", {"model_id": "eta", "features": {"nope": 1}})
    text = server.get("/metrics").text
    lines = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1])
             for l in text.splitlines() if l and not l.startswith("#")}
    assert lines['forklift_requests_total{model_id="eta",version="2",outcome="ok"}'] >= 3
    assert lines['forklift_requests_total{model_id="eta",version="2",outcome="client_error"}'] >= 1
    assert lines['forklift_request_duration_seconds_count{model_id="eta",version="2"}'] >= 4
    assert lines['forklift_model_versions_serving{model_id="eta"}'] == 2
    assert lines['forklift_selftest_cases{model_id="eta",version="1",result="passed"}'] == 24
    assert lines['forklift_model_load_duration_seconds{model_id="eta",version="2"}'] > 0


def test_selftest_command_passes_on_the_examples(example_models):
    out = subprocess.run([FORKLIFT, "selftest", str(example_models)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS  eta/1" in out.stdout and "PASS  surge/1" in out.stdout
    assert f"{example_version_count()} passed, 0 failed" in out.stdout


def test_selftest_command_fails_with_a_readable_report(repo_copy):
    lines = (repo_copy / "surge" / "1" / "selftest.jsonl").read_text().splitlines()
    case = json.loads(lines[1])
    case["expected"] = 9.0
    lines[1] = json.dumps(case)
    (repo_copy / "surge" / "1" / "selftest.jsonl").write_text("\n".join(lines) + "\n")
    out = subprocess.run([FORKLIFT, "selftest", str(repo_copy)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "FAIL  surge/1" in out.stdout
    assert "twice the demand: expected 9, got 1.5" in out.stdout
    assert f"{example_version_count() - 1} passed, 1 failed" in out.stdout
    only = subprocess.run([FORKLIFT, "selftest", str(repo_copy), "--model", "eta"],
                          capture_output=True, text=True, timeout=60)
    assert only.returncode == 0 and "surge" not in only.stdout


def test_port_in_use_fails_clearly(server):
    out = subprocess.run([FORKLIFT, "serve", "--model-repository", str(server.repository),
                          "--host", "127.0.0.1", "--port", str(server.port), "--admin-port", "0",
                          "--state-file", "none"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "Address already in use" in out.stdout


def test_request_log_when_asked(example_models):
    s = Server(example_models, "--log-requests", "1")
    try:
        features = selftest_cases("eta", 2)[1]["features"]
        r = s.post("/infer", {"model_id": "eta", "features": features},
                   headers={"x-request-id": "logged-1"})
        assert r.status_code == 200
        s.post("/infer", {"model_id": "eta", "features": {}})
        assert s.session.head(s.url + "/readyz", timeout=10).status_code == 200
        deadline = time.time() + 5
        while time.time() < deadline and len(s.events("request")) < 3:
            time.sleep(0.05)
        ok, bad, head = s.events("request")[:3]
        assert ok["request_id"] == "logged-1" and ok["status"] == 200
        assert ok["model_id"] == "eta" and ok["version"] == 2 and ok["path"] == "/infer"
        assert ok["duration_us"] >= 0
        assert bad["status"] == 400 and ok["method"] == bad["method"] == "POST"
        assert head["method"] == "HEAD" and head["path"] == "/readyz"
    finally:
        assert s.stop() == 0


def test_no_request_log_by_default(server):
    server.post("/infer", {"model_id": "eta", "features": {}})
    assert server.events("request") == []


def test_bad_flags_are_refused(example_models):
    out = subprocess.run([FORKLIFT, "serve", "--model-repository", str(example_models),
                          "--log-requests", "2"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "log-requests" in out.stderr
    out = subprocess.run([FORKLIFT, "serve", "--model-repository", "/nonexistent"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "/nonexistent" in out.stderr
