#!/usr/bin/env python3
"""What training costs (issue 17's figures), in one run:

1. Serving while a job trains. One forklift binary serving the example `eta` model, wrk sending
   one-row /infer requests (one thread, 16 connections), alternated in each repetition:
     idle        no job
     training    a server job training eta all along (xgboost, 1 thread, the lowest priority)
   Reported: median requests/s and p99 of each, and their ratio.

2. A whole job against the library alone. `forklift train` (read and hash the rows, split,
   train, judge against the parent, write the version, load and self-test it, publish) against
   XGBoost's Python package training the same rows with the same parameters and rounds (the
   baseline: what a team's training script does), both from scratch on one thread.

Usage: training_cost.py BUILD_DIR [--duration S] [--reps N] [--rows N] [--rounds N] [--out FILE]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))
from rollout_cost import BODY, Server, run_wrk  # noqa: E402
from make_example_models import feature_names, synthetic_rides  # noqa: E402


def make_repo(models, work, rows, rounds):
    repo = work / "repo"
    for v in (1, 2):
        shutil.copytree(models / "eta" / str(v), repo / "eta" / str(v))
    subprocess.run([sys.executable, str(HERE.parent / "scripts/make_training_data.py"),
                    str(repo / "eta/data/rides.jsonl"), "--rows", str(rows)], check=True,
                   capture_output=True)
    (repo / "eta/train.yaml").write_text(
        "trainer: xgboost\nmode: scratch\ndata: {files: [data/rides.jsonl], label: eta_seconds}\n"
        f"rounds: {rounds}\nparams: {{max_depth: 6, eta: 0.1, tree_method: hist, nthread: 1}}\n"
        "evaluation: {metric: rmse, max_regression: 10}\n")
    return repo


def running_jobs(server):
    return [j for j in server.call("GET", "/admin/jobs")["jobs"]
            if j["state"] in ("queued", "running")]


def serving_while_training(forklift, repo, body_file, duration, reps):
    """The job trains far longer than a measurement: it is cancelled for each `idle` one."""
    results = {"idle": [], "training": []}
    server = Server(forklift, repo)
    try:
        run_wrk(server.url, body_file, 1)  # warm up
        for rep in range(reps):
            for scenario in ("idle", "training"):
                if scenario == "training":
                    server.call("POST", "/admin/jobs", {"model": "eta"})
                    time.sleep(2)  # past reading the data, into its rounds
                else:
                    for j in running_jobs(server):
                        server.call("POST", f"/admin/jobs/{j['id']}/cancel")
                    while running_jobs(server):
                        time.sleep(0.2)
                before = running_jobs(server)
                r = run_wrk(server.url, body_file, duration)
                jobs = running_jobs(server)
                if scenario == "training":
                    if not jobs:
                        raise RuntimeError("the job ended before the measurement: raise --rounds")
                    # How far the job got while serving took the machine: at the lowest
                    # priority it gets only what serving leaves.
                    done = lambda js: js[0]["progress"]["done"] if js[0]["progress"]["stage"] == "training" else 0  # noqa: E731
                    r["rounds_during"] = done(jobs) - done(before)
                    time.sleep(duration)
                    later = running_jobs(server)
                    r["rounds_idle"] = done(later) - done(jobs) if later else None
                if r["errors"]:
                    raise RuntimeError(f"{scenario}: {r['errors']} errors")
                results[scenario].append(r)
                print(f"rep {rep + 1} {scenario:9s} {r['rps']:9.0f} req/s  p99 {r['p99_us']} us",
                      file=sys.stderr)
        for j in running_jobs(server):
            server.call("POST", f"/admin/jobs/{j['id']}/cancel")
    finally:
        server.stop()
    return results


def job_against_library(forklift, repo, rows, rounds):
    """Seconds for `forklift train` and for xgboost.train on the same rows, one thread each."""
    start = time.perf_counter()
    out = subprocess.run([forklift, "train", "eta", "--model-repository", str(repo), "--threads",
                          "1", "--json"], capture_output=True, text=True, check=True)
    job = time.perf_counter() - start
    outcome = json.loads(out.stdout)
    import xgboost as xgb
    names = feature_names(HERE.parent / "examples/models/eta/1/model.yaml")
    start = time.perf_counter()
    lines = (repo / "eta/data/rides.jsonl").read_text().splitlines()
    parsed = [json.loads(l) for l in lines]
    x = np.array([[np.nan if p["features"][n] is None else p["features"][n] for n in names]
                  for p in parsed], dtype=np.float32)
    y = np.array([p["eta_seconds"] for p in parsed], dtype=np.float32)
    read = time.perf_counter() - start
    cut = int(len(y) * 0.8)
    booster = xgb.train({"max_depth": 6, "eta": 0.1, "tree_method": "hist", "nthread": 1},
                        xgb.DMatrix(x[:cut], label=y[:cut]), rounds,
                        evals=[(xgb.DMatrix(x[cut:], label=y[cut:]), "holdout")],
                        verbose_eval=False)
    booster.save_model(str(repo / "baseline.json"))
    library = time.perf_counter() - start
    return job, library, read, outcome


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    opt = lambda name, default: type(default)(args[args.index(name) + 1]) if name in args else default  # noqa: E731
    build = Path(args[0]).resolve()
    duration, reps = opt("--duration", 5), opt("--reps", 3)
    rows, rounds = opt("--rows", 20000), opt("--rounds", 100000)
    out_file = opt("--out", "")
    forklift = str(build / "forklift")
    work = Path(tempfile.mkdtemp(prefix="forklift-training-bench-"))
    body_file = work / "body.json"
    body_file.write_text(json.dumps(BODY))
    try:
        repo = make_repo(build / "models", work, rows, rounds)
        serving = serving_while_training(forklift, repo, body_file, duration, reps)
        shutil.rmtree(work / "repo")
        repo = make_repo(build / "models", work, rows, 200)
        job, library, read, outcome = job_against_library(forklift, repo, rows, 200)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    idle_rps = statistics.median(r["rps"] for r in serving["idle"])
    idle_p99 = statistics.median(r["p99_us"] for r in serving["idle"])
    lines = [f"Serving eta while a job trains ({reps} repetitions of {duration} s, medians; the "
             f"job: {rows} rows, xgboost, 1 thread, lowest priority):", "",
             "| while | requests/s | vs idle | p99 µs | vs idle |", "|---|---|---|---|---|"]
    for s in ("idle", "training"):
        rps = statistics.median(r["rps"] for r in serving[s])
        p99 = statistics.median(r["p99_us"] for r in serving[s])
        lines.append(f"| {s} | {rps:.0f} | {rps / idle_rps:.2f}x | {p99:.0f} | {p99 / idle_p99:.2f}x |")
    during = [r["rounds_during"] for r in serving["training"]]
    after = [r["rounds_idle"] for r in serving["training"] if r["rounds_idle"] is not None]
    lines += ["", f"The job's rounds in the {duration} s of each measurement (serving at full "
              f"load): {during}; in the {duration} s after it, with no load: {after}."]
    lines += ["", f"A whole job against the library alone ({rows} rows, 200 rounds, 1 thread, "
              "from scratch):", "",
              "| | seconds | vs library |", "|---|---|---|",
              f"| XGBoost's Python package: parse the JSON lines, train, save (baseline) | "
              f"{library:.2f} | 1.00x |",
              f"| `forklift train`: read and hash, split, train, judge against the parent, write, "
              f"self-test, publish | {job:.2f} | {job / library:.2f}x |",
              "", f"(The baseline's JSON parsing alone: {read:.2f} s. forklift's job judged the "
              f"new version's held-out rmse {outcome['holdout']:.1f} against version 2's "
              f"{outcome['parent_holdout']:.1f}.)"]
    text = "\n".join(lines)
    print(text)
    if out_file:
        Path(out_file).write_text(text + "\n")


if __name__ == "__main__":
    main()
