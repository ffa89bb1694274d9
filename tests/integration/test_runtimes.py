"""The optional runtimes over real HTTP: TorchScript (`fraud`) and Python (`cancel_risk`), one row,
batches, the v2 protocol, and a predict() that fails."""
import json
import math
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import Server, metric, selftest_cases
from postgres import wait_until

# Its servers start on every example model: these tests are about fraud and cancel_risk.
EXAMPLE_REPOSITORY = "full"


def check_every_case(server, model_id):
    cases = selftest_cases(model_id, 1)
    for case in cases:
        r = server.post("/infer", {"model_id": model_id, "features": case["features"]})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1
        assert math.isclose(r.json()["output"], case["expected"], rel_tol=1e-5), case["name"]
    # The same rows as one batch give the same answers, in order.
    r = server.post("/infer", {"model_id": model_id,
                               "instances": [c["features"] for c in cases]})
    assert r.status_code == 200, r.text
    outputs = r.json()["outputs"]
    assert len(outputs) == len(cases)
    for got, case in zip(outputs, cases, strict=True):
        assert math.isclose(got, case["expected"], rel_tol=1e-5)


@pytest.mark.usefixtures("torchscript_runtime")
def test_torchscript_model_answers_rows_and_batches(server):
    check_every_case(server, "fraud")
    meta = server.get("/v2/models/fraud").json()
    assert meta["platform"] == "pytorch_torchscript"
    features = selftest_cases("fraud", 1)[0]["features"]
    r = server.post("/infer", {"model_id": "fraud", "features": {**features, "amount": "lots"}})
    assert r.status_code == 400 and "amount" in r.json()["error"]


@pytest.mark.usefixtures("python_runtime")
def test_python_model_answers_rows_batches_and_v2(server):
    check_every_case(server, "cancel_risk")
    case = selftest_cases("cancel_risk", 1)[1]
    inputs = []
    for name, value in case["features"].items():
        datatype = {str: "BYTES", bool: "BOOL", int: "INT64", float: "FP64"}[type(value)]
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    r = server.post("/v2/models/cancel_risk/infer", {"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [pytest.approx(case["expected"], rel=1e-9)]


def patch_cancel_risk(repo, predict_prelude, manifest_extra):
    """Prepends lines to the example Python model's predict() and appends to its model.yaml."""
    code = repo / "cancel_risk" / "1" / "model.py"
    code.write_text(code.read_text().replace(
        "def predict(model, features):\n", "def predict(model, features):\n" + predict_prelude))
    manifest = repo / "cancel_risk" / "1" / "model.yaml"
    manifest.write_text(manifest.read_text() + manifest_extra)


# predict() lines that hang (for an hour) on rows with surge_multiplier 98.
HANG_ON_98 = ("    if (features['surge_multiplier'] == 98).any():\n"
              "        import time; time.sleep(3600)\n")


def python_workers(repo):
    """The pids of the worker processes serving models from `repo`."""
    return set(subprocess.run(["pgrep", "-f", f"runtime-worker python {repo}"],
                              capture_output=True, text=True).stdout.split())


def assert_workers_leave(repo, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and python_workers(repo):
        time.sleep(0.05)
    assert not python_workers(repo)


@pytest.mark.usefixtures("python_runtime")
def test_a_failing_or_hanging_python_predict_fails_that_request_only(repo_copy):
    patch_cancel_risk(repo_copy, (
        "    if (features['surge_multiplier'] == 99).any():\n"
        "        raise RuntimeError('bikes are not rides')\n"
        "    if (features['surge_multiplier'] == 98).any():\n"
        "        import time; time.sleep(3)\n"), "timeout_ms: 500\n")
    s = Server(repo_copy)
    try:
        features = selftest_cases("cancel_risk", 1)[1]["features"]
        r = s.post("/infer", {"model_id": "cancel_risk",
                              "features": {**features, "surge_multiplier": 99}})
        assert r.status_code == 500
        error = r.json()["error"]
        assert "cancel_risk" in error and "RuntimeError: bikes are not rides" in error
        # The next request, and other models, are fine.
        assert s.post("/infer", {"model_id": "cancel_risk", "features": features}).status_code == 200
        eta = selftest_cases("eta", 2)[0]["features"]
        assert s.post("/infer", {"model_id": "eta", "features": eta}).status_code == 200
        # A predict() that hangs past timeout_ms: 504 at the deadline, counted; the rest go on.
        started = time.monotonic()
        r = s.post("/infer", {"model_id": "cancel_risk",
                              "features": {**features, "surge_multiplier": 98}})
        assert r.status_code == 504, r.text
        assert time.monotonic() - started < 2.5
        assert "timeout_ms (500 ms)" in r.json()["error"] and "cancel_risk" in r.json()["error"]
        assert s.post("/infer", {"model_id": "cancel_risk", "features": features}).status_code == 200
        assert s.post("/infer", {"model_id": "eta", "features": eta}).status_code == 200
        metrics = s.get("/metrics").text
        assert 'forklift_requests_total{model_id="cancel_risk",version="1",outcome="server_error"} 2' \
            in metrics
        assert 'forklift_predict_timeouts_total{model_id="cancel_risk",version="1"} 1' in metrics
    finally:
        assert s.stop() == 0


@pytest.mark.usefixtures("python_runtime")
def test_a_hung_python_worker_process_is_killed_and_replaced_at_the_timeout(repo_copy):
    patch_cancel_risk(
        repo_copy, HANG_ON_98,
        # Not shorter: a healthy call to a freshly started worker should finish within it even
        # on a CI machine busy with the sanitizer suites (500 ms often failed there; 2 s failed
        # once, which the wait below allows for).
        "runtime_options: {processes: 2}\ntimeout_ms: 2000\n")
    s = Server(repo_copy)
    try:
        features = selftest_cases("cancel_risk", 1)[1]["features"]
        workers = lambda: python_workers(repo_copy)
        before = workers()
        assert len(before) == 2, before
        # Three hanging calls, more than there are workers: each is answered 504 at the deadline
        # and its worker killed and replaced, so the pool never runs out.
        for _ in range(3):
            r = s.post("/infer", {"model_id": "cancel_risk",
                                  "features": {**features, "surge_multiplier": 98}})
            assert r.status_code == 504, r.text
        # Replacements load the model (a second or so, more on a busy machine); then the pool
        # answers as before.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (s.post("/infer", {
                "model_id": "cancel_risk", "features": features}).status_code != 200
                or len(workers() - before) < 2):
            time.sleep(0.2)
        # Then five answers in a row, within the same deadline, rather than the next five: on a
        # CI machine busy with the sanitizer suites and the image builds, one healthy call was
        # seen to stall past its 2 s (an ASan server, 2026-11-30). What is tested is that the
        # pool recovers: two such stalls at most, each a 504 for the time limit, nothing else.
        in_a_row, stalls = 0, []
        while in_a_row < 5:
            assert time.monotonic() < deadline, f"no five answers in a row; stalls: {stalls}"
            r = s.post("/infer", {"model_id": "cancel_risk", "features": features})
            if r.status_code == 200:
                in_a_row += 1
                continue
            assert r.status_code == 504 and "timeout_ms" in r.text, r.text
            stalls.append(r.text)
            assert len(stalls) <= 2, stalls
            in_a_row = 0
        # A stall kills its worker too, and the replacement takes a moment to start, or fails to
        # and the pool's thread starts it later: wait for the pool to be whole again (CI twice
        # counted one worker here), with a bound of its own.
        whole_by = time.monotonic() + 60
        while time.monotonic() < whole_by and len(workers()) != 2:
            time.sleep(0.2)
        after = workers()
        # All replaced, none left.
        assert len(after) == 2 and not (after & before), \
            (before, after, stalls, s.events("python_worker_not_replaced"), s.logs[-15:])
    finally:
        assert s.stop() == 0
    # The workers leave with the server, even one stuck in a call or still loading (they watch
    # their socket to the server).
    assert_workers_leave(repo_copy)


@pytest.mark.usefixtures("python_runtime")
def test_a_python_worker_that_cannot_be_replaced_is_restored_later(repo_copy):
    # A worker dies while new ones cannot start (here: load() refuses while a file exists; on a
    # busy machine, memory): the pool runs one short and says so in the log, and its own thread
    # starts the missing worker once starting works again, without a reload and without a call.
    version_dir = repo_copy / "cancel_risk" / "1"
    code = version_dir / "model.py"
    code.write_text(code.read_text().replace(
        "def load(path):\n",
        "def load(path):\n"
        "    import os\n"
        "    if os.path.exists(os.path.join(os.path.dirname(path), 'block-loads')):\n"
        "        raise RuntimeError('loads are blocked')\n"))
    patch_cancel_risk(repo_copy, ("    if (features['surge_multiplier'] == 97).any():\n"
                                  "        import os; os._exit(1)\n"),
                      "runtime_options: {processes: 2}\n")
    s = Server(repo_copy)
    try:
        features = selftest_cases("cancel_risk", 1)[1]["features"]
        assert len(python_workers(repo_copy)) == 2
        (version_dir / "block-loads").write_text("")
        # (Generous client timeouts: starting a worker under ASan on a busy machine takes seconds.)
        r = s.post("/infer", {"model_id": "cancel_risk",
                              "features": {**features, "surge_multiplier": 97}}, timeout=60)
        assert r.status_code == 500 and "no replacement could be started" in r.text, r.text
        # (The log line may reach the test just after the answer.)
        assert wait_until(lambda: s.events("python_worker_not_replaced"), 10) is not None, \
            s.logs[-10:]
        # One short, the pool still answers, and its thread tries to restore it, and fails.
        r = s.post("/infer", {"model_id": "cancel_risk", "features": features}, timeout=60)
        assert r.status_code == 200, r.text
        assert wait_until(lambda: s.events("python_worker_not_restored"), 60) is not None, \
            s.logs[-10:]
        assert s.events("python_worker_not_restored")[0]["retry_in_seconds"] >= 2
        assert len(python_workers(repo_copy)) == 1
        (version_dir / "block-loads").unlink()
        # The next try (a few seconds later: the pauses double from 1 s) restores it, no call needed.
        restored = lambda: (s.events("python_worker_restored")  # noqa: E731
                            and len(python_workers(repo_copy)) == 2)
        assert wait_until(restored, 90, interval=0.5) is not None, s.logs[-10:]
        r = s.post("/infer", {"model_id": "cancel_risk", "features": features}, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        assert s.stop() == 0
    assert_workers_leave(repo_copy)


@pytest.mark.usefixtures("python_runtime")
def test_python_worker_processes_leave_with_a_killed_server(repo_copy):
    # No timeout_ms: the hung worker is never killed by the server, which itself dies by kill -9
    # (no shutdown code runs); the worker sees its socket close and exits.
    patch_cancel_risk(repo_copy, HANG_ON_98, "runtime_options: {processes: 2}\n")
    s = Server(repo_copy)
    assert len(python_workers(repo_copy)) == 2
    features = selftest_cases("cancel_risk", 1)[1]["features"]
    with ThreadPoolExecutor(1) as pool:
        hung = pool.submit(s.post, "/infer", {"model_id": "cancel_risk",
                                              "features": {**features, "surge_multiplier": 98}})
        time.sleep(0.5)
        assert not hung.done()
        assert s.stop(signal.SIGKILL) == -signal.SIGKILL
        with pytest.raises(requests.ConnectionError):
            hung.result()
    assert_workers_leave(repo_copy)


@pytest.mark.usefixtures("python_runtime")
def test_python_worker_processes_answer_and_survive_a_crash(repo_copy):
    patch_cancel_risk(repo_copy, (
        "    import os, signal\n"
        "    if (features['surge_multiplier'] == 97).any():\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # a crash inside an extension, say\n"
        "    if (features['surge_multiplier'] == 99).any():\n"
        "        raise RuntimeError('bikes are not rides')\n"),
        "runtime_options: {processes: 2}\n")
    s = Server(repo_copy)
    try:
        check_every_case(s, "cancel_risk")
        features = selftest_cases("cancel_risk", 1)[1]["features"]
        r = s.post("/infer", {"model_id": "cancel_risk",
                              "features": {**features, "surge_multiplier": 99}})
        assert r.status_code == 500 and "RuntimeError: bikes are not rides" in r.json()["error"]
        # A worker that dies fails only the call it was in; it is replaced.
        r = s.post("/infer", {"model_id": "cancel_risk",
                              "features": {**features, "surge_multiplier": 97}})
        assert r.status_code == 500 and "worker process died" in r.json()["error"]
        assert "restarted" in r.json()["error"]
        for _ in range(10):
            assert s.post("/infer", {"model_id": "cancel_risk",
                                     "features": features}).status_code == 200
        workers = python_workers(repo_copy)
        assert len(workers) == 2, workers
    finally:
        assert s.stop() == 0
    assert_workers_leave(repo_copy, within=0.5)  # they left with the server


EVERY_TYPE_MANIFEST = """runtime: python
artifact: model.py
runtime_options: {processes: 2}
dynamic_batching: {max_batch_size: 64, max_queue_delay_us: 2000, threads: 2}
features:
  - {name: x, type: float, allow_missing: true}
  - {name: n, type: int}
  - {name: flag, type: bool}
  - {name: city, type: string}
  - {name: emb, type: float_vector, length: 2}
output: {name: y, type: float_vector, length: 2}
"""

# Asserts each column's type in the worker, and answers a float32 matrix: [row's own sum, rows].
EVERY_TYPE_CODE = """import numpy as np
def load(path):
    return None
def predict(model, f):
    rows = len(f['city'])
    assert f['x'].dtype == np.float64 and f['n'].dtype == np.int64, (f['x'].dtype, f['n'].dtype)
    assert f['flag'].dtype == np.bool_ and isinstance(f['city'], list)
    assert f['emb'].shape == (rows, 2) and f['emb'].dtype == np.float32
    x = np.where(np.isnan(f['x']), -1.0, f['x'])
    own = x + f['n'] + f['flag'] + np.array([len(c) for c in f['city']]) + f['emb'].sum(axis=1)
    return np.column_stack([own, np.full(rows, rows)]).astype(np.float32)
"""


@pytest.mark.usefixtures("python_runtime")
def test_worker_processes_get_columns_of_every_type_in_batches(repo_copy):
    """Dynamic batching reaches the worker processes: one call with the rows of many requests,
    as columns, and each request gets its own rows' answers back."""
    version = repo_copy / "columns" / "1"
    version.mkdir(parents=True)
    (version / "model.yaml").write_text(EVERY_TYPE_MANIFEST)
    (version / "model.py").write_text(EVERY_TYPE_CODE)
    (version / "selftest.jsonl").write_text(json.dumps({
        "name": "one row", "expected": [6.5, 1.0],
        "features": {"x": 1.0, "n": 1, "flag": True, "city": "ab", "emb": [1.0, 0.5]}}) + "\n")
    s = Server(repo_copy)
    try:
        def one(i):
            row = {"x": None if i % 3 == 0 else i * 0.5, "n": i, "flag": i % 2 == 0,
                   "city": "c" * (i % 4), "emb": [1.0, i * 0.25]}
            r = s.post("/infer", {"model_id": "columns", "features": row})
            assert r.status_code == 200, r.text
            x = -1.0 if i % 3 == 0 else i * 0.5
            assert r.json()["output"][0] == pytest.approx(x + i + (i % 2 == 0) + i % 4 + 1 + i * 0.25)
            return r.json()["output"][1]  # the rows in the call that answered it
        with ThreadPoolExecutor(16) as pool:
            batch_sizes = list(pool.map(one, range(400)))
        assert max(batch_sizes) > 1, "no two requests ever shared a call"
        calls = metric(s, "forklift_batch_requests_count", model_id="columns", version="1")
        assert metric(s, "forklift_batch_requests_sum", model_id="columns", version="1") == 400
        assert calls < 400, calls
    finally:
        assert s.stop() == 0


@pytest.mark.usefixtures("python_runtime")
@pytest.mark.parametrize("processes", [None, 2])
def test_without_the_python_module_a_python_version_fails_alone_and_says_why(repo_copy, tmp_path,
                                                                              processes):
    """The interpreter is a module (libforklift_python.so): where it is not installed, as in the
    server image without the python runtime, that version is rejected with the reason, in the
    server's process and in worker processes, and the models of other runtimes serve."""
    if processes:
        patch_cancel_risk(repo_copy, "", f"runtime_options: {{processes: {processes}}}\n")
    empty = tmp_path / "no-modules"
    empty.mkdir()
    s = Server(repo_copy, env={"FORKLIFT_MODULE_DIR": str(empty)})
    try:
        versions = s.admin("GET", "/admin/models/cancel_risk").json()["versions"]
        assert [v["state"] for v in versions] == ["failed"]
        rejected = [e for e in s.events("version_rejected") if e["model_id"] == "cancel_risk"]
        assert rejected and "libforklift_python.so is not installed" in rejected[0]["reason"]
        assert str(empty) in rejected[0]["reason"]
        r = s.post("/infer", {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]})
        assert r.status_code == 200, r.text
    finally:
        assert s.stop() == 0


def test_the_native_tree_runtime_serves_eta_like_xgboost(repo_copy):
    for manifest in (repo_copy / "eta").glob("*/model.yaml"):
        manifest.write_text(manifest.read_text().replace("runtime: xgboost", "runtime: tree"))
    s = Server(repo_copy)
    try:
        assert s.get("/v2/models/eta").json()["platform"] == "forklift_tree"
        cases = selftest_cases("eta", 2)
        r = s.post("/infer", {"model_id": "eta", "instances": [c["features"] for c in cases]})
        assert r.status_code == 200, r.text
        for got, case in zip(r.json()["outputs"], cases, strict=True):
            assert math.isclose(got, case["expected"], rel_tol=1e-5), case["name"]
    finally:
        assert s.stop() == 0


def test_xgboost_models_are_served_by_the_native_engine_unless_it_cannot_or_is_told_not_to(
        repo_copy):
    """Issue 20: the native engine by default, proven at load; `engine: library` and a model file
    it cannot read (UBJSON) go to XGBoost, the latter with a logged reason."""
    import shutil
    import xgboost
    eta = repo_copy / "eta"
    shutil.copytree(eta / "2", repo_copy / "eta_library" / "1")
    with open(repo_copy / "eta_library" / "1" / "model.yaml", "a") as f:
        f.write("engine: library\n")
    shutil.copytree(eta / "2", repo_copy / "eta_ubj" / "1")
    ubj = repo_copy / "eta_ubj" / "1"
    xgboost.Booster(model_file=str(ubj / "model.json")).save_model(str(ubj / "model.ubj"))
    (ubj / "model.json").unlink()
    (ubj / "model.yaml").write_text((ubj / "model.yaml").read_text().replace(
        "artifact: model.json", "artifact: model.ubj"))
    s = Server(repo_copy)
    try:
        engines = {}
        for model in ("eta", "eta_library", "eta_ubj"):
            for v in s.admin("GET", f"/admin/models/{model}").json()["versions"]:
                engines[(model, v["version"])] = v["engine"]
        assert engines == {("eta", 1): "native", ("eta", 2): "native",
                           ("eta_library", 1): "library", ("eta_ubj", 1): "library"}
        ready = {(e["model_id"], e["version"]): e for e in s.events("version_ready")}
        assert "checked against XGBoost on" in ready[("eta", 2)]["engine_note"]
        refused = s.events("native_engine_refused")
        assert [e["model_id"] for e in refused] == ["eta_ubj"], refused
        assert "JSON format only" in refused[0]["reason"]
        metrics = s.get("/metrics").text
        assert 'forklift_model_engine_info{model_id="eta",version="2",engine="native"} 1' in metrics
        assert ('forklift_model_engine_info{model_id="eta_ubj",version="1",engine="library"} 1'
                in metrics)
        # Both engines answer the self-tests' rows alike.
        cases = selftest_cases("eta", 2)
        answers = {}
        for model in ("eta", "eta_library", "eta_ubj"):
            r = s.post("/infer", {"model_id": model, "version": 2 if model == "eta" else 1,
                                  "instances": [c["features"] for c in cases]})
            assert r.status_code == 200, r.text
            answers[model] = r.json()["outputs"]
        for a, b, c in zip(answers["eta"], answers["eta_library"], answers["eta_ubj"], strict=True):
            assert math.isclose(a, b, rel_tol=1e-5) and b == c
    finally:
        assert s.stop() == 0


def test_engine_native_refuses_a_version_the_native_engine_cannot_serve(repo_copy):
    import xgboost
    v = repo_copy / "eta" / "2"
    xgboost.Booster(model_file=str(v / "model.json")).save_model(str(v / "model.ubj"))
    (v / "model.yaml").write_text((v / "model.yaml").read_text().replace(
        "artifact: model.json", "artifact: model.ubj") + "engine: native\n")
    s = Server(repo_copy)
    try:
        versions = {x["version"]: x for x in s.admin("GET", "/admin/models/eta").json()["versions"]}
        assert versions[2]["state"] == "failed"
        assert versions[1]["state"] == "ready" and versions[1]["engine"] == "native"
        rejected = [e for e in s.events("version_rejected") if e["version"] == 2]
        assert rejected and "engine: native, but the native engine cannot serve" in rejected[0]["reason"]
    finally:
        assert s.stop() == 0


def test_tree_runtime_serves_a_lightgbm_model_file(tmp_path):
    """LightGBM's own model file (tests/data/lightgbm) served by the tree runtime: its self-tests
    are the predictions LightGBM's test suite asserts for it, run at load, then over HTTP."""
    import json
    import shutil
    from pathlib import Path
    source = Path(__file__).resolve().parents[1] / "data" / "lightgbm"
    version = tmp_path / "repo" / "na_rule" / "1"
    version.mkdir(parents=True)
    shutil.copy(source / "missing_value_handle_na.txt", version / "model.txt")
    (version / "model.yaml").write_text(
        "runtime: tree\nartifact: model.txt\n"
        "features:\n  - {name: x, type: float, allow_missing: true}\n"
        "output: {name: y, type: float}\n")
    xs = [0, 1, 2, 3, 4, 5, 6, 7, None]
    ys = [1, 1, 1, 1, 0, 0, 0, 0, 1]
    (version / "selftest.jsonl").write_text("".join(
        json.dumps({"name": f"x={x}", "features": {"x": x}, "expected": y}) + "\n"
        for x, y in zip(xs, ys)))
    s = Server(tmp_path / "repo")
    try:
        assert s.get("/v2/models/na_rule").json()["platform"] == "forklift_tree"
        r = s.post("/infer", {"model_id": "na_rule", "instances": [{"x": x} for x in xs]})
        assert r.status_code == 200, r.text
        assert all(math.isclose(g, y, abs_tol=1e-7)
                   for g, y in zip(r.json()["outputs"], ys, strict=True))
    finally:
        assert s.stop() == 0
