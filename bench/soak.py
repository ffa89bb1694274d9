#!/usr/bin/env python3
"""Soak (issue #8): `forklift serve` under steady load for a bounded time with periodic hot swaps,
watching for growth in memory (RSS), file descriptors and threads, and for any failed request.

Load: wrk (4 connections, one thread) POSTing one `eta` row to /infer without pause, run in
consecutive windows of --swap-every seconds. Half-way through each window a new version of `eta`
is published (a copy of version 2 as the next number) and the oldest removed from disk, so the
server (polling the repository every second) loads and self-tests the new one, moves traffic to
it and unloads the old one, all under load. A sampler reads /proc/<pid> every 5 s, or every half
window when windows are shorter.

Checks (the run fails if one does not hold): every request answered 2xx with no socket error;
every swap served (within a generous bound: loading runs at idle priority behind the load);
descriptors when idle at the end equal to those idle at the start,
and never more than the clients' connections (+2) above them;
RSS at the end within the margin of RSS after the first window (the margin is the larger of
10 % and 16 MiB: the allocator keeps some freed memory in its arenas).

Usage: soak.py BUILD_DIR [--duration S] [--swap-every S] [--smoke] [--out FILE]
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

import requests

HERE = Path(__file__).resolve().parent
RSS_MARGIN_FRACTION = 0.10
RSS_MARGIN_MIB = 16.0
# Loading runs at idle CPU priority, behind serving: on a machine saturated by the load itself a
# swap can wait many seconds. This bounds the wait only so that a swap that never happens fails.
SWAP_LIMIT_SECONDS = 120


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def proc_sample(pid):
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def main():
    build = Path(sys.argv[1]).resolve()
    smoke = "--smoke" in sys.argv
    duration = arg("--duration", 20 if smoke else 600)
    swap_every = arg("--swap-every", 5 if smoke else 30)
    out_file = Path(arg("--out", str(build / "bench" / ("soak-smoke.md" if smoke else "soak.md"))))
    wrk = shutil.which("wrk")
    assert wrk, "wrk is missing: run scripts/install-deps.sh"

    work = Path(tempfile.mkdtemp(prefix="forklift-soak-"))
    repo = work / "models"
    source = build / "models" / "eta" / "2"
    shutil.copytree(source, repo / "eta" / "1")
    shutil.copytree(source, repo / "eta" / "2")
    first_case = json.loads((source / "selftest.jsonl").read_text().splitlines()[0])
    body = work / "body.json"
    body.write_text(json.dumps({"model_id": "eta", "features": first_case["features"]}))

    proc = subprocess.Popen(
        [str(build / "forklift"), "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
         "--port", "0", "--admin-port", "0", "--state-file", "none", "--poll-seconds", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    for line in proc.stdout:
        event = json.loads(line) if line.startswith("{") else {}
        port = event.get("port", port) if event.get("event") == "listening" else port
        if event.get("event") == "repository_loaded":
            break
    assert port, "the server did not start"
    url = f"http://127.0.0.1:{port}"
    unexpected_logs = []

    def drain_logs():
        for line in proc.stdout:
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("level") == "error":
                unexpected_logs.append(line.strip())

    threading.Thread(target=drain_logs, daemon=True).start()

    samples = []
    stop = threading.Event()
    started = time.monotonic()
    idle_fds = proc_sample(proc.pid)["fds"]  # before any client connects

    # Every 5 s, or twice a window when windows are shorter (the smoke's), so that a sample
    # falls after the first window whatever its length.
    sample_every = min(5.0, swap_every / 2)

    def sampler():
        while not stop.is_set():
            samples.append({"t": time.monotonic() - started, **proc_sample(proc.pid)})
            stop.wait(sample_every)

    threading.Thread(target=sampler, daemon=True).start()

    swaps = []  # (version, seconds until it answered)

    def swap(version):
        shutil.copytree(source, repo / "eta" / str(version))
        shutil.rmtree(repo / "eta" / str(version - 2))
        t0 = time.monotonic()
        while time.monotonic() - t0 < SWAP_LIMIT_SECONDS:
            r = requests.post(url + "/infer", data=body.read_bytes(), timeout=5)
            if r.status_code == 200 and r.json()["version"] == version:
                swaps.append((version, time.monotonic() - t0))
                return
            time.sleep(0.05)
        swaps.append((version, None))

    windows = []
    first_window_end = None
    version = 2
    while time.monotonic() - started < duration:
        seconds = max(1, min(swap_every, int(duration - (time.monotonic() - started))))
        version += 1
        timer = threading.Timer(seconds / 2, swap, args=(version,))
        timer.start()
        out = subprocess.run(
            [wrk, "-t1", "-c4", f"-d{seconds}s", "--latency", "-s", str(HERE / "post.lua"),
             url + "/infer"], capture_output=True, text=True,
            env={**os.environ, "BENCH_BODY_FILE": str(body)})
        timer.join()  # the window's swap is served before the next window starts
        if first_window_end is None:
            first_window_end = time.monotonic() - started
        line = next(l for l in out.stdout.splitlines() if l.startswith("BENCH_JSON"))
        windows.append(json.loads(line.removeprefix("BENCH_JSON ")))
    stop.set()
    time.sleep(1)  # wrk's connections closed
    samples.append({"t": time.monotonic() - started, **proc_sample(proc.pid)})
    proc.terminate()
    term_at = time.monotonic()
    try:
        exit_code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        exit_code = "killed after 60 s"
    stop_seconds = time.monotonic() - term_at
    shutil.rmtree(work, ignore_errors=True)

    # The baseline is the first sample after the first window (warm: one swap done).
    baseline = next(s for s in samples if s["t"] >= first_window_end)
    end = samples[-1]
    sent = sum(w["requests"] for w in windows)
    failed = sum(w["errors"] for w in windows)
    margin = max(baseline["rss_mib"] * RSS_MARGIN_FRACTION, RSS_MARGIN_MIB)
    checks = {
        "no failed request": failed == 0,
        "every swap served": all(s is not None for _, s in swaps),
        # Idle before and after: the same descriptors. Under load: the 4 connections on top.
        "descriptors back to the start when idle": end["fds"] == idle_fds,
        "descriptors under load bounded": max(s["fds"] for s in samples) <= idle_fds + 4 + 2,
        f"RSS within {margin:.1f} MiB of the baseline": end["rss_mib"] - baseline["rss_mib"] <= margin,
        "no error logged": not unexpected_logs,
        "exit 0 on SIGTERM within 5 s": exit_code == 0 and stop_seconds < 5,
    }
    peak = max(samples, key=lambda s: s["rss_mib"])
    lines = [
        f"# Soak: {duration} s of steady load, a hot swap every {swap_every} s"
        + (" (smoke)" if smoke else ""),
        "",
        f"- requests: {sent:,} sent, {sent - failed:,} answered 2xx, {failed} failed "
        f"({sent / duration:,.0f} req/s on average, wrk -t1 -c4)",
        f"- hot swaps: {len(swaps)} (versions 3 to {version}); each served after "
        f"{min(s for _, s in swaps if s is not None):.2f}-"
        f"{max(s for _, s in swaps if s is not None):.2f} s" if all(s is not None for _, s in swaps)
        else f"- hot swaps: {len(swaps)}, some not served within {SWAP_LIMIT_SECONDS} s: {swaps}",
        f"- RSS: {samples[0]['rss_mib']:.1f} MiB at start, {baseline['rss_mib']:.1f} after the "
        f"first window, peak {peak['rss_mib']:.1f} (at {peak['t']:.0f} s), "
        f"{end['rss_mib']:.1f} at the end ({end['rss_mib'] - baseline['rss_mib']:+.1f} MiB)",
        f"- file descriptors: {idle_fds} idle at start, "
        f"{min(s['fds'] for s in samples)}-{max(s['fds'] for s in samples)} over the run "
        f"(4 client connections), {end['fds']} idle at the end",
        f"- threads: {baseline['threads']} after the first window, {end['threads']} at the end",
        f"- SIGTERM at the end: exit {exit_code} after {stop_seconds:.2f} s",
        f"- p99 per window: " + ", ".join(f"{w['p99_us'] / 1000:.2f}" for w in windows) + " ms",
        "",
        "| check | result |",
        "|---|---|",
        *[f"| {name} | {'pass' if ok else 'FAIL'} |" for name, ok in checks.items()],
        "",
        f"RSS (MiB) and descriptors every {sample_every:g} s: "
        + ", ".join(f"{s['t']:.0f}s {s['rss_mib']:.1f}/{s['fds']}" for s in samples),
    ]
    if unexpected_logs:
        lines += ["", "Errors logged:", *unexpected_logs[:20]]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
