"""Feature profiles and live drift: `forklift profile` writes profile.json from reference rows,
the server compares the last hour's requests with it (PSI per feature and for the output,
missing-rate change) in /metrics and the admin API, and the shipped alert rules name metrics the
server exports."""
import json
import random
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import FORKLIFT, Server

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "forklift-rules.yaml"


def write_model(repo, value=1.0):
    d = repo / "m" / "1"
    d.mkdir(parents=True)
    (d / "value.txt").write_text(f"{value}\n")
    (d / "model.yaml").write_text(
        "runtime: constant\nartifact: value.txt\nfeatures:\n"
        "  - {name: x, type: float, allow_missing: true}\n  - {name: city, type: string}\n"
        "output: {name: y, type: float}\n")
    (d / "selftest.jsonl").write_text(
        json.dumps({"features": {"x": 0.5, "city": "sf"}, "expected": value}) + "\n")
    return d


def reference_rows(path, n=2000, seed=7):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(json.dumps({"x": rng.random(),
                                "city": rng.choice(["sf", "sf", "nyc", "la"])}) + "\n")


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search("^" + re.escape(name) + r"\{" + re.escape(want) + r"\} (\S+)$", text,
                  re.MULTILINE)
    return float(m.group(1)) if m else None


def test_profile_writes_quantile_bins_categories_and_the_output(tmp_path):
    version = write_model(tmp_path / "repo")
    data = tmp_path / "reference.jsonl"
    reference_rows(data)
    with open(data, "a") as f:
        f.write("not json\n")
        f.write(json.dumps({"x": "a string", "city": "sf"}) + "\n")
    done = subprocess.run([FORKLIFT, "profile", str(version), "--data", str(data)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "2000 rows, 2 features and the output (2 lines skipped)" in done.stdout
    assert "line 2001 skipped: not JSON" in done.stderr
    assert "line 2002 skipped" in done.stderr and "x" in done.stderr
    profile = json.loads((version / "profile.json").read_text())
    x = profile["features"]["x"]
    assert x["kind"] == "numeric" and len(x["edges"]) == 9
    assert all(f == pytest.approx(0.1, abs=0.01) for f in x["fractions"])
    city = profile["features"]["city"]
    assert city["categories"][0] == "sf" and city["fractions"][0] == pytest.approx(0.5, abs=0.05)
    assert city["fractions"][-1] == 0  # no other city
    assert profile["output"]["kind"] == "numeric"
    assert profile["rows"] == 2000 and profile["source"] == "reference.jsonl"


def test_profile_refuses_what_it_cannot_use(tmp_path):
    version = write_model(tmp_path / "repo")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2]\n{}\n")
    done = subprocess.run([FORKLIFT, "profile", str(version), "--data", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no usable rows" in done.stderr
    done = subprocess.run([FORKLIFT, "profile", str(version), "--data", "/dev/zero"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "longer than 1 MiB" in done.stderr
    done = subprocess.run([FORKLIFT, "profile", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "not a version directory" in done.stderr
    (version / "value.txt").write_text("not a number\n")
    done = subprocess.run([FORKLIFT, "profile", str(version)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "does not load" in done.stderr


def send(server, rows):
    for i in range(0, len(rows), 100):
        r = server.post("/infer", {"model_id": "m", "instances": rows[i:i + 100]})
        assert r.status_code == 200, r.text


def test_live_drift_is_small_for_the_same_data_and_large_when_it_moves(tmp_path):
    version = write_model(tmp_path / "repo")
    data = tmp_path / "reference.jsonl"
    reference_rows(data)
    subprocess.run([FORKLIFT, "profile", str(version), "--data", str(data)], check=True,
                   capture_output=True, timeout=60)
    s = Server(tmp_path / "repo")
    try:
        rng = random.Random(11)
        send(s, [{"x": rng.random(), "city": rng.choice(["sf", "sf", "nyc", "la"])}
                 for _ in range(2000)])
        text = s.get("/metrics").text
        labels = {"model_id": "m", "version": "1"}
        assert metric(text, "forklift_drift_window_rows", **labels) == 2000
        assert metric(text, "forklift_drift_psi", **labels, feature="x") < 0.05
        assert metric(text, "forklift_drift_psi", **labels, feature="city") < 0.05
        assert metric(text, "forklift_drift_output_psi", **labels) < 0.05
        # Now x moves up, a new city appears and a tenth of x goes missing.
        send(s, [{"x": None if i % 10 == 0 else 0.8 + rng.random() / 5, "city": "berlin"}
                 for i in range(2000)])
        text = s.get("/metrics").text
        # Half the window moved: past 0.25, what is read as a large shift.
        assert metric(text, "forklift_drift_psi", **labels, feature="x") > 0.25
        assert metric(text, "forklift_drift_psi", **labels, feature="city") > 0.25
        assert metric(text, "forklift_drift_missing_rate_change", **labels, feature="x") == \
            pytest.approx(0.05)
        model = s.admin("GET", "/admin/models/m").json()
        drift = model["drift"]
        assert drift[0]["version"] == 1 and drift[0]["rows"] == 4000
        assert {f["feature"] for f in drift[0]["features"]} == {"x", "city"}
    finally:
        s.stop()


@pytest.mark.parametrize("content, words", [
    ("{", "not valid JSON"),
    ('{"format": 2, "rows": 1, "features": {}}', "'format' must be 1"),
    ('{"format": 1, "rows": 1, "features": {"x": {"kind": "numeric", "missing_rate": 0, '
     '"edges": [2, 1], "fractions": [0.3, 0.3, 0.4]}}}', "increasing"),
    ('{"format": 1, "rows": 1, "features": {"x": {"kind": "numeric", "missing_rate": 0, '
     '"edges": [1], "fractions": [1]}}}', "one more entry"),
    ('{"format": 1, "rows": 1, "features": {"x": {"kind": "weird", "missing_rate": 0}}}',
     "numeric or categorical"),
    ('{"format": 1, "rows": 1, "features": {"x": {"kind": "numeric", "missing_rate": 7, '
     '"edges": [], "fractions": [1]}}}', "missing_rate"),
])
def test_a_bad_profile_costs_only_the_drift_figures(tmp_path, content, words):
    version = write_model(tmp_path / "repo")
    (version / "profile.json").write_text(content)
    s = Server(tmp_path / "repo")
    try:
        send(s, [{"x": 0.5, "city": "sf"}])  # the version serves
        assert "forklift_drift_psi{" not in s.get("/metrics").text
        logged = s.events("profile_unreadable")
        assert len(logged) == 1 and words in logged[0]["reason"], logged
    finally:
        s.stop()


def test_a_profile_outside_the_repository_is_refused(tmp_path):
    version = write_model(tmp_path / "repo")
    outside = tmp_path / "elsewhere.json"
    outside.write_text('{"format": 1, "rows": 1, "features": {}}')
    (version / "profile.json").symlink_to(outside)
    s = Server(tmp_path / "repo")
    try:
        send(s, [{"x": 0.5, "city": "sf"}])
        logged = s.events("profile_unreadable")
        assert len(logged) == 1 and "outside" in logged[0]["reason"], logged
    finally:
        s.stop()


def test_the_shipped_alert_rules_name_metrics_the_server_exports(tmp_path):
    version = write_model(tmp_path / "repo")
    data = tmp_path / "reference.jsonl"
    reference_rows(data, n=200)
    subprocess.run([FORKLIFT, "profile", str(version), "--data", str(data)], check=True,
                   capture_output=True, timeout=60)
    rules = yaml.safe_load(RULES.read_text())
    s = Server(tmp_path / "repo")
    try:
        send(s, [{"x": 0.5, "city": "sf"}])
        exported = set(re.findall(r"^# TYPE (\w+) ", s.get("/metrics").text, re.MULTILINE))
    finally:
        s.stop()
    seen = 0
    for group in rules["groups"]:
        # The serving groups need events, traces and gRPC on to export all they name:
        # test_monitoring.py checks them with those on.
        if group["name"].startswith("forklift-serving"):
            continue
        for rule in group["rules"]:
            assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            names = set(re.findall(r"\b(forklift_\w+)", rule["expr"]))
            assert names, rule["alert"]
            for name in names:
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert base in exported or name in exported, (rule["alert"], name)
            seen += 1
    assert seen >= 6
