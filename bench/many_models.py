#!/usr/bin/env python3
"""Many models in bounded memory (issue 19's figure).

200 models of about 2 MB each (copies of the example `eta`, hard-linked), Zipf-distributed
traffic from wrk (bench/zipf_models.lua: model k gets weight 1/k^1.1; one thread, 8
connections), two servers side by side, one after the other in the same run:

  budget    --memory-budget-mb holding a quarter of the models: versions load on first request,
            the least worth keeping are evicted
  all       no budget: every model loaded at start (the baseline)

For each: time to ready, requests/s, the hit ratio (answers whose version was in memory), p50
and p99 of hits and of cold starts (server-side, from Server-Timing: a cold start is a request
whose queue time is above zero), evictions, and the RSS of the server and its children sampled
every 0.25 s against the budget, plotted to --plot.

Usage: many_models.py BUILD_DIR [--models N] [--duration S] [--smoke] [--out FILE] [--plot PNG]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_repo(models_dir, work, count):
    repo = work / "repo"
    source = models_dir / "eta" / "1"
    for i in range(count):
        dst = repo / f"model{i:03d}" / "1"
        dst.mkdir(parents=True)
        for f in source.iterdir():
            os.link(f, dst / f.name)
    return repo


def rss_with_children(pid):
    def rss(p):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0
    total = rss(pid)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            for child in (task / "children").read_text().split():
                total += rss(child)
        except OSError:
            pass
    return total


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(forklift, repo, bodies, work, name, duration, extra):
    started = time.time()
    proc = subprocess.Popen([forklift, "serve", "--model-repository", str(repo), "--host",
                             "127.0.0.1", "--port", "0", "--admin-port", "0", "--state-file",
                             "none", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    port = None
    ready_at = None
    samples = []  # (seconds since start, RSS bytes)
    stop = threading.Event()

    def read_logs():
        nonlocal port, ready_at
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                port = event["port"]
            if event.get("event") == "repository_loaded":
                ready_at = time.time() - started

    def sample():
        while not stop.is_set():
            samples.append((time.time() - started, rss_with_children(proc.pid)))
            stop.wait(0.25)

    threading.Thread(target=read_logs, daemon=True).start()
    threading.Thread(target=sample, daemon=True).start()
    deadline = time.time() + 300
    while ready_at is None and time.time() < deadline:
        time.sleep(0.05)
    if ready_at is None:
        proc.kill()
        raise RuntimeError(f"{name}: the server did not get ready")
    load_started = time.time() - started
    out_prefix = work / f"wrk-{name}"
    wrk = subprocess.run(["wrk", "-t1", "-c8", f"-d{duration}s", "-s",
                          str(HERE / "zipf_models.lua"), f"http://127.0.0.1:{port}/infer"],
                         capture_output=True, text=True,
                         env={**os.environ, "BENCH_BODIES": str(bodies),
                              "BENCH_OUT": str(out_prefix)})
    evictions = metric(port, "forklift_model_evictions_total")
    cold_loads = metric(port, "forklift_model_cold_loads_total")
    stop.set()
    proc.terminate()
    proc.wait(30)
    hits, colds, failed = [], [], 0
    for f in work.glob(f"wrk-{name}.*"):
        for line in f.read_text().splitlines():
            status, queue, total = line.split()
            if status != "200":
                failed += 1
            elif float(queue) > 0:
                colds.append(float(total))
            else:
                hits.append(float(total))
    answered = len(hits) + len(colds)
    rps = next((float(l.split()[1]) for l in wrk.stdout.splitlines()
                if l.startswith("Requests/sec:")), float("nan"))
    return {
        "name": name, "ready_s": ready_at, "rps": rps, "answered": answered, "failed": failed,
        "hit_ratio": len(hits) / answered if answered else float("nan"),
        "hit_p50": percentile(hits, 0.5), "hit_p99": percentile(hits, 0.99),
        "cold_p50": percentile(colds, 0.5), "cold_p99": percentile(colds, 0.99),
        "cold_starts": len(colds), "evictions": evictions, "cold_loads": cold_loads,
        "rss_max": max(r for _, r in samples), "samples": samples, "load_started": load_started,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--models", type=int, default=200)
    p.add_argument("--duration", type=int, default=60)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--out")
    p.add_argument("--plot")
    a = p.parse_args()
    if a.smoke:
        a.models, a.duration = 20, 3
    build = Path(a.build).resolve()
    forklift = str(build / "forklift")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing (scripts/install-deps.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="forklift-many-models-"))
    try:
        repo = make_repo(build / "models", work, a.models)
        features = json.loads((build / "models" / "eta" / "1" / "selftest.jsonl")
                              .read_text().splitlines()[0])["features"]
        bodies = work / "bodies.jsonl"
        bodies.write_text("".join(json.dumps({"model_id": f"model{i:03d}", "features": features})
                                  + "\n" for i in range(a.models)))
        # A quarter of the models: each holds about its artifact's size (measured: 1.9 MB for
        # eta's 1.8 MB model.json), with 5% to spare.
        model_mb = (build / "models" / "eta" / "1" / "model.json").stat().st_size / 2 ** 20
        budget_mb = max(1, round(a.models / 4 * model_mb * 1.05))
        budget = run(forklift, repo, bodies, work, "budget", a.duration,
                     ["--memory-budget-mb", str(budget_mb)])
        everything = run(forklift, repo, bodies, work, "all", a.duration, [])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ms(x):
        return "–" if x != x else f"{x:.2f} ms"

    rows = [
        ("time to ready", f"{budget['ready_s']:.2f} s", f"{everything['ready_s']:.2f} s"),
        ("requests/s", f"{budget['rps']:.0f}", f"{everything['rps']:.0f}"),
        ("answered (failed)", f"{budget['answered']} ({budget['failed']})",
         f"{everything['answered']} ({everything['failed']})"),
        ("hit ratio", f"{budget['hit_ratio']:.1%}", f"{everything['hit_ratio']:.1%}"),
        ("p50 / p99, hits", f"{ms(budget['hit_p50'])} / {ms(budget['hit_p99'])}",
         f"{ms(everything['hit_p50'])} / {ms(everything['hit_p99'])}"),
        ("p50 / p99, cold starts", f"{ms(budget['cold_p50'])} / {ms(budget['cold_p99'])}", "–"),
        ("cold starts (loads, evictions)",
         f"{budget['cold_starts']} ({budget['cold_loads']:.0f}, {budget['evictions']:.0f})", "0"),
        ("peak RSS (server + children)", f"{budget['rss_max'] / 2**20:.0f} MB",
         f"{everything['rss_max'] / 2**20:.0f} MB"),
    ]
    text = (f"{a.models} models of {model_mb:.1f} MB (eta copies), Zipf s=1.1, wrk 1 thread 8 "
            f"connections, {a.duration} s each; budget {budget_mb} MB (a quarter of the models)\n\n"
            "| | --memory-budget-mb | no budget (all loaded) |\n|---|---|---|\n" +
            "".join(f"| {r[0]} | {r[1]} | {r[2]} |\n" for r in rows))
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4))
        for r, label in ((budget, f"--memory-budget-mb {budget_mb}"), (everything, "no budget")):
            ax.plot([t for t, _ in r["samples"]], [b / 2**20 for _, b in r["samples"]], label=label)
            ax.axvline(r["load_started"], color="gray", linewidth=0.5, linestyle=":")
        # The server's own RSS: when it was ready, before traffic loaded any model.
        base = next(b for t, b in budget["samples"] if t >= budget["load_started"]) / 2**20
        ax.axhline(base + budget_mb, color="red", linestyle="--",
                   label="budget, above the server's own RSS when ready")
        ax.set_xlabel("seconds since start (dotted: traffic starts)")
        ax.set_ylabel("RSS, server + children (MB)")
        ax.set_title(f"{a.models} models, Zipf traffic")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.plot, dpi=100)
    if budget["failed"] or everything["failed"]:
        sys.exit("requests failed")


if __name__ == "__main__":
    main()
