"""Rollouts that run themselves: the real `forklift serve` under continuous load, a candidate
version that fails, is slow or disagrees is rolled back by the driver with its reason; a good one
goes all the way; and with PostgreSQL, another replica finishes a rollout whose driver died."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

import postgres
from conftest import FORKLIFT, Server, require_or_skip

TOKEN = "test-token-0123456789abcdef"
ENV = {"FORKLIFT_ADMIN_TOKEN": TOKEN}

# Short stages so that a whole rollout takes seconds; guardrails need 50 answers a side. The p99
# guardrail's slack is wide here (a p99 of a hundred answers on a busy CI machine is noise); the
# latency test sets its own.
FAST = {
    "shadow": {"min_requests": 40, "min_seconds": 1, "sample_rate": 1.0,
               "agree_tolerance": 0.01, "min_agreement": 0.99},
    "canary": {"steps": [10, 50, 100], "hold_seconds": 1, "min_requests": 20},
    "guardrails": {"max_error_ratio_increase": 0.01, "max_p99_ratio": 1.5, "p99_slack_ms": 100,
                   "min_requests": 50},
}


def write_version(repo, version, value=1.0, delay_us=0, fail_every=0, rollout=None):
    d = repo / "m" / str(version)
    d.mkdir(parents=True)
    (d / "value.txt").write_text(f"{value}\n")
    options = f"runtime_options: {{delay_us: {delay_us}, fail_every: {fail_every}}}\n"
    text = ("runtime: constant\nartifact: value.txt\n" + options +
            "features:\n  - {name: x, type: float}\noutput: {name: y, type: float}\n")
    if rollout is not None:
        text += "rollout: " + json.dumps(rollout) + "\n"  # JSON is YAML
    (d / "model.yaml").write_text(text)
    (d / "selftest.jsonl").write_text(json.dumps({"features": {"x": 1}, "expected": value}) + "\n")


def make_repo(tmp_path, **candidate):
    """Version 1 in production (the state file pins it) and the candidate, version 2."""
    repo = tmp_path / "repo"
    write_version(repo, 1, value=1.0, delay_us=candidate.pop("baseline_delay_us", 0))
    write_version(repo, 2, **candidate)
    pinned = {"deployment": {"routes": [{"version": 1, "weight": 1}], "shadows": []},
              "history": [], "unloaded": False, "revision": 1}
    (tmp_path / "state.json").write_text(json.dumps({"format": 1, "models": {"m": pinned},
                                                     "audit": []}))
    return repo


class Load:
    """Threads sending /infer without pause; every answer is recorded with its time."""

    def __init__(self, servers, threads=4, keyed=False):
        self.servers = servers if isinstance(servers, list) else [servers]
        self.results = []  # (time answered, status, version or None, body)
        self.keyed = keyed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, i):
        session = requests.Session()
        n = 0
        while not self._stop.is_set():
            server = self.servers[n % len(self.servers)]
            body = {"model_id": "m", "features": {"x": 1.0}}
            if self.keyed:
                body["experiment_key"] = f"user-{i}-{n % 50}"
            n += 1
            try:
                r = session.post(server.url + "/infer", data=json.dumps(body), timeout=10)
                version = r.json().get("version") if r.status_code == 200 else None
                record = (time.time(), r.status_code, version, r.text[:300])
            except requests.RequestException as e:
                if self._stop.is_set():
                    return
                record = (time.time(), 0, None, str(e)[:300])
            with self._lock:
                self.results.append(record)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)
        return self.results

    def failures(self):
        with self._lock:
            return [r for r in self.results if r[1] != 200]


def start(server, policy, version=2):
    r = server.admin("POST", "/admin/models/m/rollout", {"version": version, "policy": policy},
                     token=TOKEN)
    assert r.status_code == 200, r.text
    return r.json()["rollout"]


def rollout(server):
    r = server.admin("GET", "/admin/models/m/rollout")
    assert r.status_code == 200, r.text
    return r.json()


def wait_until_ended(server, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        answer = rollout(server)
        if answer["rollout"] and answer["rollout"]["phase"] not in ("running", "paused"):
            return answer
        time.sleep(0.1)
    raise AssertionError(f"the rollout did not end in {timeout} s: {rollout(server)}")


def roll_out_under_load(tmp_path, policy, threads=4, timeout=60, **versions):
    """Serves make_repo(**versions), starts a rollout of version 2 under `policy` while `threads`
    send requests, and returns how it ended and every answer the load got."""
    s = serve(make_repo(tmp_path, **versions))
    load = Load(s, threads=threads)
    try:
        start(s, policy)
        answer = wait_until_ended(s, timeout=timeout)
    finally:
        results = load.stop()
        s.stop()
    return answer, results


def audit(server):
    return server.admin("GET", "/admin/audit").json()["entries"]


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory):
    """One server for the tests that only send refused requests (each started its own)."""
    s = serve(make_repo(tmp_path_factory.mktemp("rollouts"), value=1.0))
    yield s
    assert s.stop() == 0


def serve(repo, *extra):
    return Server(repo, "--rollout-tick-ms", "100", *extra, state_file=repo.parent / "state.json",
                  env=ENV)


def test_a_good_version_goes_all_the_way_without_a_failed_request(tmp_path):
    answer, results = roll_out_under_load(tmp_path, FAST, value=1.0)
    r = answer["rollout"]
    assert r["phase"] == "succeeded", r
    assert answer["deployment"]["routes"] == [{"version": 2, "weight": 1}]
    actions = [e["action"] for e in r["timeline"]]
    assert actions == ["started", "advanced", "advanced", "advanced", "promoted"], r["timeline"]
    stages = [e["stage"] for e in r["timeline"]]
    assert stages == ["shadow", "shadow", "canary 10%", "canary 50%", "canary 100%"]
    # Each decision records what it was taken on.
    assert r["timeline"][1]["signals"]["shadow_copies"] >= 40
    assert r["timeline"][1]["signals"]["shadow_agreement"] == 1
    assert r["timeline"][2]["signals"]["stage_requests"] >= 20
    assert [x for x in results if x[1] != 200] == []
    assert {x[2] for x in results} == {1, 2}


def test_a_version_answering_five_percent_errors_is_rolled_back_within_its_budget(tmp_path):
    s = serve(make_repo(tmp_path, value=1.0, fail_every=20))
    load = Load(s)
    policy = {**FAST, "shadow": False,
              "canary": {"steps": [20, 100], "hold_seconds": 30, "min_requests": 20}}
    try:
        start(s, policy)
        answer = wait_until_ended(s)
        ended = time.time()
        time.sleep(3)
        # Requests routed just before the rollback may still finish on the candidate.
        failures_after = [f for f in load.failures() if f[0] > ended + 2]
    finally:
        results = load.stop()
        s.stop()
    r = answer["rollout"]
    assert r["phase"] == "rolled_back", r
    assert r["reason"].startswith("error ratio"), r["reason"]
    assert answer["deployment"]["routes"] == [{"version": 1, "weight": 1}]
    failures = [x for x in results if x[1] != 200]
    # Only the candidate failed, only while it took traffic, and no more than the guardrail
    # needs to be sure: at 5% errors, about 100 answers (5 failures); 20 is the budget here.
    assert failures, "the candidate never failed: the test proves nothing"
    assert all("version 2" in f[3] for f in failures), failures[:3]
    assert len(failures) <= 20, len(failures)
    assert failures_after == []
    signals = r["timeline"][-1]["signals"]
    assert signals["candidate_error_ratio"] > 0.02


def test_errors_in_the_shadow_stage_roll_back_before_any_caller_sees_one(tmp_path):
    answer, results = roll_out_under_load(
        tmp_path, {**FAST, "shadow": {**FAST["shadow"], "min_seconds": 30}}, value=1.0,
        fail_every=20)
    r = answer["rollout"]
    assert r["phase"] == "rolled_back", r
    assert r["timeline"][-1]["stage"] == "shadow"
    assert "shadow copies" in r["reason"], r["reason"]
    assert [x for x in results if x[1] != 200] == []
    assert {x[2] for x in results} == {1}


def test_a_three_times_slower_version_is_rolled_back_on_p99(tmp_path):
    # Latency ratios under a sanitizer are the sanitizer's: its fixed cost per request dilutes
    # 3x to under 1.5x (seen in CI). The release build runs this test.
    if os.environ.get("FORKLIFT_SANITIZER"):
        pytest.skip("latency-calibrated: run in the release build, not under a sanitizer")
    policy = {**FAST, "shadow": False,
              "canary": {"steps": [30, 100], "hold_seconds": 60, "min_requests": 20},
              "guardrails": {**FAST["guardrails"], "p99_slack_ms": 1}}
    # Two callers for the two serving threads: no request waits behind another, so each side's
    # latency is its own delay (3 ms against 9 ms), not a shared queue's.
    answer, results = roll_out_under_load(tmp_path, policy, threads=2, timeout=90, value=1.0,
                                          delay_us=9000, baseline_delay_us=3000)
    r = answer["rollout"]
    assert r["phase"] == "rolled_back", r
    assert r["reason"].startswith("p99 latency"), r["reason"]
    signals = r["timeline"][-1]["signals"]
    assert signals["candidate_p99_ms"] > 1.5 * signals["baseline_p99_ms"], signals
    assert [x for x in results if x[1] != 200] == []


def test_a_version_whose_outputs_disagree_is_rolled_back_in_the_shadow_stage(tmp_path):
    answer, results = roll_out_under_load(
        tmp_path, {**FAST, "shadow": {**FAST["shadow"], "min_seconds": 30}}, value=2.0)
    r = answer["rollout"]
    assert r["phase"] == "rolled_back", r
    assert r["reason"].startswith("shadow agreement"), r["reason"]
    assert r["timeline"][-1]["signals"]["shadow_agreement"] == 0
    # No caller ever got the candidate's answer.
    assert {x[2] for x in results} == {1}
    assert [x for x in results if x[1] != 200] == []


def test_the_audit_log_and_the_log_say_why_it_rolled_back(tmp_path):
    s = serve(make_repo(tmp_path, value=2.0))
    load = Load(s, threads=2)
    try:
        start(s, FAST)
        answer = wait_until_ended(s)
        entries = audit(s)
    finally:
        load.stop()
        s.stop()
    ours = [e for e in entries if e["action"].startswith("rollout-")]
    assert [e["action"] for e in ours] == ["rollout-start", "rollout-rollback"], ours
    assert ours[0]["actor"] == "admin"
    assert ours[1]["actor"] == "forklift-rollout"
    assert ours[1]["reason"] == answer["rollout"]["reason"]
    assert ours[1]["after"] == "1"
    logged = s.events("rollout_rolled_back")
    assert len(logged) == 1 and logged[0]["reason"] == answer["rollout"]["reason"]


def test_sticky_keys_stay_on_the_candidate_as_its_share_grows(tmp_path):
    s = serve(make_repo(tmp_path, value=1.0))
    policy = {**FAST, "shadow": False,
              "canary": {"steps": [10, 50, 100], "hold_seconds": 2, "min_requests": 0}}
    keys = [f"user-{i}" for i in range(400)]

    def versions():
        return {k: s.post("/infer", {"model_id": "m", "features": {"x": 1.0},
                                     "experiment_key": k}).json()["version"] for k in keys}

    def pause():
        r = s.admin("POST", "/admin/models/m/rollout/pause", token=TOKEN)
        assert r.status_code == 200, r.text
        return r.json()["rollout"]

    try:
        start(s, policy)
        assert pause()["stage_name"] == "canary 10%"
        at_10 = versions()
        assert versions() == at_10  # sticky within a step
        assert s.admin("POST", "/admin/models/m/rollout/resume", token=TOKEN).status_code == 200
        deadline = time.time() + 20
        while rollout(s)["rollout"]["stage"] < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert pause()["stage_name"] == "canary 50%"
        at_50 = versions()
    finally:
        s.stop()
    on_candidate_at_10 = {k for k, v in at_10.items() if v == 2}
    assert 10 <= len(on_candidate_at_10) <= 80, len(on_candidate_at_10)
    # Everyone who had the candidate at 10% still has it at 50%.
    assert all(at_50[k] == 2 for k in on_candidate_at_10)
    assert 120 <= sum(1 for v in at_50.values() if v == 2) <= 280


def test_pause_holds_the_stage_resume_and_abort_return_control(tmp_path):
    s = serve(make_repo(tmp_path, value=1.0))
    load = Load(s, threads=2)
    policy = {**FAST, "shadow": False,
              "canary": {"steps": [10, 50, 100], "hold_seconds": 1, "min_requests": 5}}
    try:
        start(s, policy)
        r = s.admin("POST", "/admin/models/m/rollout/pause", {"reason": "lunch"}, token=TOKEN)
        assert r.status_code == 200, r.text
        paused = r.json()["rollout"]
        time.sleep(2)  # longer than the hold: a running rollout would have advanced
        now = rollout(s)["rollout"]
        assert now["phase"] == "paused" and now["stage"] == paused["stage"]
        assert now["timeline"][-1]["reason"] == "lunch"
        r = s.admin("POST", "/admin/models/m/rollout/pause", token=TOKEN)
        assert r.status_code == 409, r.text  # not running
        assert s.admin("POST", "/admin/models/m/rollout/resume", token=TOKEN).status_code == 200
        r = s.admin("POST", "/admin/models/m/rollout/abort", token=TOKEN)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["rollout"]["phase"] == "aborted"
        assert answer["deployment"]["routes"] == [{"version": 1, "weight": 1}]
        assert s.admin("POST", "/admin/models/m/rollout/abort", token=TOKEN).status_code == 409
    finally:
        results = load.stop()
        s.stop()
    assert [x for x in results if x[1] != 200] == []


def test_a_partial_policy_keeps_the_rest_of_the_versions_own(tmp_path):
    own = {**FAST, "shadow": {**FAST["shadow"], "min_seconds": 3600},
           "guardrails": {**FAST["guardrails"], "max_p99_ratio": 4}}
    s = serve(make_repo(tmp_path, value=1.0, rollout=own))
    try:
        # Version 2's model.yaml starts its rollout by itself; abort that one, start another.
        deadline = time.time() + 10
        while rollout(s)["rollout"] is None and time.time() < deadline:
            time.sleep(0.05)
        assert s.admin("POST", "/admin/models/m/rollout/abort", token=TOKEN).status_code == 200
        r = s.admin("POST", "/admin/models/m/rollout",
                    {"version": 2, "policy": {"canary": {"hold_seconds": 7}}}, token=TOKEN)
        assert r.status_code == 200, r.text
        policy = r.json()["rollout"]["policy"]
        assert policy["canary"]["hold_seconds"] == 7
        assert policy["shadow"]["min_seconds"] == 3600  # from model.yaml, not the defaults
        assert policy["guardrails"]["max_p99_ratio"] == 4
    finally:
        s.stop()


def test_a_rollout_ends_when_its_baseline_is_removed(tmp_path):
    repo = make_repo(tmp_path, value=1.0)
    s = serve(repo, "--poll-seconds", "0.2")
    try:
        start(s, {**FAST, "shadow": False,
                  "canary": {"steps": [50, 100], "hold_seconds": 3600, "min_requests": 0}})
        import shutil
        shutil.rmtree(repo / "m" / "1")
        answer = wait_until_ended(s, timeout=30)
        assert answer["rollout"]["phase"] == "rolled_back"
        assert "version 1 (production) stopped serving" in answer["rollout"]["reason"]
        assert answer["deployment"]["routes"] == []  # the version policy routes
        r = s.post("/infer", {"model_id": "m", "features": {"x": 1.0}})
        assert r.status_code == 200 and r.json()["version"] == 2
    finally:
        s.stop()


def test_a_person_changing_the_deployment_ends_the_rollout(tmp_path):
    s = serve(make_repo(tmp_path, value=1.0))
    try:
        start(s, {**FAST, "canary": {**FAST["canary"], "hold_seconds": 3600}})
        # Someone is sure: version 2 takes everything now.
        r = s.admin("POST", "/admin/models/m/promote", {"version": 2}, token=TOKEN)
        assert r.status_code == 200, r.text
        now = rollout(s)["rollout"]
        assert now["phase"] == "aborted"
        assert "changed by admin (promote)" in now["reason"]
        time.sleep(0.5)  # the driver leaves it alone
        assert rollout(s)["deployment"] == {"routes": [{"version": 2, "weight": 1}], "shadows": []}
    finally:
        s.stop()


def test_a_version_with_a_rollout_policy_in_model_yaml_rolls_itself_out(tmp_path):
    repo = tmp_path / "repo"
    write_version(repo, 1, value=1.0)
    s = Server(repo, "--rollout-tick-ms", "100", "--poll-seconds", "0.2", env=ENV)
    load = Load(s, threads=2)
    try:
        write_version(repo, 2, value=1.0, rollout={**FAST, "shadow": {**FAST["shadow"],
                                                                      "min_requests": 20}})
        deadline = time.time() + 30
        while rollout(s)["rollout"] is None and time.time() < deadline:
            time.sleep(0.1)
        first = rollout(s)["rollout"]
        assert first is not None, "no rollout started"
        assert first["timeline"][0]["actor"] == "forklift-rollout"
        answer = wait_until_ended(s)
    finally:
        results = load.stop()
        s.stop()
    assert answer["rollout"]["phase"] == "succeeded", answer
    assert answer["deployment"]["routes"] == [{"version": 2, "weight": 1}]
    # Version 2 took no traffic before its rollout: nothing answered from it before the start.
    assert [x for x in results if x[1] != 200] == []


def test_the_cli_starts_follows_and_aborts_a_rollout(tmp_path):
    s = serve(make_repo(tmp_path, value=1.0))
    load = Load(s, threads=2)
    env = {"FORKLIFT_ADMIN_URL": s.admin_url, "FORKLIFT_ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin"}
    try:
        started = subprocess.run(
            [FORKLIFT, "rollout", "start", "m", "2", "--steps", "25,100", "--hold-seconds", "1",
             "--no-shadow"], env=env, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        assert "version 2 replacing version 1: running, stage canary 25%" in started.stdout
        watched = subprocess.run([FORKLIFT, "rollout", "status", "m", "--watch"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert "promoted" in watched.stdout
        # Each step the driver took says why in the audit log, not only in the timeline.
        steps = [e for e in audit(s) if e["action"] in ("rollout-advance", "rollout-promote")]
        assert steps and all(e["reason"] for e in steps), steps
        again = subprocess.run([FORKLIFT, "rollout", "abort", "m"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "succeeded" in again.stderr, again.stderr
    finally:
        load.stop()
        s.stop()


@pytest.mark.parametrize("body, status, words", [
    ("{", 400, "malformed JSON"),
    ('{"version": "2"}', 400, "positive integer"),
    ('{"version": 2, "colour": 1}', 400, "unknown field"),
    ('{"policy": {"canary": {"steps": [50, 10]}}}', 400, "must increase"),
    ('{"policy": {"canary": {"steps": [10, 90]}}}', 400, "last canary step must be 100"),
    ('{"policy": {"canary": {"steps": [0.001, 100]}}}', 400, "from 0.01 to 100"),
    ('{"policy": {"canary": {"steps": [1e-320, 100]}}}', 400, "from 0.01 to 100"),
    ('{"policy": {"canary": {"steps": [99.999999999, 100]}}}', 400, "two decimals"),
    ('{"policy": {"guardrails": {"quality_metric": "mae"}}}', 409, "declares no quality"),
    ('{"policy": {"shadow": {"sample_rate": 0}}}', 400, "sample_rate"),
    ('{"policy": {"guardrails": {"max_p99_ratio": 0.5}}}', 400, "max_p99_ratio"),
    ('{"policy": {"guardrails": {"quality_metric": "vibes"}}}', 400, "quality_metric"),
    ('{"policy": {"canarie": {}}}', 400, "no field 'canarie'"),
    ('{"policy": {"canary": {"steps": "all"}}}', 400, "list of percents"),
    ('{"policy": {"canary": {"hold_seconds": 1e300}}}', 400, "hold_seconds"),
    ('{"policy": [1, 2]}', 400, "must be an object"),
    ('{"version": 1}', 409, "production already"),
    ('{"version": 7}', 404, "no version 7"),
])
def test_hostile_rollout_requests_are_refused_with_a_reason(idle_server, body, status, words):
    r = idle_server.admin("POST", "/admin/models/m/rollout", body, token=TOKEN)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.text
    assert rollout(idle_server)["rollout"] is None


@pytest.mark.not_under_tsan
def test_rollout_endpoints_refuse_without_a_token_unknown_models_and_a_second_rollout(tmp_path):
    s = serve(make_repo(tmp_path, value=1.0))
    try:
        assert s.admin("POST", "/admin/models/m/rollout", {}).status_code == 401
        assert s.admin("POST", "/admin/models/m/rollout/abort").status_code == 401
        assert s.admin("GET", "/admin/models/nope/rollout").status_code == 404
        assert s.admin("POST", "/admin/models/nope/rollout", {}, token=TOKEN).status_code == 404
        assert s.admin("DELETE", "/admin/models/m/rollout", token=TOKEN).status_code == 405
        r = s.admin("POST", "/admin/models/m/rollout/abort", token=TOKEN)
        assert r.status_code == 409 and "no rollout" in r.json()["error"]
        r = s.admin("POST", "/admin/models/m/rollout/pause", {"reason": "a\u0001b"}, token=TOKEN)
        assert r.status_code == 400
        start(s, {**FAST, "canary": {**FAST["canary"], "hold_seconds": 3600}})
        r = s.admin("POST", "/admin/models/m/rollout", {}, token=TOKEN)
        assert r.status_code == 409 and "in progress" in r.json()["error"]
    finally:
        s.stop()


def test_a_rollout_survives_a_restart_with_the_state_file(tmp_path):
    repo = make_repo(tmp_path, value=1.0)
    policy = {**FAST, "shadow": False,
              "canary": {"steps": [40, 100], "hold_seconds": 3600, "min_requests": 0}}
    s = serve(repo)
    try:
        start(s, policy)
    finally:
        s.stop()
    s = serve(repo)
    try:
        answer = rollout(s)
        assert answer["rollout"]["phase"] == "running"
        assert answer["rollout"]["stage_name"] == "canary 40%"
        assert answer["deployment"]["routes"] == [{"version": 1, "weight": 6000},
                                                  {"version": 2, "weight": 4000}]
    finally:
        s.stop()


# -- several replicas sharing one PostgreSQL --------------------------------------------------


def pin_version_1(servers):
    r = servers[0].admin("PUT", "/admin/models/m/deployment",
                         {"routes": [{"version": 1, "weight": 1}]}, token=TOKEN)
    assert r.status_code == 200, r.text
    deadline = time.time() + 10
    while time.time() < deadline:
        if all(rollout(s)["deployment"]["routes"] == [{"version": 1, "weight": 1}]
               for s in servers):
            return
        time.sleep(0.05)
    raise AssertionError("the pinned deployment did not reach every replica")


def lease_holder(servers):
    holders = [s for s in servers
               if s.events("rollout_lease_taken") and
               len(s.events("rollout_lease_taken")) > len(s.events("rollout_lease_lost"))]
    return holders


def test_another_replica_finishes_a_rollout_whose_driver_was_killed(tmp_path):
    require_or_skip(postgres.available(),
                    "PostgreSQL is not installed (scripts/install-deps.sh installs it)")
    pg = postgres.PostgresServer()
    repo = make_repo(tmp_path, value=1.0)
    servers = []
    try:
        servers = [Server(repo, "--state-postgres", pg.conninfo, "--rollout-tick-ms", "100",
                          state_file=tmp_path / f"{n}.json", env=ENV) for n in ("a", "b")]
        pin_version_1(servers)
        load = Load(servers, threads=4)
        policy = {**FAST, "canary": {"steps": [20, 60, 100], "hold_seconds": 2,
                                     "min_requests": 10}}
        start(servers[0], policy)
        deadline = time.time() + 20
        while not lease_holder(servers) and time.time() < deadline:
            time.sleep(0.05)
        holders = lease_holder(servers)
        assert len(holders) == 1, [s.events("rollout_lease_taken") for s in servers]
        driver = holders[0]
        other = servers[1 - servers.index(driver)]
        # Wait for a canary step, then kill the driver without a chance to give up its lease.
        while rollout(other)["rollout"]["stage"] < 1 and time.time() < deadline + 20:
            time.sleep(0.05)
        assert rollout(other)["rollout"]["stage"] >= 1
        driver.proc.send_signal(signal.SIGKILL)
        driver.proc.wait(10)
        load.servers = [other]
        answer = wait_until_ended(other, timeout=60)
        load.stop()
    finally:
        for s in servers:
            s.stop()
        pg.close()
    assert answer["rollout"]["phase"] == "succeeded", answer
    assert other.events("rollout_lease_taken"), "the surviving replica never took the lease"
    actors = {e["actor"] for e in answer["rollout"]["timeline"]}
    assert actors == {"admin", "forklift-rollout"}


def test_every_replica_applies_the_same_split(tmp_path):
    require_or_skip(postgres.available(),
                    "PostgreSQL is not installed (scripts/install-deps.sh installs it)")
    pg = postgres.PostgresServer()
    repo = make_repo(tmp_path, value=1.0)
    servers = []
    try:
        servers = [Server(repo, "--state-postgres", pg.conninfo, "--rollout-tick-ms", "100",
                          state_file=tmp_path / f"{n}.json", env=ENV) for n in ("a", "b")]
        policy = {**FAST, "shadow": False,
                  "canary": {"steps": [30, 100], "hold_seconds": 3600, "min_requests": 0}}
        pin_version_1(servers)
        start(servers[0], policy)
        deadline = time.time() + 10
        while time.time() < deadline:
            answers = [rollout(s) for s in servers]
            if answers[0] == answers[1]:
                break
            time.sleep(0.05)
        assert answers[0] == answers[1]
        assert answers[1]["deployment"]["routes"] == [{"version": 1, "weight": 7000},
                                                      {"version": 2, "weight": 3000}]
        # Only one replica drives it.
        time.sleep(1)
        assert len(lease_holder(servers)) == 1
    finally:
        for s in servers:
            s.stop()
        pg.close()
