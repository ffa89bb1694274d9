"""Fault injection (issue #8): a corrupt or truncated artifact for each runtime that reads one
is rejected by name while the version before it keeps serving; nothing crashes."""
import shutil
import time

import pytest

from conftest import Server, require_runtime_model, selftest_cases

# (model id, version, artifact, runtime to switch to or None): every runtime that parses a file.
CASES = [("eta", 2, "model.json", None), ("eta", 2, "model.json", "tree"),
         ("fraud", 1, "model.pt", None)]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("model_id,version,artifact,runtime", CASES)
def test_a_damaged_artifact_is_rejected_and_the_old_version_keeps_serving(
        request, model_id, version, artifact, runtime, damage):
    if model_id == "fraud":
        require_runtime_model("fraud", "torchscript")
    repo_copy = request.getfixturevalue("full_repo_copy" if model_id == "fraud" else "repo_copy")
    if runtime:  # serve the model through `runtime` from the start, old and new version alike
        for v in (repo_copy / model_id).iterdir():
            manifest = v / "model.yaml"
            manifest.write_text(manifest.read_text().replace("runtime: xgboost",
                                                             f"runtime: {runtime}"))
    s = Server(repo_copy, "--poll-seconds", "0.2")
    try:
        new = repo_copy / model_id / ".staging"
        shutil.copytree(repo_copy / model_id / str(version), new)
        data = (new / artifact).read_bytes()
        if damage == "truncated":
            (new / artifact).write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            (new / artifact).write_bytes(bytes(range(256)) * 64)
        else:
            (new / artifact).write_bytes(b"")
        next_version = version + 1
        while (repo_copy / model_id / str(next_version)).exists():
            next_version += 1
        new.rename(repo_copy / model_id / str(next_version))
        deadline = time.time() + 30
        rejected = []
        while time.time() < deadline and not rejected:
            rejected = [e for e in s.events("version_rejected") if e["model_id"] == model_id]
            time.sleep(0.05)
        assert rejected and rejected[0]["version"] == next_version, s.logs[-5:]
        # By name: the reason names the damaged file, so whoever reads the log knows what to fix.
        assert f"{model_id}/{next_version}/{artifact}" in rejected[0]["reason"], rejected[0]
        print(f"\n{model_id} ({runtime or 'own runtime'}), {damage}: {rejected[0]['reason'][:160]}")
        case = selftest_cases(model_id, version)[0]
        r = s.post("/infer", {"model_id": model_id, "features": case["features"]})
        assert r.status_code == 200 and r.json()["version"] == version, r.text
        state = f'forklift_model_version_state{{model_id="{model_id}",version="{next_version}",' \
                f'state="failed"}} 1'
        assert state in s.get("/metrics").text
    finally:
        assert s.stop() == 0
