"""Prediction events: sampled, asynchronous, rotating JSON-lines files, flushed on shutdown."""
import json
import signal

import pytest

from conftest import Server, selftest_cases

TOKEN = "events-token-0123456789"


def read_events(directory):
    events = []
    for f in sorted(directory.glob("events-*.jsonl")):
        events += [json.loads(line) for line in f.read_text().splitlines()]
    return events


def test_every_prediction_and_shadow_comparison_is_written(repo_copy, tmp_path):
    events_dir = tmp_path / "events"
    s = Server(repo_copy, "--events-dir", str(events_dir), env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    cases = selftest_cases("eta", 2)
    try:
        r = s.post("/infer", {"model_id": "eta", "features": cases[1]["features"]},
                   headers={"x-request-id": "one-row"})
        assert r.status_code == 200
        r = s.post("/infer", {"model_id": "eta", "instances": [c["features"] for c in cases[:3]]},
                   headers={"x-request-id": "three-rows"})
        assert r.status_code == 200
        s.post("/infer", {"model_id": "eta", "features": {"bad": 1}})  # failures are not events
        r = s.post("/infer", {"model_id": "eta", "version": 1, "features": cases[1]["features"]},
                   headers={"x-request-id": "version-1"})
        assert r.status_code == 200
        shadow_answer = r.json()["output"]  # what the shadow below should answer
        r = s.admin("PUT", "/admin/models/eta/deployment",
                    {"routes": [], "shadows": [{"version": 1, "sample_rate": 1}]},
                    headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        r = s.post("/infer", {"model_id": "eta", "features": cases[1]["features"]},
                   headers={"x-request-id": "shadowed"})
        assert r.status_code == 200
        answer = r.json()["output"]
    finally:
        assert s.stop(signal.SIGTERM) == 0  # a clean shutdown writes everything queued
    events = read_events(events_dir)
    predictions = [e for e in events if e["type"] == "prediction"]
    shadows = [e for e in events if e["type"] == "shadow"]
    assert [e["request_id"] for e in predictions] == [
        "one-row", "three-rows", "three-rows", "three-rows", "version-1", "shadowed"]
    first = predictions[0]
    assert first["model_id"] == "eta" and first["version"] == 2
    assert first["features"].keys() == cases[1]["features"].keys()
    for name, value in cases[1]["features"].items():  # float32 inputs print in their short form
        assert abs(first["features"][name] - value) <= 1e-6 * max(1.0, abs(value)), name
    assert abs(first["output"] - cases[1]["expected"]) < 1e-2
    assert first["latency_us"] >= 0 and first["time"].endswith("Z")
    assert [e["row"] for e in predictions[1:4]] == [0, 1, 2]
    assert len(shadows) == 1
    sh = shadows[0]
    assert sh["request_id"] == "shadowed"
    assert (sh["primary_version"], sh["shadow_version"]) == (2, 1)
    assert sh["primary_outputs"] == [answer]
    assert sh["shadow_outputs"] == [pytest.approx(shadow_answer, rel=1e-6)]
    assert abs(shadow_answer - answer) > 0.01 * abs(answer)  # the two versions differ here


def test_sampling_and_counters(repo_copy, tmp_path):
    events_dir = tmp_path / "events"
    s = Server(repo_copy, "--events-dir", str(events_dir), "--events-sample", "0.5")
    features = selftest_cases("surge", 1)[0]["features"]
    try:
        for _ in range(400):
            assert s.post("/infer", {"model_id": "surge", "features": features}).status_code == 200
        metrics = s.get("/metrics").text
    finally:
        assert s.stop() == 0
    written = len(read_events(events_dir))
    assert 140 < written < 260, written
    assert 'forklift_events_dropped_total{stage="queue"} 0' in metrics
    assert 'forklift_events_dropped_total{stage="file"} 0' in metrics
    assert 'forklift_events_written_total{sink="file"}' in metrics


def test_files_rotate_and_old_ones_go(repo_copy, tmp_path):
    events_dir = tmp_path / "events"
    s = Server(repo_copy, "--events-dir", str(events_dir), "--events-max-file-mb", "1",
               "--events-max-files", "2")
    body = {"model_id": "eta", "instances": [c["features"] for c in selftest_cases("eta", 2)] * 40}
    try:
        for _ in range(30):  # ~30 * 960 rows of ~700 bytes: about 20 MB of events
            assert s.post("/infer", body).status_code == 200
    finally:
        assert s.stop() == 0
    files = sorted(events_dir.glob("events-*.jsonl"))
    assert len(files) == 2
    assert all(f.stat().st_size <= 1 << 20 for f in files)
