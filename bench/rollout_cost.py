#!/usr/bin/env python3
"""What rollouts, feedback and drift cost the serving path (issue 16's figure).

One forklift binary, the example `eta` model (versions 1 and 2), wrk sending one-row /infer
requests (one thread, 16 connections, a new X-Request-Id each). Scenarios, alternated in each
repetition so the machine's noise hits them alike:

  plain            no deployment, nothing kept: the reference
  split 50/50      a deployment splitting traffic between versions 1 and 2, no rollout
  rollout canary   a running rollout at its 50% canary step (the driver deciding every second)
  rollout shadow   a running rollout in its shadow stage: every request copied to version 2
  quality          version 2 declares quality: (each prediction kept for labels)
  quality+labels   the same, while a client posts 2,000 labels a second to /feedback
  drift            version 2 ships profile.json (each request counted into its bins)

Usage: rollout_cost.py BUILD_DIR [--duration S] [--reps N] [--out FILE]
Prints a markdown table: median requests/s and p99 per scenario, and the ratio to `plain`.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
TOKEN = "rollout-bench-token-0123456789"
BODY = {"model_id": "eta", "features": {
    "trip_distance_km": 11.1, "pickup_lat": 37.783, "pickup_lng": -122.375, "dropoff_lat": 37.796,
    "dropoff_lng": -122.447, "hour_of_day": 23, "day_of_week": 3, "traffic_index": None,
    "weather_severity": 2, "driver_rating": 4.07, "driver_trips_30d": 123,
    "surge_multiplier": 1.87, "pickup_density": 0.124, "dropoff_density": 0.086,
    "road_closures": 2, "historical_eta_min": 29.6}}


def make_repo(models, work, name, quality=False, profile=False, forklift=None):
    repo = work / name
    for v in (1, 2):
        shutil.copytree(models / "eta" / str(v), repo / "eta" / str(v))
    if quality:
        with open(repo / "eta" / "2" / "model.yaml", "a") as f:
            f.write("quality: {task: regression}\n")
    if profile:
        subprocess.run([forklift, "profile", str(repo / "eta" / "2")], check=True,
                       capture_output=True)
    return repo


class Server:
    def __init__(self, forklift, repo, extra=()):
        self.proc = subprocess.Popen(
            [forklift, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
             "--port", "0", "--admin-port", "0", "--state-file", "none", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "FORKLIFT_ADMIN_TOKEN": TOKEN})
        ports = {}
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "admin_listening":
                ports["admin"] = event["port"]
            if event.get("event") == "listening":
                ports["data"] = event["port"]
            if event.get("event") == "repository_loaded":
                break
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.url = f"http://127.0.0.1:{ports['data']}"
        self.admin = f"http://127.0.0.1:{ports['admin']}"

    def call(self, method, path, body=None):
        r = requests.request(method, self.admin + path, data=json.dumps(body) if body else None,
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        r.raise_for_status()
        return r.json()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def set_up(server, scenario):
    if scenario in ("split 50/50", "rollout canary", "rollout shadow"):
        server.call("PUT", "/admin/models/eta/deployment",
                    {"routes": [{"version": 1, "weight": 1}]})
    if scenario == "split 50/50":
        server.call("PUT", "/admin/models/eta/deployment",
                    {"routes": [{"version": 1, "weight": 5000}, {"version": 2, "weight": 5000}]})
    if scenario == "rollout canary":
        server.call("POST", "/admin/models/eta/rollout", {"version": 2, "policy": {
            "shadow": False, "canary": {"steps": [50, 100], "hold_seconds": 3600}}})
    if scenario == "rollout shadow":
        server.call("POST", "/admin/models/eta/rollout", {"version": 2, "policy": {
            "shadow": {"min_seconds": 3600}}})


def label_stream(url, stop, rate=2000, batch=100):
    """Labels r1, r2, ... at `rate` a second: behind wrk's counter, so they match."""
    session = requests.Session()
    next_id = 1
    start = time.time()
    while not stop.is_set():
        items = [{"request_id": f"r{next_id + i}", "label": 1500} for i in range(batch)]
        session.post(url + "/feedback", data=json.dumps({"feedback": items}), timeout=10)
        next_id += batch
        wait = start + next_id / rate - time.time()
        if wait > 0:
            time.sleep(wait)


def run_wrk(url, body_file, duration):
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{duration}s", "-s", str(HERE / "post_ids.lua"),
                          url + "/infer"], capture_output=True, text=True,
                         env={**os.environ, "BENCH_BODY_FILE": str(body_file)}).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON "))
    return json.loads(line[len("BENCH_JSON "):])


SCENARIOS = ["plain", "split 50/50", "rollout canary", "rollout shadow", "quality",
             "quality+labels", "drift"]


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    build = Path(args[0]).resolve()
    duration = int(args[args.index("--duration") + 1]) if "--duration" in args else 5
    reps = int(args[args.index("--reps") + 1]) if "--reps" in args else 3
    out_file = args[args.index("--out") + 1] if "--out" in args else None
    forklift = str(build / "forklift")
    work = Path(tempfile.mkdtemp(prefix="forklift-rollout-bench-"))
    body_file = work / "body.json"
    body_file.write_text(json.dumps(BODY))
    repos = {
        "plain": make_repo(build / "models", work, "plain"),
        "quality": make_repo(build / "models", work, "quality", quality=True),
        "drift": make_repo(build / "models", work, "drift", profile=True, forklift=forklift),
    }
    results = {s: [] for s in SCENARIOS}
    try:
        for rep in range(reps):
            for scenario in SCENARIOS:
                repo = repos["quality" if scenario.startswith("quality") else
                             "drift" if scenario == "drift" else "plain"]
                server = Server(forklift, repo)
                stop = threading.Event()
                feeder = None
                try:
                    set_up(server, scenario)
                    run_wrk(server.url, body_file, 1)  # warm up
                    if scenario == "quality+labels":
                        feeder = threading.Thread(target=label_stream, args=(server.url, stop))
                        feeder.start()
                    r = run_wrk(server.url, body_file, duration)
                    if r["errors"]:
                        raise RuntimeError(f"{scenario}: {r['errors']} errors")
                    results[scenario].append(r)
                    print(f"rep {rep + 1} {scenario:16s} {r['rps']:9.0f} req/s  "
                          f"p99 {r['p99_us']} us", file=sys.stderr)
                finally:
                    stop.set()
                    if feeder:
                        feeder.join()
                    server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(r["rps"] for r in results["plain"])
    base_p99 = statistics.median(r["p99_us"] for r in results["plain"])
    lines = ["| scenario | requests/s (median) | vs plain | p99 µs (median) | vs plain |",
             "|---|---|---|---|---|"]
    for s in SCENARIOS:
        rps = statistics.median(r["rps"] for r in results[s])
        p99 = statistics.median(r["p99_us"] for r in results[s])
        lines.append(f"| {s} | {rps:.0f} | {rps / base:.2f}x | {p99:.0f} | {p99 / base_p99:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if out_file:
        Path(out_file).write_text(table + "\n")


if __name__ == "__main__":
    main()
