"""Many models in bounded memory (--memory-budget-mb): versions load on their first request,
concurrent requests share one load, the versions least worth keeping are evicted to stay within
the budget (and their memory, python worker processes included, really goes), pinned models load
at start and stay, and a request that waits too long for a load gets 503 with Retry-After."""
import concurrent.futures
import shutil
import time
from pathlib import Path

from conftest import EXAMPLE_MODELS, Server, metric, python_runtime, selftest_cases  # noqa: F401


def copies(tmp_path, source, count, prefix, edit=None):
    repo = tmp_path / "repo"
    for i in range(1, count + 1):
        dst = repo / f"{prefix}{i}" / "1"
        shutil.copytree(EXAMPLE_MODELS / source / "1", dst)
        if edit:
            yaml = dst / "model.yaml"
            yaml.write_text(edit(yaml.read_text(), i))
    return repo


def body(model, source="eta", version=None):
    b = {"model_id": model, "features": selftest_cases(source, 1)[0]["features"]}
    if version:
        b["version"] = version
    return b


def loads_of(server, model):
    return [e for e in server.events("version_ready") if e["model_id"] == model]


def loads_once_logged(server, model, at_least, timeout=30):
    """The loads of `model` once at least `at_least` are in the log read so far: the server logs
    a load before it answers, but this side reads its log on another thread, which lags behind
    on a busy machine (seen under ASan in CI)."""
    deadline = time.time() + timeout
    while len(loads_of(server, model)) < at_least and time.time() < deadline:
        time.sleep(0.05)
    return loads_of(server, model)


def children_of(pid):
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return out


def test_versions_load_on_their_first_request_and_share_one_load(tmp_path):
    repo = copies(tmp_path, "eta", 4, "m")
    s = Server(repo, "--memory-budget-mb", "512")
    try:
        # Nothing loads at start: the repository is read, the models are routable.
        assert loads_of(s, "m1") == []
        meta = s.get("/v2/models/m1")
        assert meta.status_code == 200 and meta.json()["versions"] == ["1"]
        assert s.get("/readyz").status_code == 200
        # Sixteen requests at once for a version not in memory: one load, sixteen answers.
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: s.post("/infer", body("m1")).status_code, range(16)))
        assert codes == [200] * 16
        assert len(loads_once_logged(s, "m1", 1)) == 1
        assert metric(s, "forklift_model_cold_loads_total") == 1
        assert metric(s, "forklift_cold_start_requests_total", result="waited") >= 1
        # A version in memory answers at once, and the answer is the model's.
        r = s.post("/infer", body("m1"))
        expected = selftest_cases("eta", 1)[0]["expected"]
        assert r.status_code == 200 and abs(r.json()["output"] - expected) <= 1e-5 * abs(expected)
        assert metric(s, "forklift_model_version_memory_bytes", model_id="m1", version="1") > 0
        assert metric(s, "forklift_memory_budget_hits_total") >= 1
        # The admin API (and the web UI's models page) shows the budget.
        budget = s.admin("GET", "/admin/models").json()["memory_budget"]
        assert budget["cold_loads"] == 1 and 0 < budget["used_bytes"] <= budget["budget_bytes"]
    finally:
        assert s.stop() == 0


def test_the_least_worth_keeping_are_evicted_to_stay_within_the_budget(tmp_path):
    repo = copies(tmp_path, "eta", 6, "m")
    # Each copy of eta holds about 2 MB: a 5 MB budget keeps two.
    s = Server(repo, "--memory-budget-mb", "5")
    try:
        for _ in range(20):  # m1 is busy
            assert s.post("/infer", body("m1")).status_code == 200
        assert s.post("/infer", body("m2")).status_code == 200  # m2 is not
        for i in range(3, 6):
            assert s.post("/infer", body(f"m{i}")).status_code == 200
        used = metric(s, "forklift_memory_budget_used_bytes")
        assert 0 < used <= 5 * 2 ** 20
        evicted = [e["model_id"] for e in s.events("version_evicted")]
        assert len(evicted) >= 3 and evicted[0] == "m2", evicted
        # The busy one stayed through the churn, and answers without loading again.
        assert "m1" not in evicted
        assert s.post("/infer", body("m1")).status_code == 200
        assert len(loads_of(s, "m1")) == 1
        # An evicted one answers again after a cold start.
        assert s.post("/infer", body("m2")).status_code == 200
        assert len(loads_once_logged(s, "m2", 2)) == 2
        states = s.admin("GET", "/admin/models/m3").json()["versions"][0]
        assert states["on_demand"] != states["in_memory"]
    finally:
        assert s.stop() == 0


def test_pinned_models_load_at_start_and_are_never_evicted(tmp_path):
    repo = copies(tmp_path, "eta", 4, "m",
                  edit=lambda text, i: text + ("memory: pinned\n" if i == 1 else ""))
    s = Server(repo, "--memory-budget-mb", "3")
    try:
        assert len(loads_of(s, "m1")) == 1  # before any request
        for i in (2, 3, 4, 2, 3):
            assert s.post("/infer", body(f"m{i}")).status_code == 200
        assert all(e["model_id"] != "m1" for e in s.events("version_evicted"))
        assert s.post("/infer", body("m1")).status_code == 200
        assert len(loads_of(s, "m1")) == 1
    finally:
        assert s.stop() == 0


def test_a_request_waits_at_most_the_bound_then_gets_503_with_retry_after(tmp_path,
                                                                         python_runtime):
    repo = copies(tmp_path, "cancel_risk", 1, "c")
    # A python model takes a second or two to start: far more than 1 ms.
    s = Server(repo, "--memory-budget-mb", "2048", "--cold-start-wait-ms", "1")
    try:
        r = s.post("/infer", body("c1", "cancel_risk"))
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After") == "1"
        assert "cold start" in r.json()["error"]
        # The load goes on for the requests after it.
        deadline = time.time() + 60
        while not loads_of(s, "c1") and time.time() < deadline:
            time.sleep(0.2)
        assert s.post("/infer", body("c1", "cancel_risk")).status_code == 200
        assert metric(s, "forklift_cold_start_requests_total", result="timeout") >= 1
    finally:
        assert s.stop() == 0


def test_evicted_python_workers_exit_and_their_memory_goes(tmp_path, python_runtime):
    repo = copies(tmp_path, "cancel_risk", 3, "c",
                  edit=lambda text, i: text.replace("runtime: python",
                                                    "runtime: python\nruntime_options: {processes: 2}"))
    # One python model with its two workers at a time. Starting two workers can outlast the
    # default wait on a loaded machine under ASan: this test is about the memory, not the wait.
    s = Server(repo, "--memory-budget-mb", "200", "--cold-start-wait-ms", "60000")
    try:
        pid = s.proc.pid
        workers = {}
        for name in ("c1", "c2", "c3"):
            assert s.post("/infer", body(name, "cancel_risk"), timeout=60).status_code == 200
            deadline = time.time() + 20
            while time.time() < deadline and len(children_of(pid)) != 2:
                time.sleep(0.2)
            workers[name] = children_of(pid)
            assert len(workers[name]) == 2, workers
        # c1's and c2's workers exited when they were evicted; only c3's remain.
        assert not (workers["c1"] & workers["c3"]) and not (workers["c2"] & workers["c3"])
        for gone in workers["c1"] | workers["c2"]:
            assert not Path(f"/proc/{gone}").exists() or \
                "zombie" in Path(f"/proc/{gone}/status").read_text()
        assert metric(s, "forklift_model_evictions_total") == 2
    finally:
        assert s.stop() == 0


def test_without_a_budget_everything_loads_at_start_as_before(tmp_path):
    repo = copies(tmp_path, "eta", 2, "m")
    s = Server(repo)
    try:
        assert len(loads_of(s, "m1")) == 1 and len(loads_of(s, "m2")) == 1
        assert metric(s, "forklift_memory_budget_bytes") is None
        assert s.admin("GET", "/admin/models").json()["memory_budget"] is None
    finally:
        assert s.stop() == 0
