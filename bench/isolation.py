#!/usr/bin/env python3
"""Loading isolation and memory across reloads (issue #3's figures).

1. `eta` is loaded by wrk; its p99 is measured steady, then while a large model (`big`: eta's
   trees repeated, tens of MB of JSON) is unloaded and loaded again (parse + self-tests) in a loop
   through the admin API. Same server, same run.
2. RSS of the server before and after 100 load/unload cycles of `big`.

Usage: isolation.py BUILD_DIR [--smoke] [--out FILE]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import xgboost as xgb

TOKEN = "isolation-bench-token-0123"


def make_big_model(src_dir, dest_dir, copies):
    """eta's trees repeated `copies` times: a large artifact with known predictions."""
    model = json.loads((src_dir / "model.json").read_text())
    gb = model["learner"]["gradient_booster"]["model"]
    trees = gb["trees"]
    new_trees = []
    for c in range(copies):
        for t in trees:
            t2 = dict(t)
            t2["id"] = len(new_trees)
            new_trees.append(t2)
    gb["trees"] = new_trees
    gb["tree_info"] = gb["tree_info"] * copies
    gb["gbtree_model_param"]["num_trees"] = str(len(new_trees))
    dest_dir.mkdir(parents=True)
    (dest_dir / "model.json").write_text(json.dumps(model))
    (dest_dir / "model.yaml").write_text((src_dir / "model.yaml").read_text().replace(
        "version_policy: all", "version_policy: latest"))
    booster = xgb.Booster()
    booster.load_model(str(dest_dir / "model.json"))
    cases = [json.loads(l) for l in (src_dir / "selftest.jsonl").read_text().splitlines() if l]
    names = list(cases[0]["features"])
    rows = np.array([[np.nan if c["features"][n] is None else c["features"][n] for n in names]
                     for c in cases], dtype=np.float32)
    predicted = booster.inplace_predict(rows)
    with open(dest_dir / "selftest.jsonl", "w") as f:
        for c, p in zip(cases, predicted):
            f.write(json.dumps({"features": c["features"], "expected": float(p), "rtol": 1e-4}) + "\n")
    return (dest_dir / "model.json").stat().st_size


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wrk_p99(url, body_file, seconds, lua):
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", "-s", lua, url],
                         capture_output=True, text=True, env={**os.environ, "BENCH_BODY_FILE": str(body_file)},
                         check=True).stdout
    data = json.loads(next(l for l in out.splitlines() if l.startswith("BENCH_JSON"))[len("BENCH_JSON "):])
    if data["errors"]:
        raise SystemExit(f"wrk saw {data['errors']} errors: the figures are not valid")
    return data


def main():
    build = Path(sys.argv[1])
    smoke = "--smoke" in sys.argv
    out_file = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else build / "bench" / "isolation.md"
    seconds = 2 if smoke else 10
    cycles = 5 if smoke else 100
    copies = 2 if smoke else 10
    here = Path(__file__).resolve().parent
    work = Path(tempfile.mkdtemp(prefix="forklift-isolation-"))
    try:
        repo = work / "models"
        shutil.copytree(build / "models", repo)
        big_bytes = make_big_model(build / "models" / "eta" / "2", repo / "big" / "1", copies)
        body = work / "body.json"
        subprocess.run([sys.executable, str(here / "make_bodies.py"), str(build / "models"), str(work)], check=True)
        body = work / "eta_one.json"
        proc = subprocess.Popen([str(build / "forklift"), "serve", "--model-repository", str(repo),
                                 "--host", "127.0.0.1", "--port", "0", "--admin-port", "0",
                                 "--state-file", "none"], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "FORKLIFT_ADMIN_TOKEN": TOKEN})
        ports = {}
        for line in proc.stdout:
            e = json.loads(line)
            if e["event"] == "admin_listening":
                ports["admin"] = e["port"]
            if e["event"] == "listening":
                ports["data"] = e["port"]
            if e["event"] == "repository_loaded":
                break
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        data_url = f"http://127.0.0.1:{ports['data']}/infer"
        admin = f"http://127.0.0.1:{ports['admin']}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        session = requests.Session()

        def cycle():
            t0 = time.time()
            r1 = session.post(f"{admin}/v2/repository/models/big/unload", headers=auth, timeout=120)
            r2 = session.post(f"{admin}/v2/repository/models/big/load", headers=auth, timeout=120)
            if r1.status_code != 200 or r2.status_code != 200:
                raise SystemExit(f"reload failed: {r1.text} {r2.text}")
            return time.time() - t0

        lua = str(here / "post.lua")
        load_time = cycle()
        steady = wrk_p99(data_url, body, seconds, lua)
        stop = threading.Event()
        reloads = []

        def churn():
            while not stop.is_set():
                reloads.append(cycle())

        t = threading.Thread(target=churn)
        t.start()
        loaded = wrk_p99(data_url, body, seconds, lua)
        stop.set()
        t.join()
        steady2 = wrk_p99(data_url, body, seconds, lua)

        for _ in range(3):
            cycle()
        rss_before = rss_kib(proc.pid)
        for _ in range(cycles):
            cycle()
        time.sleep(0.5)
        rss_after = rss_kib(proc.pid)
        proc.terminate()
        proc.wait(30)

        p99_steady = (steady["p99_us"] + steady2["p99_us"]) / 2
        lines = [
            f"Isolation run on {os.cpu_count()} cores: `big` is {big_bytes / 1e6:.0f} MB of XGBoost JSON "
            f"({copies * 400} trees); one unload+load (parse and 24 self-tests) takes {load_time:.2f} s. "
            f"wrk -t1 -c8, {seconds} s per run, on `eta` (one row).",
            "",
            "| measure | steady (mean of before and after) | while `big` reloads continuously | ratio |",
            "|---|---:|---:|---:|",
            f"| eta p99 | {p99_steady / 1000:.2f} ms | {loaded['p99_us'] / 1000:.2f} ms | "
            f"{loaded['p99_us'] / p99_steady:.2f}x |",
            f"| eta p50 | {(steady['p50_us'] + steady2['p50_us']) / 2000:.2f} ms | {loaded['p50_us'] / 1000:.2f} ms | "
            f"{loaded['p50_us'] / ((steady['p50_us'] + steady2['p50_us']) / 2):.2f}x |",
            f"| eta req/s | {(steady['rps'] + steady2['rps']) / 2:,.0f} | {loaded['rps']:,.0f} | "
            f"{loaded['rps'] / ((steady['rps'] + steady2['rps']) / 2):.2f}x |",
            f"| reloads of `big` during the run | | {len(reloads)} | |",
            "",
            f"| memory | before | after {cycles} load/unload cycles of `big` | change |",
            "|---|---:|---:|---:|",
            f"| server RSS | {rss_before / 1024:.1f} MiB | {rss_after / 1024:.1f} MiB | "
            f"{(rss_after - rss_before) / rss_before * 100:+.1f}% |",
        ]
        text = "\n".join(lines) + "\n"
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        print(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
