"""The admin API over real HTTP: deployments, splits, promote, rollback, the model repository
extension, tokens, and state that survives a restart."""
import collections
import json
import signal
import threading
import time

import pytest
import requests

from conftest import Server, example_model_ids, selftest_cases

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def admin_server(repo_copy, tmp_path):
    s = Server(repo_copy, state_file=tmp_path / "state.json", env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    yield s
    assert s.stop() == 0


def eta_body(**extra):
    return {"model_id": "eta", "features": selftest_cases("eta", 2)[1]["features"], **extra}


def answered_version(server, **extra):
    r = server.post("/infer", eta_body(**extra))
    assert r.status_code == 200, r.text
    return r.json()["version"]


@pytest.mark.not_under_tsan
def test_mutating_calls_need_the_token(admin_server):
    for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
        r = admin_server.admin("POST", "/admin/models/eta/promote", {"version": 1}, token=token)
        assert r.status_code == 401, token
        assert "admin token" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert admin_server.admin("POST", "/v2/repository/index").status_code == 401
    assert admin_server.admin("PUT", "/admin/models/eta/deployment", {"routes": []}).status_code == 401
    # Reads need no token; nothing changed.
    r = admin_server.admin("GET", "/admin/models/eta/deployment")
    assert r.json() == {"model_id": "eta", "deployment": {"routes": [], "shadows": []}}
    assert answered_version(admin_server) == 2


@pytest.mark.not_under_tsan
def test_without_a_configured_token_nothing_can_change(repo_copy):
    s = Server(repo_copy)
    try:
        r = s.admin("POST", "/admin/models/eta/promote", {"version": 1}, token="anything")
        assert r.status_code == 401
        assert "no admin token" in r.json()["error"]
        assert s.events("admin_token_missing")
    finally:
        assert s.stop() == 0


@pytest.mark.not_under_tsan
def test_the_admin_listener_is_not_the_data_plane(admin_server):
    assert admin_server.admin("GET", "/admin/models").status_code == 200
    assert admin_server.get("/admin/models").status_code == 404


@pytest.mark.not_under_tsan
def test_promote_and_rollback_change_what_infer_answers(admin_server):
    assert answered_version(admin_server) == 2
    r = admin_server.admin("POST", "/admin/models/eta/promote", {"version": 1}, token=TOKEN,
                           headers={"x-forklift-actor": "alice"})
    assert r.status_code == 200, r.text
    assert r.json()["deployment"] == {"routes": [{"version": 1, "weight": 1}], "shadows": []}
    assert {answered_version(admin_server) for _ in range(20)} == {1}
    assert answered_version(admin_server, version=2) == 2  # an explicit version still wins
    r = admin_server.admin("POST", "/admin/models/eta/rollback", token=TOKEN)
    assert r.status_code == 200, r.text
    assert answered_version(admin_server) == 2
    r = admin_server.admin("POST", "/admin/models/eta/rollback", token=TOKEN)
    assert r.status_code == 409
    entries = admin_server.admin("GET", "/admin/audit").json()["entries"]
    assert [(e["actor"], e["action"], e["before"], e["after"]) for e in entries] == [
        ("alice", "promote", "policy", "1"), ("admin", "rollback", "1", "policy")]
    assert entries[0]["time"].endswith("Z")


def test_split_follows_weights_and_is_sticky_per_key(admin_server):
    r = admin_server.admin("PUT", "/admin/models/eta/deployment",
                           {"routes": [{"version": 1, "weight": 70}, {"version": 2, "weight": 30}]},
                           token=TOKEN)
    assert r.status_code == 200, r.text
    counts = collections.Counter()
    first_answer = {}
    for rider in range(1500):
        key = f"rider-{rider}"
        v = answered_version(admin_server, experiment_key=key)
        counts[v] += 1
        first_answer[key] = v
    assert abs(counts[1] / 1500 - 0.7) < 0.05, counts
    for rider in range(0, 1500, 50):
        key = f"rider-{rider}"
        assert answered_version(admin_server, experiment_key=key) == first_answer[key]
    # The v2 protocol takes the key as a parameter and lands on the same version.
    key = "rider-7"
    features = selftest_cases("eta", 2)[1]["features"]
    v2 = admin_server.post("/v2/models/eta/infer", {
        "parameters": {"experiment_key": key},
        "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
                   for n, v in features.items()]})
    assert v2.status_code == 200, v2.text
    assert int(v2.json()["model_version"]) == first_answer[key]


def test_bad_deployments_are_refused(admin_server, repo_copy):
    def put(body):
        return admin_server.admin("PUT", "/admin/models/eta/deployment", body, token=TOKEN)
    assert put("{").status_code == 400
    assert put({"routes": [{"version": 1, "weight": 0}]}).status_code == 400
    assert put({"routes": [{"version": 9, "weight": 1}]}).status_code == 404
    assert admin_server.admin("PUT", "/admin/models/nope/deployment",
                              {"routes": [{"version": 1, "weight": 1}]}, token=TOKEN).status_code == 404
    assert admin_server.admin("POST", "/admin/models/eta/promote", {"v": 1},
                              token=TOKEN).status_code == 400
    assert answered_version(admin_server) == 2
    assert admin_server.admin("GET", "/admin/audit").json()["entries"] == []


@pytest.mark.not_under_tsan
def test_promoting_a_version_that_fails_its_selftests_is_refused(repo_copy, tmp_path):
    import shutil
    bad = repo_copy / "eta" / "3"
    shutil.copytree(repo_copy / "eta" / "2", bad)
    lines = (bad / "selftest.jsonl").read_text().splitlines()
    case = json.loads(lines[0])
    case["expected"] += 50
    (bad / "selftest.jsonl").write_text("\n".join([json.dumps(case)] + lines[1:]) + "\n")
    s = Server(repo_copy, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        r = s.admin("POST", "/admin/models/eta/promote", {"version": 3}, token=TOKEN)
        assert r.status_code == 409
        assert "self-tests failed" in r.json()["error"]
        assert answered_version(s) == 2
    finally:
        assert s.stop() == 0


@pytest.mark.not_under_tsan
def test_versions_with_selftest_results(admin_server, example_models):
    body = admin_server.admin("GET", "/admin/models/eta").json()
    assert body["model_id"] == "eta" and body["serving"] == [1, 2]
    v1 = body["versions"][0]
    assert v1["version"] == 1 and v1["state"] == "ready"
    assert v1["selftest"]["cases"] == 24 and v1["selftest"]["passed"] == 24
    listing = admin_server.admin("GET", "/admin/models").json()["models"]
    assert [m["model_id"] for m in listing] == example_model_ids(example_models)


def test_repository_extension_index_unload_load(admin_server):
    index = admin_server.admin("POST", "/v2/repository/index", token=TOKEN).json()
    assert {"name": "eta", "version": "2", "state": "READY", "reason": ""} in index
    r = admin_server.admin("POST", "/v2/repository/models/surge/unload", token=TOKEN)
    assert r.status_code == 200 and r.json() == {}
    r = admin_server.post("/infer", {"model_id": "surge", "features": selftest_cases("surge", 1)[0]["features"]})
    assert r.status_code == 503 and "unloaded" in r.json()["error"]
    assert admin_server.get("/readyz").status_code == 200  # deliberately unloaded: not "unready"
    index = admin_server.admin("POST", "/v2/repository/index", token=TOKEN).json()
    assert {"name": "surge", "version": "1", "state": "UNAVAILABLE",
            "reason": "model unloaded through the admin API"} in index
    assert admin_server.admin("POST", "/v2/repository/models/surge/load", token=TOKEN).status_code == 200
    r = admin_server.post("/infer", {"model_id": "surge", "features": selftest_cases("surge", 1)[0]["features"]})
    assert r.status_code == 200
    assert admin_server.admin("POST", "/v2/repository/models/nope/load", token=TOKEN).status_code == 404


@pytest.mark.not_under_tsan
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_deployments_survive_a_restart(repo_copy, tmp_path, sig):
    state = tmp_path / "state.json"
    env = {"FORKLIFT_ADMIN_TOKEN": TOKEN}
    s = Server(repo_copy, state_file=state, env=env)
    try:
        r = s.admin("POST", "/admin/models/eta/promote", {"version": 1}, token=TOKEN)
        assert r.status_code == 200
        assert s.admin("POST", "/v2/repository/models/surge/unload", token=TOKEN).status_code == 200
    finally:
        s.stop(sig)
    s = Server(repo_copy, state_file=state, env=env)
    try:
        assert answered_version(s) == 1
        assert s.admin("GET", "/admin/models/eta/deployment").json()["deployment"] == {
            "routes": [{"version": 1, "weight": 1}], "shadows": []}
        assert s.post("/infer", {"model_id": "surge", "features": {}}).status_code == 503
        assert len(s.admin("GET", "/admin/audit").json()["entries"]) == 2
        assert s.admin("POST", "/admin/models/eta/rollback", token=TOKEN).status_code == 200
        assert answered_version(s) == 2
    finally:
        assert s.stop() == 0


def test_promotes_and_rollbacks_under_load_drop_nothing(admin_server):
    body = json.dumps(eta_body())
    stop = threading.Event()
    results = []

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(admin_server.url + "/infer", data=body, timeout=10)
                results.append((r.status_code, r.json().get("version")))
            except requests.RequestException as e:
                results.append((None, repr(e)))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            if i % 2 == 0:
                r = admin_server.admin("POST", "/admin/models/eta/promote",
                                       {"version": 1 + (i // 2) % 2}, token=TOKEN)
            else:
                r = admin_server.admin("POST", "/admin/models/eta/rollback", token=TOKEN)
            assert r.status_code == 200, r.text
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failures = [r for r in results if r[0] != 200]
    assert failures == [], failures[:5]
    assert len(results) > 200
    assert {v for _, v in results} == {1, 2}


def cli(server, *args, token=TOKEN):
    import os
    import subprocess
    from conftest import FORKLIFT
    env = {**os.environ, "USER": "ci-bot"}
    if server is not None:
        env["FORKLIFT_ADMIN_URL"] = server.admin_url
    env.pop("FORKLIFT_ADMIN_TOKEN", None)
    if token:
        env["FORKLIFT_ADMIN_TOKEN"] = token
    return subprocess.run([FORKLIFT, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.not_under_tsan
def test_cli_status_promote_split_rollback(admin_server):
    out = cli(admin_server, "status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "VERSION", "STATE", "SELF-TESTS", "LOAD", "TRAFFIC"]
    eta = [line for line in lines if line.split()[:2] == ["eta", "2"]]
    assert eta and eta[0].split()[:4] == ["eta", "2", "ready", "24/24"]
    assert eta[0].endswith("100% (policy)")

    out = cli(admin_server, "promote", "eta", "1")
    assert out.returncode == 0 and out.stdout == "eta: versions 1\n", out.stderr
    assert answered_version(admin_server) == 1
    out = cli(admin_server, "split", "eta", "1=75", "2=25")
    assert out.returncode == 0 and out.stdout == "eta: versions 1:75,2:25\n"
    rows = {l.split()[1]: l.split()[-1] for l in cli(admin_server, "status", "eta").stdout.splitlines()[1:]}
    assert rows == {"1": "75%", "2": "25%"}
    assert cli(admin_server, "rollback", "eta").returncode == 0
    assert cli(admin_server, "rollback", "eta").returncode == 0
    out = cli(admin_server, "rollback", "eta")
    assert out.returncode == 1 and "no earlier deployment (HTTP 409)" in out.stderr
    entries = admin_server.admin("GET", "/admin/audit").json()["entries"]
    # $USER at this host: who ran the command, as the audit log records it.
    import socket
    assert {e["actor"] for e in entries} == {"ci-bot@" + socket.gethostname()}


@pytest.mark.not_under_tsan
def test_cli_exit_codes(admin_server):
    out = cli(admin_server, "promote", "eta", "1", token=None)
    assert out.returncode == 1 and "admin token" in out.stderr
    out = cli(admin_server, "split", "eta", "1=lots")
    assert out.returncode == 2 and "VERSION=WEIGHT" in out.stderr
    out = cli(admin_server, "promote", "eta", "9")
    assert out.returncode == 1 and "HTTP 404" in out.stderr
    out = cli(admin_server, "status", "--server", "http://127.0.0.1:1")
    assert out.returncode == 3 and "cannot reach" in out.stderr
    out = cli(admin_server, "promote", "eta")
    assert out.returncode != 0  # missing VERSION: CLI11 usage error


@pytest.mark.not_under_tsan
def test_cli_timeout_says_the_change_may_still_happen():
    import socket
    # A "server" that accepts and never answers, like one busy loading a large model.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        out = cli(None, "promote", "eta", "2", "--server", url, "--timeout", "1")
        assert out.returncode == 4, out.stderr
        assert time.monotonic() - started < 30
        assert "no answer from " + url + " within 1 s" in out.stderr
        assert "forklift status" in out.stderr
        out = cli(None, "status", "--server", url, "--timeout", "0")
        assert out.returncode != 0 and "--timeout" in out.stderr


@pytest.mark.not_under_tsan
def test_cli_undeploy_and_deploy(admin_server):
    out = cli(admin_server, "undeploy", "surge")
    assert out.returncode == 0
    assert admin_server.post("/infer", {"model_id": "surge", "features": {}}).status_code == 503
    out = cli(admin_server, "deploy", "surge")
    assert out.returncode == 0 and "surge: loaded" in out.stdout
    r = admin_server.post("/infer", {"model_id": "surge", "features": selftest_cases("surge", 1)[0]["features"]})
    assert r.status_code == 200


@pytest.mark.not_under_tsan
def test_schema_guard_refuses_a_breaking_promote_unless_forced(repo_copy):
    import shutil
    v3 = repo_copy / "eta" / "3"
    shutil.copytree(repo_copy / "eta" / "2", v3)
    manifest = (v3 / "model.yaml").read_text()
    (v3 / "model.yaml").write_text(manifest.replace("{name: hour_of_day, type: float}",
                                                    "{name: hour_of_day, type: int}"))
    cases = [json.loads(l) for l in (v3 / "selftest.jsonl").read_text().splitlines()]
    for c in cases:
        c["features"]["hour_of_day"] = int(c["features"]["hour_of_day"])
    (v3 / "selftest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    (v3 / "model.yaml").write_text((v3 / "model.yaml").read_text().replace(
        "version_policy: all", "version_policy: {specific: [1, 2]}"))
    s = Server(repo_copy, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        out = cli(s, "promote", "eta", "3")
        assert out.returncode == 1
        assert "retypes feature 'hour_of_day' (float -> int)" in out.stderr, out.stderr
        assert "(HTTP 409)" in out.stderr
        assert answered_version(s) == 2
        out = cli(s, "promote", "eta", "3", "--force")
        assert out.returncode == 0, out.stderr
        r = s.post("/infer", {"model_id": "eta", "features": cases[1]["features"]})
        assert r.status_code == 200 and r.json()["version"] == 3
    finally:
        assert s.stop() == 0


def test_shadow_never_changes_the_answer_and_is_compared(admin_server):
    cases = selftest_cases("eta", 2)[1:]
    before = [admin_server.post("/infer", {"model_id": "eta", "features": c["features"]}).json()["output"]
              for c in cases]
    # What the shadow (version 1) answers for the same rows, asked directly.
    shadow = [admin_server.post("/infer", {"model_id": "eta", "version": 1,
                                           "features": c["features"]}).json()["output"]
              for c in cases]
    out = cli(admin_server, "shadow", "eta", "1", "--rate", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("eta: newest serving version (version policy); "
                          "shadow version 1 on 100% of requests\n")
    # The rows that agree: relative difference within the shadow's tolerance (admin-api.md).
    tolerance = admin_server.admin("GET", "/admin/models/eta/deployment").json()[
        "deployment"]["shadows"][0]["agree_tolerance"]
    rel = [abs(s - p) / abs(p) for p, s in zip(before, shadow, strict=True)]
    assert all(abs(r - tolerance) > 1e-4 for r in rel), rel  # none so close that rounding decides
    agree = sum(r <= tolerance for r in rel)
    assert 0 < agree < len(cases)  # both kinds, so that a swap of the two counts shows
    for _ in range(5):
        for c, want in zip(cases, before):
            r = admin_server.post("/infer", {"model_id": "eta", "features": c["features"]})
            assert r.status_code == 200
            assert r.json()["version"] == 2 and r.json()["output"] == want
    deadline = time.time() + 10
    labels = 'model_id="eta",primary_version="2",shadow_version="1"'
    total = 0
    while time.time() < deadline:
        metrics = admin_server.get("/metrics").text
        rows = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
                if l.startswith("forklift_shadow_rows_total")}
        total = sum(v for k, v in rows.items() if labels in k)
        if total >= 5 * len(cases):
            break
        time.sleep(0.05)
    assert total == 5 * len(cases)
    assert rows[f'forklift_shadow_rows_total{{{labels},result="agree"}}'] == 5 * agree
    assert rows[f'forklift_shadow_rows_total{{{labels},result="disagree"}}'] == \
        5 * (len(cases) - agree)
    comparisons = admin_server.admin("GET", "/admin/models/eta").json()["shadow_comparisons"]
    assert [(c["primary_version"], c["shadow_version"], c["agree"], c["disagree"], c["errors"])
            for c in comparisons] == [(2, 1, 5 * agree, 5 * (len(cases) - agree), 0)]
    assert f'forklift_shadow_duration_seconds_count{{{labels}}} {5 * len(cases)}' in metrics
    assert f'forklift_shadow_errors_total{{{labels}}} 0' in metrics
    assert f'forklift_shadow_dropped_total{{{labels}}} 0' in metrics
    out = cli(admin_server, "shadow", "eta", "1", "--off")
    assert out.returncode == 0
    assert admin_server.admin("GET", "/admin/models/eta/deployment").json()["deployment"]["shadows"] == []


def test_new_version_held_until_promoted(repo_copy):
    import shutil
    for v in (1, 2):
        manifest = repo_copy / "eta" / str(v) / "model.yaml"
        manifest.write_text(manifest.read_text().replace("version_policy: all",
                                                         "version_policy: latest\nnew_versions: hold"))
    s = Server(repo_copy, "--poll-seconds", "0.2", env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        assert answered_version(s) == 2
        staging = repo_copy / "eta" / ".staging"
        shutil.copytree(repo_copy / "eta" / "2", staging)
        staging.rename(repo_copy / "eta" / "3")
        deadline = time.time() + 20
        while time.time() < deadline and not s.events("version_held"):
            time.sleep(0.05)
        held = s.events("version_held")
        assert held and held[0]["version"] == 3 and held[0]["serving"] == 2
        assert {answered_version(s) for _ in range(10)} == {2}
        status = cli(s, "status", "eta").stdout
        assert any(l.split()[:3] == ["eta", "3", "ready"] for l in status.splitlines()), status
        assert cli(s, "promote", "eta", "3").returncode == 0
        assert answered_version(s) == 3
        actions = [e["action"] for e in s.admin("GET", "/admin/audit").json()["entries"]]
        assert actions == ["hold", "promote"]
    finally:
        assert s.stop() == 0
