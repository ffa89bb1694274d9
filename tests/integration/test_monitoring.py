"""The monitoring forklift ships (deploy/prometheus, deploy/grafana) against the real thing: a
Prometheus (Debian's) started here scrapes a running forklift, evaluates the rules and fires the
alerts they promise; the dashboard asks only for series that forklift or the rules produce."""
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from conftest import Server, require_or_skip, selftest_cases

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "forklift-rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "forklift-dashboard.json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eta_body():
    case = next(c for c in selftest_cases("eta", 2) if None not in c["features"].values())
    return {"model_id": "eta", "features": case["features"]}


def recording_rules():
    import yaml
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def exported_names(text):
    """Metric names on a /metrics page: samples and the families announced by # TYPE."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_dashboard_and_rules_ask_only_for_what_forklift_produces(repo_copy, tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and len({p["id"] for p in dashboard["panels"]}) == len(
        dashboard["panels"])
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("traffic", "latency", "errors", "split", "shadow", "batching", "load"):
        assert topic in titles, topic
    with open(repo_copy / "eta" / "2" / "model.yaml", "a") as f:
        f.write("dynamic_batching: {max_batch_size: 4}\n")
    # Every family shows: events on, traces on (to nowhere), batching, gRPC.
    s = Server(repo_copy, "--events-dir", str(tmp_path / "events"), "--otlp-endpoint",
               "http://127.0.0.1:9/v1/traces", "--grpc-port", "0")
    try:
        assert s.post("/infer", eta_body()).status_code == 200
        names = exported_names(s.get("/metrics").text)
    finally:
        s.stop()
    known = names | recording_rules()
    import yaml
    rule_exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"]
                  for r in g["rules"]]
    for expr in exprs + rule_exprs:
        for name in re.findall(r"\bforklift[_:][a-zA-Z0-9_:]*", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in known or base in known, f"{name} (in {expr}) is not produced"


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    require_or_skip(binary is not None, "prometheus is missing (Debian's prometheus package)")
    return binary


def test_prometheus_scrapes_forklift_evaluates_the_rules_and_fires_alerts(repo_copy, tmp_path,
                                                                          prometheus):
    # A version that cannot load: ForkliftVersionFailed fires at the first evaluation.
    broken = repo_copy / "eta" / "3"
    shutil.copytree(repo_copy / "eta" / "2", broken)
    (broken / "model.json").write_text("{not a model")
    s = Server(repo_copy)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        f"  - job_name: forklift\n    static_configs: [{{targets: ['127.0.0.1:{s.port}']}}]\n")
    proc = subprocess.Popen([prometheus, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(q):
        r = requests.get(f"{api}/query?query={urllib.parse.quote(q)}", timeout=5)
        r.raise_for_status()
        return r.json()["data"]["result"]

    try:
        deadline = time.time() + 60
        rate = []
        while time.time() < deadline:
            for _ in range(20):
                s.post("/infer", eta_body())
            try:
                rate = query('forklift:requests:rate5m{model_id="eta",version="2"}')
            except requests.RequestException:
                rate = []  # not listening yet
            if rate and float(rate[0]["value"][1]) > 0:
                break
            time.sleep(0.5)
        assert rate and float(rate[0]["value"][1]) > 0, rate
        assert query("up{job='forklift'}")[0]["value"][1] == "1"
        p99 = query('forklift:latency_seconds:p99_5m{model_id="eta",version="2"}')
        assert p99 and float(p99[0]["value"][1]) > 0, p99
        ratio = query('forklift:error_ratio:rate5m{model_id="eta",version="2"}')
        assert ratio and float(ratio[0]["value"][1]) == 0, ratio
        firing = []
        while time.time() < deadline:
            alerts = requests.get(f"{api}/alerts", timeout=5).json()["data"]["alerts"]
            firing = [a for a in alerts if a["state"] == "firing"]
            if any(a["labels"]["alertname"] == "ForkliftVersionFailed" for a in firing):
                break
            time.sleep(0.5)
        failed = [a for a in firing if a["labels"]["alertname"] == "ForkliftVersionFailed"]
        assert failed and failed[0]["labels"]["version"] == "3", firing
        assert not [a for a in firing if a["labels"]["alertname"] in (
            "ForkliftHighErrorRatio", "ForkliftModelNotServing", "ForkliftStateStoreDown")]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        s.stop()


def test_the_in_flight_gauge_counts_predictions_being_made(tmp_path):
    """The autoscaling signal: 1 while a slow prediction runs, 0 once it is answered."""
    import threading
    from test_limits import constant_repo
    # Batched, so that the prediction runs on its batching thread and /metrics stays answered.
    repo = constant_repo(tmp_path, options="runtime_options: {delay_us: 1500000}\n",
                         extra_yaml="dynamic_batching: {max_batch_size: 1}\n")
    s = Server(repo)
    gauge = 'forklift_requests_in_flight{model_id="slow",version="1"} '
    try:
        assert gauge + "0" in s.get("/metrics").text
        answer = []
        t = threading.Thread(target=lambda: answer.append(
            s.post("/infer", {"model_id": "slow", "features": {"x": 1}}, timeout=30)))
        t.start()
        seen = ""
        deadline = time.time() + 10
        while time.time() < deadline and gauge + "1" not in seen:
            seen = requests.get(s.url + "/metrics", timeout=5).text
            time.sleep(0.05)
        assert gauge + "1" in seen, seen
        t.join()
        assert answer[0].status_code == 200
        assert gauge + "0" in s.get("/metrics").text
    finally:
        s.stop()
