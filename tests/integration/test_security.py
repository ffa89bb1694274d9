"""Security: no request names a path outside the repository, admin changes need the token, the
admin API is on loopback by default, and the token never reaches a log or file."""
import json
import subprocess

import requests

from conftest import FORKLIFT, Server, selftest_cases

TOKEN = "secret-token-5f2c1e9a7b3d"


def test_ids_that_would_leave_the_repository_are_refused(repo_copy, tmp_path):
    outside = tmp_path / "outside"
    (outside / "1").mkdir(parents=True)  # a model-shaped directory beside the repository
    s = Server(repo_copy, state_file=tmp_path / "state.json", env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        for bad in ("..", "../outside", "..%2foutside", "%2e%2e", ".hidden", "a/b", "eta%00"):
            for method, path in (("POST", f"/v2/repository/models/{bad}/load"),
                                 ("POST", f"/admin/models/{bad}/promote"),
                                 ("GET", f"/admin/models/{bad}/deployment")):
                r = s.admin(method, path, {"version": 1}, token=TOKEN)
                assert r.status_code in (400, 404), (path, r.status_code, r.text)
            r = s.post("/infer", {"model_id": bad, "features": {}})
            assert r.status_code in (400, 404), (bad, r.text)
            assert s.get(f"/v2/models/{bad}/ready").status_code in (400, 404)
        for version in ("0", "-1", "1.5", "..", "99999999999999999999"):
            r = s.post("/infer", {"model_id": "eta", "version": version, "features": {}})
            assert r.status_code in (400, 404), (version, r.text)
        assert s.post("/infer", {"model_id": "eta", "features": selftest_cases("eta", 2)[0][
            "features"]}).status_code == 200
    finally:
        assert s.stop() == 0
    assert not any("outside" in line and "loaded" in line for line in s.logs)


def test_the_token_is_needed_and_never_written_anywhere(repo_copy, tmp_path):
    state = tmp_path / "state.json"
    events = tmp_path / "events"
    s = Server(repo_copy, "--events-dir", str(events), "--log-requests", "1", state_file=state,
               env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        for token in (None, "wrong", TOKEN[:-1]):
            r = s.admin("POST", "/admin/models/eta/promote", {"version": 1}, token=token)
            assert r.status_code in (401, 403), r.text
            assert TOKEN not in r.text
        assert s.admin("POST", "/admin/models/eta/promote", {"version": 1},
                       token=TOKEN).status_code == 200
        # The token sent to the data plane by mistake is not echoed or logged either.
        s.post("/infer", {"model_id": "eta", "features": {}},
               headers={"Authorization": f"Bearer {TOKEN}"})
        s.post("/infer", {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]},
               headers={"Authorization": f"Bearer {TOKEN}"})
        s.admin("GET", "/admin/audit")
    finally:
        assert s.stop() == 0
    assert TOKEN not in "".join(s.logs)
    assert TOKEN not in state.read_text()
    for f in events.glob("*"):
        assert TOKEN not in f.read_text()
    assert json.loads(state.read_text())  # the change was recorded


def test_the_admin_api_listens_on_loopback_by_default(repo_copy):
    s = Server(repo_copy)
    try:
        listening = s.events("admin_listening")[0]
        assert listening["host"] == "127.0.0.1"
    finally:
        assert s.stop() == 0
    out = subprocess.run([FORKLIFT, "serve", "--help"], capture_output=True, text=True)
    assert "127.0.0.1" in out.stdout  # the documented default
