#!/usr/bin/env python3
"""The Open Inference Protocol over gRPC beside the same protocol over REST (issue 18's figure).

One forklift binary serving the example `eta` model on both listeners; h2load (nghttp2) loads
both in the same run, alternated in each repetition so the machine's noise hits them alike: over
HTTP/1.1 keep-alive for REST (POST /v2/models/eta/infer, JSON) and over HTTP/2 for gRPC (unary
ModelInfer: a 5-byte gRPC frame header and the protobuf message, `te: trailers`), one stream per
connection on both, so that neither is helped by multiplexing.

Cases, each over REST and gRPC:
  eta, 1 row       REST: one [1] FP32 tensor per feature, JSON. gRPC: the same, typed contents.
  eta, 1000 rows   REST: one [1000, 16] FP32 tensor, JSON.      gRPC: the same, raw_input_contents.
  no-op, 1000 rows the same bodies to a model with eta's 16 features that predicts nothing (the
                   built-in constant runtime): the protocols' own cost, without XGBoost's ~6 ms.

h2load cannot read gRPC trailers, so a gRPC error would look like success to it: every gRPC body
is first sent once with Python grpcio and its answer checked, and after each run the server's own
forklift_grpc_requests_total{code="OK"} must have grown by exactly what h2load completed.

Usage: grpc_vs_rest.py BUILD_DIR [--duration S] [--reps N] [--connections C] [--smoke] [--out FILE]
Prints a markdown table: median requests/s, p50 and p99 per case and protocol, and the ratios.
"""
import argparse
import json
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def stubs(work):
    """Python modules generated from the spec's proto, as the integration tests make them."""
    subprocess.run(["protoc", "-I", str(ROOT / "third_party/open-inference-protocol"),
                    f"--python_out={work}", f"--grpc_out={work}",
                    f"--plugin=protoc-gen-grpc={shutil.which('grpc_python_plugin')}",
                    "open_inference_grpc.proto"], check=True)
    sys.path.insert(0, str(work))
    import open_inference_grpc_pb2 as pb
    import open_inference_grpc_pb2_grpc as pb_grpc
    return pb, pb_grpc


class Server:
    def __init__(self, forklift, repo):
        self.proc = subprocess.Popen(
            [forklift, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
             "--port", "0", "--admin-port", "0", "--grpc-port", "0", "--state-file", "none",
             "--max-body-bytes", str(8 << 20)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = self.grpc_port = None
        self.loaded = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.loaded.wait(60):
            raise RuntimeError("forklift did not start")

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                self.port = event["port"]
            if event.get("event") == "grpc_listening":
                self.grpc_port = event["port"]
            if event.get("event") == "repository_loaded":
                self.loaded.set()

    def grpc_ok(self):
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        m = re.search(r'forklift_grpc_requests_total\{method="ModelInfer",code="OK"\} (\d+)', text)
        return int(m.group(1)) if m else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def make_noop(repo, eta_manifest):
    """`noop`: eta's features, answering 7 for every row with the constant runtime."""
    import yaml
    features = yaml.safe_load(eta_manifest.read_text())["features"]
    v = repo / "noop" / "1"
    v.mkdir(parents=True)
    (v / "value.txt").write_text("7\n")
    (v / "model.yaml").write_text(yaml.safe_dump({
        "runtime": "constant", "artifact": "value.txt",
        "features": [{"name": f["name"], "type": "float"} for f in features],
        "output": {"name": "y", "type": "float"}}))
    row = {f["name"]: 1.0 for f in features}
    (v / "selftest.jsonl").write_text(json.dumps({"features": row, "expected": 7}) + "\n")


def rows(n, features, seed=7):
    rng = random.Random(seed)
    return [[round(rng.uniform(0, 10), 3) for _ in features] for _ in range(n)]


def rest_body(features, data):
    if len(data) == 1:
        inputs = [{"name": f, "datatype": "FP32", "shape": [1], "data": [data[0][i]]}
                  for i, f in enumerate(features)]
    else:
        inputs = [{"name": "input-0", "datatype": "FP32", "shape": [len(data), len(features)],
                   "data": [v for row in data for v in row]}]
    return json.dumps({"inputs": inputs}).encode()


def grpc_request(pb, model, features, data):
    req = pb.ModelInferRequest(model_name=model)
    if len(data) == 1:
        for i, f in enumerate(features):
            req.inputs.add(name=f, datatype="FP32", shape=[1]).contents.fp32_contents.append(
                data[0][i])
    else:
        req.inputs.add(name="input-0", datatype="FP32", shape=[len(data), len(features)])
        req.raw_input_contents.append(struct.pack(f"<{len(data) * len(features)}f",
                                                  *[v for row in data for v in row]))
    return req


def h2load(args, url, body_file, headers, h1, duration, connections, log):
    cmd = ["h2load", "-c", str(connections), "-t", "1", "-m", "1", "-D", f"{duration:g}",
           "-d", str(body_file), "--log-file", str(log)]
    if h1:
        cmd.append("--h1")
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    done = re.search(r"requests: \d+ total, (\d+) started, (\d+) done, (\d+) succeeded", out)
    status = re.search(r"status codes: (\d+) 2xx", out)
    times = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line)
    log.unlink()
    if not done or not times:
        raise RuntimeError(f"h2load printed nothing usable:\n{out}")
    return {"started": int(done.group(1)), "done": int(done.group(2)),
            "ok": int(status.group(1)) if status else 0, "rps": int(done.group(2)) / duration,
            "p50_ms": times[len(times) // 2] / 1000, "p99_ms": times[int(len(times) * 0.99)] / 1000}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.smoke:
        a.duration, a.reps, a.connections = 1, 1, 4
    for tool in ("h2load", "protoc", "grpc_python_plugin"):
        if not shutil.which(tool):
            sys.exit(f"bench: '{tool}' is missing; run scripts/install-deps.sh")
    build = Path(a.build).resolve()
    work = Path(tempfile.mkdtemp(prefix="forklift-grpc-bench-"))
    import grpc
    pb, pb_grpc = stubs(work)
    repo = work / "models"
    shutil.copytree(build / "models" / "eta", repo / "eta")
    make_noop(repo, build / "models" / "eta" / "2" / "model.yaml")
    server = Server(str(build / "forklift"), repo)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        features = [t.name for t in stub.ModelMetadata(pb.ModelMetadataRequest(name="eta")).inputs]
        cases = {}
        for model, n in (("eta", 1), ("eta", 1000), ("noop", 1000)):
            data = rows(n, features)
            rest = work / f"rest-{model}-{n}.json"
            rest.write_bytes(rest_body(features, data))
            message = grpc_request(pb, model, features, data)
            # Checked once with a real gRPC client: the body h2load repeats is a valid call.
            answer = stub.ModelInfer(message)
            got = (struct.unpack(f"<{n}f", answer.raw_output_contents[0]) if n > 1
                   else answer.outputs[0].contents.fp32_contents)
            r = requests.post(f"http://127.0.0.1:{server.port}/v2/models/{model}/infer",
                              data=rest.read_bytes(), timeout=30)
            assert r.status_code == 200, r.text
            want = r.json()["outputs"][0]["data"]
            assert len(got) == len(want) and all(abs(x - y) <= 1e-3 * max(1, abs(y))
                                                 for x, y in zip(got, want)), (got[:3], want[:3])
            framed = work / f"grpc-{model}-{n}.bin"
            payload = message.SerializeToString()
            framed.write_bytes(b"\0" + struct.pack(">I", len(payload)) + payload)
            cases[(model, n)] = (rest, framed, len(rest.read_bytes()), len(payload))
        results = {(n, p): [] for n in cases for p in ("REST", "gRPC")}
        log = work / "h2load.log"
        for _ in range(a.reps):
            for (model, n), (rest, framed, _, _) in cases.items():
                for proto in ("REST", "gRPC"):
                    if proto == "REST":
                        r = h2load(a, f"http://127.0.0.1:{server.port}/v2/models/{model}/infer",
                                   rest,
                                   ["content-type: application/json"], True, a.duration,
                                   a.connections, log)
                        assert r["ok"] == r["done"], r
                    else:
                        before = server.grpc_ok()
                        r = h2load(a, f"http://127.0.0.1:{server.grpc_port}"
                                   "/inference.GRPCInferenceService/ModelInfer", framed,
                                   ["content-type: application/grpc", "te: trailers"], False,
                                   a.duration, a.connections, log)
                        # Every call h2load counted was answered OK by gRPC, not just HTTP 200
                        # (calls still in flight when its time ran out are answered, not counted).
                        grown = server.grpc_ok() - before
                        assert r["done"] <= grown <= r["started"], (r, grown)
                    results[((model, n), proto)].append(r)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(n, p, key):
        return statistics.median(r[key] for r in results[(n, p)])

    def label(case):
        return f"{case[0]}, {'1 row' if case[1] == 1 else f'{case[1]} rows'}"

    lines = [f"gRPC beside REST, one forklift: h2load, {a.connections} connections, "
             f"one stream each, {a.duration:g} s x {a.reps} alternated (medians)", "",
             "| request | protocol | body bytes | requests/s | p50 ms | p99 ms |",
             "|---|---|---:|---:|---:|---:|"]
    for n, (_, _, rest_bytes, grpc_bytes) in cases.items():
        for p, size in (("REST", rest_bytes), ("gRPC", grpc_bytes)):
            form = " (JSON)" if p == "REST" else (" (typed)" if n[1] == 1 else " (raw)")
            lines.append(f"| {label(n)}{form} | {p} | {size} | {med(n, p, 'rps'):,.0f} | "
                         f"{med(n, p, 'p50_ms'):.3f} | {med(n, p, 'p99_ms'):.3f} |")
    lines += ["", "| request | gRPC / REST requests/s | REST / gRPC p50 |", "|---|---:|---:|"]
    for n in cases:
        lines.append(f"| {label(n)} | "
                     f"{med(n, 'gRPC', 'rps') / med(n, 'REST', 'rps'):.2f}x | "
                     f"{med(n, 'REST', 'p50_ms') / med(n, 'gRPC', 'p50_ms'):.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
