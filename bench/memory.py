#!/usr/bin/env python3
"""Memory and start-up with many loaded versions (issue #7): the server's RSS with 1, 10 and 100
versions of `eta` loaded (copies of version 2 under `version_policy: all`, so every one loads and
self-tests), and the time from start to ready. One server per count, started one after another.

Usage: memory.py BUILD_DIR [--smoke] [--out FILE]
"""
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    build = Path(sys.argv[1]).resolve()
    smoke = "--smoke" in sys.argv
    out_file = (Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv
                else build / "bench" / "memory.md")
    counts = [1, 3] if smoke else [1, 10, 100]
    source = build / "models" / "eta" / "2"
    rows = []
    for count in counts:
        repo = Path(tempfile.mkdtemp(prefix="forklift-memory-"))
        try:
            for v in range(1, count + 1):
                shutil.copytree(source, repo / "eta" / str(v))
                manifest = repo / "eta" / str(v) / "model.yaml"
                manifest.write_text(manifest.read_text().replace("version_policy: latest",
                                                                 "version_policy: all"))
            started = time.monotonic()
            proc = subprocess.Popen(
                [str(build / "forklift"), "serve", "--model-repository", str(repo), "--host",
                 "127.0.0.1", "--port", "0", "--admin-port", "0", "--state-file", "none"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            port = None
            ready_at = None
            for line in proc.stdout:
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("event") == "listening":
                    port = event["port"]
                if event.get("event") == "repository_loaded":
                    ready_at = time.monotonic()
                    break
            assert port and ready_at, "the server did not load"
            serving = requests.get(f"http://127.0.0.1:{port}/v2/models/eta").json()["versions"]
            assert len(serving) == count, (len(serving), count)
            time.sleep(0.5)
            rows.append((count, rss_mib(proc.pid), ready_at - started))
            proc.terminate()
            proc.wait(30)
        finally:
            shutil.rmtree(repo, ignore_errors=True)
    lines = ["| versions of eta loaded | server RSS | start to ready |", "|---:|---:|---:|"]
    for count, rss, ready in rows:
        lines.append(f"| {count} | {rss:.1f} MiB | {ready:.2f} s |")
    size = (source / "model.json").stat().st_size / 2**20
    text = (f"Each version: eta v2, 400 trees, {size:.1f} MiB of XGBoost JSON, loaded and "
            "self-tested (24 cases) at start.\n\n" + "\n".join(lines) + "\n")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
