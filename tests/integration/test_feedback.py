"""Feedback labels joined with their predictions by request id, live quality per version in
/metrics and the admin API, the quality guardrail of a rollout, and hostile feedback."""
import json
import math
import threading
import time

import pytest
import requests

from conftest import Server, metric
from test_rollouts import ENV, TOKEN, rollout, wait_until_ended

REGRESSION = "quality: {task: regression}\n"
BINARY = "quality: {task: binary_classification, threshold: 0.5}\n"


def write_version(repo, model, version, value, quality=REGRESSION):
    d = repo / model / str(version)
    d.mkdir(parents=True)
    (d / "value.txt").write_text(f"{value}\n")
    (d / "model.yaml").write_text(
        "runtime: constant\nartifact: value.txt\nfeatures:\n  - {name: x, type: float}\n"
        "output: {name: y, type: float}\n" + quality)
    (d / "selftest.jsonl").write_text(json.dumps({"features": {"x": 1}, "expected": value}) + "\n")


def make_repo(root):
    r = root / "repo"
    write_version(r, "eta", 1, 5.0)
    write_version(r, "churn", 1, 0.8, BINARY)
    write_version(r, "plain", 1, 1.0, quality="")
    return r


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the tests that only send bad input (each started its own: seconds)."""
    s = Server(make_repo(tmp_path_factory.mktemp("feedback")))
    yield s
    assert s.stop() == 0


def predict(server, model, request_id, rows=1):
    body = {"model_id": model, "instances": [{"x": 1.0}] * rows} if rows > 1 else \
        {"model_id": model, "features": {"x": 1.0}}
    r = server.post("/infer", body, headers={"X-Request-Id": request_id})
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-Id"] == request_id
    return r.json()


def feedback(server, body, path="/feedback"):
    return server.post(path, body)


def test_labels_score_a_regressor_mae_bias_and_coverage(repo, tmp_path):
    events = tmp_path / "events"
    s = Server(repo, "--events-dir", str(events))
    try:
        for i in range(10):
            predict(s, "eta", f"trip-{i}")
        # Late labels, half of them: the model predicts 5, the truth was 4 and 7.
        r = feedback(s, {"feedback": [{"request_id": f"trip-{i}", "label": 4 if i % 2 else 7}
                                      for i in range(5)]})
        assert r.status_code == 200, r.text
        assert r.json() == {"matched": 5, "pending": 0, "unmatched": 0, "refused": 0,
                            "problems": []}
        labels = {"model_id": "eta", "version": "1"}
        assert metric(s, "forklift_feedback_labels_total", **labels) == 5
        # Errors: +1, +1 and -2, -2, -2 -> MAE 1.6, bias -0.8.
        assert metric(s, "forklift_quality_mae", **labels) == pytest.approx(1.6)
        assert metric(s, "forklift_quality_bias", **labels) == pytest.approx(-0.8)
        assert metric(s, "forklift_quality_label_coverage", **labels) == pytest.approx(0.5)
        assert metric(s, "forklift_quality_auc", **labels) is None  # not a classifier
        model = s.admin("GET", "/admin/models/eta").json()
        assert model["quality"] == [{"version": 1, "task": "regression", "labels_total": 5,
                                     "window_labels": 5, "coverage": pytest.approx(0.5),
                                     "mae": pytest.approx(1.6),
                                     "bias": pytest.approx(-0.8)}]
    finally:
        s.stop()
    lines = [json.loads(l) for f in sorted(events.glob("*.jsonl")) for l in open(f)]
    labelled = [e for e in lines if e["type"] == "feedback"]
    assert len(labelled) == 5
    assert labelled[0]["matched"] is True and labelled[0]["model_id"] == "eta"
    assert labelled[0]["output"] == 5 and labelled[0]["label"] == 7
    # The prediction event carries the same request id: an offline join needs nothing else.
    assert any(e["type"] == "prediction" and e["request_id"] == "trip-0" for e in lines)


def test_labels_score_a_binary_classifier(repo):
    s = Server(repo)
    try:
        for i in range(4):
            predict(s, "churn", f"u-{i}")  # always 0.8: predicts 1
        r = feedback(s, {"feedback": [{"request_id": "u-0", "label": True},
                                      {"request_id": "u-1", "label": 1},
                                      {"request_id": "u-2", "label": 0},
                                      {"id": "u-3", "label": False}]})
        assert r.json()["matched"] == 4, r.text
        labels = {"model_id": "churn", "version": "1"}
        assert metric(s, "forklift_quality_accuracy", **labels) == pytest.approx(0.5)
        assert metric(s, "forklift_quality_log_loss", **labels) == pytest.approx(
            (-2 * math.log(0.8) - 2 * math.log(0.2)) / 4)
        assert metric(s, "forklift_quality_auc", **labels) == pytest.approx(0.5)  # one score
    finally:
        s.stop()


def test_a_multi_row_request_takes_one_label_per_row(repo):
    s = Server(repo)
    try:
        predict(s, "eta", "batch-1", rows=3)
        r = feedback(s, {"request_id": "batch-1", "label": 5})
        assert r.status_code == 400 and "3 row(s)" in r.json()["problems"][0], r.text
        predict(s, "eta", "batch-2", rows=3)
        r = feedback(s, {"request_id": "batch-2", "labels": [5, 6, 8]})
        assert r.json()["matched"] == 1, r.text
        assert metric(s, "forklift_quality_mae", model_id="eta", version="1") == \
            pytest.approx(4 / 3)
    finally:
        s.stop()


def test_labels_that_match_nothing_are_counted_not_scored(repo):
    s = Server(repo)
    try:
        predict(s, "eta", "once")
        predict(s, "plain", "no-quality")  # no quality section: not kept
        r = feedback(s, {"feedback": [{"request_id": "never-seen", "label": 1},
                                      {"request_id": "no-quality", "label": 1},
                                      {"request_id": "once", "label": 5},
                                      {"request_id": "once", "label": 5}]})  # a duplicate
        assert r.json() == {"matched": 1, "pending": 0, "unmatched": 3, "refused": 0,
                            "problems": []}
        assert metric(s, "forklift_feedback_unmatched_total") == 3
        # The v2 route only joins predictions of its model.
        predict(s, "eta", "scoped")
        r = feedback(s, {"request_id": "scoped", "label": 5}, "/v2/models/churn/feedback")
        assert r.json()["unmatched"] == 1
        r = feedback(s, {"request_id": "scoped", "label": 5}, "/v2/models/eta/feedback")
        assert r.json()["matched"] == 1
        predict(s, "churn", "c")
        r = feedback(s, {"request_id": "c", "label": 0.5})
        assert r.status_code == 400 and "0 or 1" in r.json()["problems"][0]
    finally:
        s.stop()


@pytest.mark.parametrize("body, words", [
    ("{", "malformed JSON"),
    ("[]", "must be an object"),
    ('{"label": 1}', "request_id"),
    ('{"request_id": "a"}', "needs a label"),
    ('{"request_id": "a", "label": "yes"}', "number or a boolean"),
    ('{"request_id": "a", "labels": []}', "needs a label"),
    ('{"request_id": "a", "labels": 3}', "must be an array"),
    ('{"request_id": 7, "label": 1}', "request id"),
    ('{"request_id": "' + "x" * 129 + '", "label": 1}', "1 to 128"),
    ('{"request_id": "a", "id": "b", "label": 1}', "one of"),
    ('{"request_id": "a", "label": 1, "extra": 2}', "unknown field"),
    ('{"feedback": []}', "no items"),
    ('{"feedback": [{"request_id": "a", "label": 1}, 3]}', "item 1"),
    ('{"feedback": [' + ",".join(['{"request_id": "a", "label": 1}'] * 10001) + "]}",
     "at most 10000"),
    ('{"request_id": "a", "labels": [' + ",".join(["1"] * 1001) + "]}", "at most 1000"),
    ('{"request_id": "a", "label": 1e308}', "from -1e12 to 1e12"),
    ('{"request_id": "a\\n", "label": 1}', "printable"),
    ('{"request_id": "a", "label": 1, "labels": [1]}', "one of label or labels"),
    ('{"feedback": {"request_id": "a", "label": 1}}', "must be an array"),
], ids=lambda v: v if len(v) < 60 else v[:40] + "...")
@pytest.mark.not_under_tsan
def test_hostile_feedback_is_refused_with_a_reason(shared_server, body, words):
    r = feedback(shared_server, body)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"], r.text
    assert shared_server.get("/feedback").status_code == 405


def test_a_refused_label_leaves_its_prediction_for_a_corrected_one(repo):
    s = Server(repo)
    try:
        predict(s, "eta", "three", rows=3)
        assert feedback(s, {"request_id": "three", "labels": [1, 2]}).status_code == 400
        r = feedback(s, {"request_id": "three", "labels": [1, 2, 3]})
        assert r.json()["matched"] == 1, r.text
        r = feedback(s, {"request_id": "x", "label": 1}, "/v2/models/nope/feedback")
        assert r.status_code == 404, r.text
    finally:
        s.stop()


def test_a_feedback_token_is_required_when_configured(repo, tmp_path):
    token_file = tmp_path / "feedback-token"
    token_file.write_text("feedback-token-0123456789\n")
    s = Server(repo, "--feedback-token-file", str(token_file))
    try:
        predict(s, "eta", "secured")
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            r = s.post("/feedback", {"request_id": "secured", "label": 5}, headers=headers)
            assert r.status_code == 401, r.text
        r = s.post("/feedback", {"request_id": "secured", "label": 5},
                   headers={"Authorization": "Bearer feedback-token-0123456789"})
        assert r.json()["matched"] == 1, r.text
    finally:
        s.stop()


def test_feedback_can_be_turned_off(repo):
    s = Server(repo, "--feedback-memory-mb", "0")
    try:
        predict(s, "eta", "a")
        r = feedback(s, {"request_id": "a", "label": 1})
        assert r.status_code == 404 and "feedback is off" in r.text
        assert metric(s, "forklift_feedback_index_bytes") is None
    finally:
        s.stop()


def test_the_predictions_kept_stay_within_their_memory(repo):
    s = Server(repo, "--feedback-memory-mb", "1")
    try:
        session = requests.Session()
        # An entry with a 120-byte id takes about 400 bytes: 4,000 are past 1 MiB.
        for i in range(4000):
            r = session.post(s.url + "/infer", data='{"model_id": "eta", "features": {"x": 1}}',
                             headers={"X-Request-Id": f"req-{i:06d}-" + "p" * 109})
            assert r.status_code == 200
        assert metric(s, "forklift_feedback_index_bytes") <= 1 << 20
        assert metric(s, "forklift_feedback_index_evicted_total") > 0
        # The newest are still there, the oldest are gone.
        r = feedback(s, {"feedback": [{"request_id": f"req-{3999:06d}-" + "p" * 109, "label": 5},
                                      {"request_id": f"req-{0:06d}-" + "p" * 109, "label": 5}]})
        assert r.json()["matched"] == 1 and r.json()["unmatched"] == 1
    finally:
        s.stop()


def test_a_version_whose_live_quality_is_worse_is_rolled_back(tmp_path):
    repo = tmp_path / "repo"
    write_version(repo, "m", 1, 5.0)
    write_version(repo, "m", 2, 9.0)  # the truth is 5: version 2 is off by 4
    pinned = {"deployment": {"routes": [{"version": 1, "weight": 1}], "shadows": []},
              "history": [], "unloaded": False, "revision": 1}
    (tmp_path / "state.json").write_text(json.dumps({"format": 1, "models": {"m": pinned},
                                                     "audit": []}))
    s = Server(repo, "--rollout-tick-ms", "100", state_file=tmp_path / "state.json", env=ENV)
    stop = threading.Event()

    def traffic():  # each answer labelled at once with the truth, 5
        session = requests.Session()
        n = 0
        while not stop.is_set():
            rid = f"t-{n}"
            n += 1
            session.post(s.url + "/infer", data='{"model_id": "m", "features": {"x": 1}}',
                         headers={"X-Request-Id": rid})
            session.post(s.url + "/feedback", data=json.dumps({"request_id": rid, "label": 5}))

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    policy = {"shadow": False,
              "canary": {"steps": [50, 100], "hold_seconds": 3600, "min_requests": 10},
              "guardrails": {"quality_metric": "mae", "max_quality_loss": 1, "min_labels": 20,
                             "p99_slack_ms": 100}}
    try:
        r = s.admin("POST", "/admin/models/m/rollout", {"version": 2, "policy": policy},
                    token=TOKEN)
        assert r.status_code == 200, r.text
        answer = wait_until_ended(s)
    finally:
        stop.set()
        worker.join(10)
        s.stop()
    r = answer["rollout"]
    assert r["phase"] == "rolled_back", r
    assert r["reason"].startswith("live quality: mae"), r["reason"]
    signals = r["timeline"][-1]["signals"]
    assert signals["candidate_quality"] == pytest.approx(4)
    assert signals["baseline_quality"] == pytest.approx(0)


def test_a_late_label_finds_its_prediction_among_the_events_in_postgresql(repo):
    """A prediction pushed out of memory is found in the events table, and the label scores it."""
    import postgres
    from conftest import require_or_skip
    require_or_skip(postgres.available(),
                    "PostgreSQL is not installed (scripts/install-deps.sh installs it)")
    pg = postgres.PostgresServer()
    s = Server(repo, "--events-postgres", pg.conninfo, "--feedback-memory-mb", "1")
    try:
        predict(s, "eta", "early-bird")
        session = requests.Session()
        for i in range(4000):  # pushes "early-bird" out of the 1 MiB kept in memory
            session.post(s.url + "/infer", data='{"model_id": "eta", "features": {"x": 1}}',
                         headers={"X-Request-Id": f"later-{i:06d}-" + "p" * 100})
        assert metric(s, "forklift_feedback_index_evicted_total") > 0
        deadline = time.time() + 30  # the events reach the table within a second or so
        while time.time() < deadline and \
                (metric(s, "forklift_events_written_total", sink="postgres") or 0) < 4001:
            time.sleep(0.2)
        r = feedback(s, {"request_id": "early-bird", "label": 4})
        assert r.status_code == 200 and r.json()["pending"] == 1, r.text
        while time.time() < deadline and metric(s, "forklift_feedback_late_matched_total") != 1:
            time.sleep(0.1)
        assert metric(s, "forklift_feedback_late_matched_total") == 1
        assert metric(s, "forklift_quality_mae", model_id="eta", version="1") == pytest.approx(1)
        # An id nobody predicted is looked up too, and counted unmatched.
        r = feedback(s, {"request_id": "never", "label": 1})
        assert r.json()["pending"] == 1
        while time.time() < deadline and metric(s, "forklift_feedback_pending") != 0:
            time.sleep(0.1)
        assert metric(s, "forklift_feedback_unmatched_total") >= 1
    finally:
        s.stop()
        pg.close()
