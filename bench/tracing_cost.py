#!/usr/bin/env python3
"""What tracing costs the serving path (issue 18's figure).

One forklift binary, the example `eta` model, wrk sending one-row /infer requests (one thread,
16 connections). Scenarios, alternated in each repetition so the machine's noise hits them alike:

  off       no --otlp-endpoint: the reference
  1%        --trace-sample-ratio 0.01 (requests without a caller's traceparent)
  100%      --trace-sample-ratio 1: every request's spans exported
  timing    no tracing, every answer with a Server-Timing header (--server-timing)

The collector is a small OTLP/HTTP receiver in this process that accepts and counts what it is
sent (it does not decode: the tests do that), so its own cost is a thread of this script.

Usage: tracing_cost.py BUILD_DIR [--duration S] [--reps N] [--smoke] [--out FILE]
Prints a markdown table: median requests/s and p99 per scenario, and the ratio to `off`.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from rollout_cost import BODY, Server, run_wrk  # noqa: E402  (same server and wrk driver)


class Collector:
    """Accepts OTLP/HTTP posts on 127.0.0.1 and counts their spans (by counting span ids)."""

    def __init__(self):
        self.spans = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.spans += body.count(b'"spanId"')
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


SCENARIOS = {"off": [], "1%": ["--trace-sample-ratio", "0.01"],
             "100%": ["--trace-sample-ratio", "1"], "timing": ["--server-timing"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.smoke:
        a.duration, a.reps = 1, 1
    build = Path(a.build).resolve()
    work = Path(tempfile.mkdtemp(prefix="forklift-tracing-bench-"))
    repo = work / "models"
    shutil.copytree(build / "models" / "eta", repo / "eta")
    body_file = work / "body.json"
    body_file.write_text(json.dumps(BODY))
    collector = Collector()
    results = {s: [] for s in SCENARIOS}
    exported = {}
    try:
        for rep in range(a.reps):
            for scenario, flags in SCENARIOS.items():
                if scenario in ("1%", "100%"):
                    flags = ["--otlp-endpoint", collector.url, *flags]
                server = Server(str(build / "forklift"), repo, flags)
                try:
                    run_wrk(server.url, body_file, 1)  # warm up
                    before = collector.spans
                    r = run_wrk(server.url, body_file, a.duration)
                    if r["errors"]:
                        raise RuntimeError(f"{scenario}: {r['errors']} errors")
                    results[scenario].append(r)
                finally:
                    server.stop()
                exported[scenario] = collector.spans - before
                print(f"rep {rep + 1} {scenario:7s} {r['rps']:9.0f} req/s  p99 {r['p99_us']} us"
                      f"  spans received {exported[scenario]}", file=sys.stderr)
    finally:
        collector.server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(r["rps"] for r in results["off"])
    base_p99 = statistics.median(r["p99_us"] for r in results["off"])
    lines = [f"Tracing's cost: one forklift, `eta`, wrk 1 thread 16 connections, one-row /infer, "
             f"{a.duration} s x {a.reps} alternated (medians)", "",
             "| tracing | requests/s | vs off | p99 µs | vs off | spans received (last rep) |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in SCENARIOS:
        rps = statistics.median(r["rps"] for r in results[s])
        p99 = statistics.median(r["p99_us"] for r in results[s])
        lines.append(f"| {s} | {rps:,.0f} | {rps / base:.2f}x | {p99:.0f} | {p99 / base_p99:.2f}x"
                     f" | {exported[s]:,} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(table)


if __name__ == "__main__":
    main()
