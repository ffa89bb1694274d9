#!/usr/bin/env python3
"""How fast replicas converge through PostgreSQL (issue #3's figure).

Two `forklift serve` replicas share one private PostgreSQL server. The `eta` deployment is
promoted back and forth on replica A; after each answer from A, replica B is polled (every 2 ms,
over a kept-alive connection) until it answers with the promoted version. Measured with B idle,
then with B under wrk load at 8 connections (the load's own errors invalidate the run).

Usage: replicas.py BUILD_DIR [--smoke] [--out FILE]
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

TOKEN = "replicas-bench-token-0123"


def main():
    build = Path(sys.argv[1])
    smoke = "--smoke" in sys.argv
    out_file = (Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv
                else build / "bench" / "replicas.md")
    os.environ.setdefault("FORKLIFT_BIN", str(build / "forklift"))
    os.environ.setdefault("FORKLIFT_MODELS", str(build / "models"))
    import postgres  # noqa: E402  (after the environment the helpers read)
    from conftest import Server, selftest_cases  # noqa: E402

    changes = 4 if smoke else 40
    pg = postgres.PostgresServer()
    work = Path(tempfile.mkdtemp(prefix="forklift-replicas-"))
    env = {"FORKLIFT_ADMIN_TOKEN": TOKEN}
    a = Server(build / "models", "--state-postgres", pg.conninfo, state_file=work / "a.json", env=env)
    b = Server(build / "models", "--state-postgres", pg.conninfo, state_file=work / "b.json", env=env)
    body = {"model_id": "eta", "features": selftest_cases("eta", 2)[1]["features"]}
    body_file = work / "body.json"
    body_file.write_text(json.dumps(body))

    def version(server):
        r = server.post("/infer", body)
        assert r.status_code == 200, r.text
        return r.json()["version"]

    def measure():
        times = []
        for i in range(changes):
            target = 1 if i % 2 == 0 else 2
            r = a.admin("POST", "/admin/models/eta/promote", {"version": target}, token=TOKEN)
            assert r.status_code == 200, r.text
            start = time.monotonic()
            while version(b) != target:
                if time.monotonic() - start > 10:
                    raise SystemExit("replica B did not converge within 10 s")
                time.sleep(0.002)
            times.append((time.monotonic() - start) * 1000)
        times.sort()
        return {"median_ms": times[len(times) // 2], "max_ms": times[-1], "n": len(times)}

    try:
        idle = measure()
        wrk_out = {}

        def load():
            seconds = 3 if smoke else 15
            out = subprocess.run(
                ["wrk", "-t1", "-c8", f"-d{seconds}s", "-s", str(HERE / "post.lua"), b.url + "/infer"],
                capture_output=True, text=True, check=True,
                env={**os.environ, "BENCH_BODY_FILE": str(body_file)}).stdout
            line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON"))
            wrk_out.update(json.loads(line[len("BENCH_JSON "):]))

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(0.5)
        loaded = measure()
        loader.join()
        if wrk_out.get("errors"):
            raise SystemExit(f"wrk saw {wrk_out['errors']} errors during the changes")
    finally:
        assert a.stop() == 0 and b.stop() == 0
        pg.close()

    table = [
        "| replica B | changes | convergence median | max | B's load during the changes |",
        "|---|---|---|---|---|",
        f"| idle | {idle['n']} | {idle['median_ms']:.1f} ms | {idle['max_ms']:.1f} ms | none |",
        f"| under wrk -c8 | {loaded['n']} | {loaded['median_ms']:.1f} ms | {loaded['max_ms']:.1f} ms"
        f" | {wrk_out['rps']:,.0f} req/s, p99 {wrk_out['p99_us'] / 1000:.2f} ms, 0 errors |",
    ]
    text = ("Convergence: from replica A's answer to a promote until replica B answers with the "
            "promoted version (B polled every 2 ms).\n\n" + "\n".join(table) + "\n")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
