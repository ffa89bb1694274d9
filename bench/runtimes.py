#!/usr/bin/env python3
"""The optional runtimes beside the seed's stack (issue #4's figures).

forklift serves `fraud` (torchscript runtime) and `cancel_risk` (python runtime, scikit-learn);
Flask + Gunicorn (2 sync workers) serves the same files through the same libraries in Python
(bench/flask_runtimes.py). wrk -t1 at 8 connections, one row and 100-row batches, both servers
alternating in the same run; medians of the repetitions.

At scale (issue 20): one-row requests at 64 connections, where forklift gathers the rows of many
requests into one runtime call (dynamic_batching) — for cancel_risk in two worker processes, each
call's rows passed as columns — against the same Flask + Gunicorn.

Usage: runtimes.py BUILD_DIR [--smoke] [--out FILE]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent

# What each model's manifest gets for the runs at 64 connections.
SCALE_SETTINGS = {
    "cancel_risk": ("runtime_options: {processes: 2}\n"
                    "dynamic_batching: {max_batch_size: 64, max_queue_delay_us: 1000, threads: 2}\n"),
    "fraud": "dynamic_batching: {max_batch_size: 64, max_queue_delay_us: 1000, threads: 1}\n",
}
SCALE_CONNECTIONS = 64


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, body, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.post(url, data=body, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def wrk(url, body_file, seconds, connections=8):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "post.lua"), url],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "BENCH_BODY_FILE": str(body_file)}).stdout
    data = json.loads(next(l for l in out.splitlines()
                           if l.startswith("BENCH_JSON"))[len("BENCH_JSON "):])
    if data["errors"] or data["non2xx"]:
        raise SystemExit(f"wrk saw errors on {url}: {data}")
    return data


def main():
    build = Path(sys.argv[1]).resolve()
    smoke = "--smoke" in sys.argv
    out_file = (Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv
                else build / "bench" / "runtimes.md")
    models = build / "models"
    present = [m for m in ("fraud", "cancel_risk") if (models / m).is_dir()]
    if not present:
        print("runtimes: built without the torchscript and python runtimes; nothing to measure")
        return
    seconds, reps = (1, 1) if smoke else (5, 3)
    work = build / "bench"
    work.mkdir(parents=True, exist_ok=True)
    bodies = {}
    for m in present:
        cases = [json.loads(l) for l in (models / m / "1" / "selftest.jsonl").read_text().splitlines()]
        one = work / f"{m}_one.json"
        one.write_text(json.dumps({"model_id": m, "features": cases[1]["features"]}))
        batch = work / f"{m}_batch100.json"
        batch.write_text(json.dumps({"model_id": m, "instances": [cases[i % len(cases)]["features"]
                                                                  for i in range(100)]}))
        bodies[m] = {"1 row": one, "100-row batch": batch}

    # The python runtime again with two worker processes (runtime_options.processes), so that
    # Python code runs on both cores like Gunicorn's two workers.
    multi = work / "models-processes"
    if "cancel_risk" in present:
        shutil.rmtree(multi, ignore_errors=True)
        shutil.copytree(models / "cancel_risk", multi / "cancel_risk")
        manifest = multi / "cancel_risk" / "1" / "model.yaml"
        manifest.write_text(manifest.read_text() + "runtime_options: {processes: 2}\n")
    # At scale: the same models with dynamic batching (cancel_risk also in two processes, one
    # batching thread each).
    scale = work / "models-at-scale"
    shutil.rmtree(scale, ignore_errors=True)
    for m in present:
        shutil.copytree(models / m, scale / m)
        manifest = scale / m / "1" / "model.yaml"
        extra = SCALE_SETTINGS[m]
        manifest.write_text(manifest.read_text() + extra)
    procs = []
    try:
        fl_port, gu_port, fl2_port, fl3_port = free_port(), free_port(), free_port(), free_port()
        procs.append(subprocess.Popen(
            [str(build / "forklift"), "serve", "--model-repository", str(models), "--host",
             "127.0.0.1", "--port", str(fl_port), "--admin-port", "0", "--state-file", "none"],
            stdout=subprocess.DEVNULL, stderr=open(work / "runtimes-servers.log", "a")))
        procs.append(subprocess.Popen(
            ["/usr/bin/python3", "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{gu_port}",
             "--chdir", str(HERE), "--log-level", "warning", "flask_runtimes:app"],
            env={**os.environ, "FORKLIFT_MODELS": str(models)},
            stdout=subprocess.DEVNULL, stderr=open(work / "runtimes-servers.log", "a")))
        if "cancel_risk" in present:
            procs.append(subprocess.Popen(
                [str(build / "forklift"), "serve", "--model-repository", str(multi), "--host",
                 "127.0.0.1", "--port", str(fl2_port), "--admin-port", "0", "--state-file", "none"],
                stdout=subprocess.DEVNULL, stderr=open(work / "runtimes-servers.log", "a")))
        procs.append(subprocess.Popen(
            [str(build / "forklift"), "serve", "--model-repository", str(scale), "--host",
             "127.0.0.1", "--port", str(fl3_port), "--admin-port", "0", "--state-file", "none"],
            stdout=subprocess.DEVNULL, stderr=open(work / "runtimes-servers.log", "a")))
        urls = {"forklift": f"http://127.0.0.1:{fl_port}/infer",
                "flask": f"http://127.0.0.1:{gu_port}/infer"}
        for m in present:
            for url in urls.values():
                wait_for(url, bodies[m]["1 row"].read_bytes())
        cases = [(m, m, case, body, urls, 8) for m in present for case, body in bodies[m].items()]
        if "cancel_risk" in present:
            multi_urls = {"forklift": f"http://127.0.0.1:{fl2_port}/infer", "flask": urls["flask"]}
            wait_for(multi_urls["forklift"], bodies["cancel_risk"]["1 row"].read_bytes())
            cases += [("cancel_risk", "cancel_risk/2p", case, body, multi_urls, 8)
                      for case, body in bodies["cancel_risk"].items()]
        scale_urls = {"forklift": f"http://127.0.0.1:{fl3_port}/infer", "flask": urls["flask"]}
        for m in present:
            wait_for(scale_urls["forklift"], bodies[m]["1 row"].read_bytes())
            cases.append((m, m + "/scale", "1 row", bodies[m]["1 row"], scale_urls,
                          SCALE_CONNECTIONS))
        rows = []
        for m, label, case, body, targets, connections in cases:
            runs = {name: [] for name in targets}
            for _ in range(reps):
                for name, url in targets.items():
                    runs[name].append(wrk(url, body, seconds, connections))
            med = {name: sorted(r, key=lambda d: d["rps"])[len(r) // 2] for name, r in runs.items()}
            spread = {name: (min(d["rps"] for d in r), max(d["rps"] for d in r))
                      for name, r in runs.items()}
            rows.append((label, case, connections, med["forklift"], med["flask"], spread))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()

    runtime = {"fraud": "torchscript", "cancel_risk": "python, in process",
               "cancel_risk/2p": "python, 2 worker processes",
               "fraud/scale": "torchscript, dynamic batching",
               "cancel_risk/scale": "python, 2 worker processes, dynamic batching"}
    lines = ["| model (runtime) | request | connections | forklift req/s (range) | p99 "
             "| Flask+Gunicorn req/s (range) | p99 | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for m, case, connections, fl, gu, spread in rows:
        lo_f, hi_f = spread["forklift"]
        lo_g, hi_g = spread["flask"]
        lines.append(f"| {m.split('/')[0]} ({runtime[m]}) | {case} | {connections} "
                     f"| {fl['rps']:,.0f} ({lo_f:,.0f}-{hi_f:,.0f}) | {fl['p99_us'] / 1000:.2f} ms "
                     f"| {gu['rps']:,.0f} ({lo_g:,.0f}-{hi_g:,.0f}) | {gu['p99_us'] / 1000:.2f} ms "
                     f"| {fl['rps'] / gu['rps']:.1f}x |")
    settings = "; ".join(f"{m}: `{s.strip().replace(chr(10), '; ')}`" for m, s in SCALE_SETTINGS.items())
    text = (f"wrk -t1, {seconds} s per run, median of {reps} alternating runs (the range: slowest "
            "and fastest run), same machine for load generator and servers; Flask + Gunicorn with "
            f"2 sync workers. At scale, forklift's manifests add: {settings}.\n\n"
            + "\n".join(lines) + "\n")
    out_file.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
