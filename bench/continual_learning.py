#!/usr/bin/env python3
"""Continual learning, measured: a stream of rides whose durations change at a known point
(concept drift), served by two copies of the same online model (the `online` runtime), one
learning from every label (POST /feedback) and one frozen (`learn: false`). Reports each one's
error before and after the drift, and how many labels the learning one needed to recover; plots
the rolling error (PNG).

Usage: bench/continual_learning.py BUILD_DIR [--warmup N] [--before N] [--after N]
          [--slower F] [--window N] [--plot PNG] [--report MD] [--smoke]

Everything goes through a real `forklift serve`: predictions over HTTP, labels over HTTP, the
warmed-up model's state published as a version by a snapshot job (POST /admin/jobs), and that
version copied as the frozen model. The machine's noise does not matter here: errors, not times.
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_example_models import feature_names, synthetic_rides  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_model(repo, model_id, names, state, learn=True):
    d = repo / model_id / "1"
    d.mkdir(parents=True)
    features = "".join(f"  - {{name: {n}, type: float, allow_missing: true}}\n" for n in names)
    (d / "model.yaml").write_text(
        "runtime: online\nartifact: state.json\n"
        f"runtime_options: {{learn: {'true' if learn else 'false'}, snapshot_every_updates: 0}}\n"
        "quality: {task: regression}\n"
        f"features:\n{features}output: {{name: eta_seconds, type: float}}\n")
    (d / "state.json").write_text(state)
    return d


def selftests_for(names, x, expected):
    lines = []
    for row, want in zip(x, expected):
        features = {n: (None if math.isnan(v) else float(v)) for n, v in zip(names, row)}
        lines.append(json.dumps({"features": features, "expected": want, "atol": 1e-6}))
    return "\n".join(lines) + "\n"


class Server:
    def __init__(self, forklift, repo):
        self.port, self.admin = free_port(), free_port()
        self.proc = subprocess.Popen(
            [forklift, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
             "--port", str(self.port), "--admin-port", str(self.admin), "--state-file", "none",
             "--poll-seconds", "0.2", "--threads", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "FORKLIFT_ADMIN_TOKEN": TOKEN}, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin}"
        self.session = requests.Session()
        for _ in range(300):
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def predict(self, model_id, features, request_id):
        r = self.session.post(self.url + "/infer", json={"model_id": model_id, "features": features},
                              headers={"X-Request-Id": request_id})
        r.raise_for_status()
        return r.json()["output"]

    def labels(self, pairs):
        r = self.session.post(self.url + "/feedback", json={
            "feedback": [{"request_id": rid, "label": y} for rid, y in pairs]})
        r.raise_for_status()
        return r.json()

    def ready(self, model_id, version):
        return self.session.get(f"{self.url}/v2/models/{model_id}/versions/{version}/ready").status_code == 200

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def rows_as_features(names, x):
    return [{n: (None if math.isnan(v) else float(v)) for n, v in zip(names, row)} for row in x]


def rolling(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--warmup", type=int, default=4000, help="labels before the copies part")
    ap.add_argument("--before", type=int, default=1000, help="rides before the drift")
    ap.add_argument("--after", type=int, default=5000, help="rides after the drift")
    ap.add_argument("--slower", type=float, default=1.5, help="how much slower rides get")
    ap.add_argument("--window", type=int, default=250, help="rolling error window")
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--report", type=Path)
    ap.add_argument("--smoke", action="store_true", help="a few hundred rides: runs, not figures")
    args = ap.parse_args()
    if args.smoke:
        args.warmup, args.before, args.after, args.window = 300, 100, 300, 50
    forklift = str((args.build / "forklift").resolve())
    names = feature_names(ROOT / "examples/models/eta/1/model.yaml")
    rng = np.random.default_rng(21)
    work = Path(tempfile.mkdtemp(prefix="forklift-continual-"))
    repo = work / "repo"
    try:
        # A model that knows nothing yet answers 0 for any ride: its self-tests say so.
        v1 = write_model(repo, "eta_online", names, '{"format": 1, "algorithm": "ftrl_linear"}\n')
        probe, _ = synthetic_rides(3, np.random.default_rng(5))
        (v1 / "selftest.jsonl").write_text(selftests_for(names, probe, [0.0, 0.0, 0.0]))
        server = Server(forklift, repo)
        try:
            # Warm-up: the learning model sees rides of the old world.
            x, y = synthetic_rides(args.warmup, rng)
            feats = rows_as_features(names, x)
            pending = []
            for i in range(args.warmup):
                server.predict("eta_online", feats[i], f"w{i}")
                pending.append((f"w{i}", float(y[i])))
                if len(pending) == 100:
                    server.labels(pending)
                    pending = []
            if pending:
                server.labels(pending)
            # Its state as a version (a snapshot job), copied as the frozen model.
            r = requests.post(server.admin_url + "/admin/jobs",
                              headers={"Authorization": f"Bearer {TOKEN}"},
                              json={"model": "eta_online", "kind": "snapshot"})
            r.raise_for_status()
            job = r.json()["id"]
            while True:
                j = requests.get(f"{server.admin_url}/admin/jobs/{job}").json()
                if j["state"] not in ("queued", "running"):
                    break
                time.sleep(0.1)
            assert j["state"] == "published", j
            snap = repo / "eta_online" / str(j["version"])
            frozen = repo / ".eta_frozen"
            (frozen / "1").mkdir(parents=True)
            for f in snap.iterdir():
                shutil.copy(f, frozen / "1" / f.name)
            manifest = frozen / "1" / "model.yaml"
            manifest.write_text(manifest.read_text().replace("learn: true", "learn: false"))
            frozen.rename(repo / "eta_frozen")
            deadline = time.time() + 30
            while time.time() < deadline and not (server.ready("eta_frozen", 1) and
                                                  server.ready("eta_online", j["version"])):
                time.sleep(0.1)
            time.sleep(0.5)  # the poll retires version 1: the snapshot serves and learns
            # The stream: `before` rides as before, then every ride `slower` times longer.
            total = args.before + args.after
            x, y = synthetic_rides(total, rng)
            y = y.astype(np.float64)
            y[args.before:] *= args.slower
            feats = rows_as_features(names, x)
            errors = {"eta_online": [], "eta_frozen": []}
            pending = []
            for i in range(total):
                for model_id in errors:
                    rid = f"{model_id}-{i}"
                    errors[model_id].append(abs(server.predict(model_id, feats[i], rid) - y[i]))
                    pending.append((rid, float(y[i])))
                if len(pending) >= 100:
                    server.labels(pending)
                    pending = []
            metrics = server.session.get(server.url + "/metrics").text
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    learned = sum(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith("forklift_online_updates_total{"))
    roll = {m: rolling(e, args.window) for m, e in errors.items()}
    before = {m: float(np.mean(e[:args.before])) for m, e in errors.items()}
    tail = max(args.window, args.after // 5)
    after = {m: float(np.mean(e[-tail:])) for m, e in errors.items()}
    # Recovered: the first ride after the drift from which the learning model's rolling error
    # stays within 1.25x of the error it settles at in the new world (its last rides': rides 1.5x
    # longer are 1.5x noisier too, so its error before the drift is not the bar).
    target = 1.25 * after["eta_online"]
    recovered = None
    online = roll["eta_online"]
    for i in range(args.before + args.window, len(online)):
        if all(v <= target for v in online[i:]):
            recovered = i - args.before
            break
    report = [
        "# Continual learning under concept drift (bench/continual_learning.py)",
        "",
        f"{args.warmup} warm-up labels, then {args.before} rides, then every ride "
        f"{args.slower}x longer for {args.after} rides. Mean absolute error, seconds:",
        "",
        "| model | before the drift | last %d rides | " % tail,
        "|---|---:|---:|",
        f"| learning (`online`, every label) | {before['eta_online']:.0f} | {after['eta_online']:.0f} |",
        f"| frozen (`learn: false`, same start) | {before['eta_frozen']:.0f} | {after['eta_frozen']:.0f} |",
        "",
        ("The learning model's rolling error (%d rides) stayed within 1.25x of the error it "
         "settles at from %s labels after the drift on." % (
             args.window, f"{recovered}" if recovered is not None else "never (within the run)")),
        f"Labels learned from, as /metrics counts them: {learned:.0f}.",
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(9, 4.5))
        xs = range(-args.before, args.after)
        ax.plot(xs, roll["eta_frozen"], label="frozen (learn: false)", color="#c0392b")
        ax.plot(xs, roll["eta_online"], label="learning from every label", color="#2471a3")
        ax.axvline(0, color="gray", linestyle="--", linewidth=1)
        ax.text(40, ax.get_ylim()[1] * 0.95, f"rides {args.slower}x slower from here", color="gray",
                va="top")
        ax.set_xlabel("ride (0 = the drift)")
        ax.set_ylabel(f"mean absolute error, s (rolling {args.window})")
        ax.set_title("eta, online runtime (FTRL): a model that learns recovers, a frozen one does not")
        ax.legend(loc="center right")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
    if recovered is None and not args.smoke:
        sys.exit(1)


if __name__ == "__main__":
    main()
