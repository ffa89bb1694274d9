"""The Open Inference Protocol over gRPC (--grpc-port), tested with Python grpcio on stubs that
protoc generates from the spec's proto: the same answers as REST, typed and raw tensors, errors
mapped to gRPC status codes, deadlines, shedding, metrics, TLS, the repository extension and the
drain on SIGTERM."""
import json
import math
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import FORKLIFT, Server, grpc_server, require_or_skip, selftest_cases
from test_limits import constant_repo
from test_tls import make_certificate

TOKEN = "grpc-admin-token-0123456789"


@pytest.fixture
def served(repo_copy, oip_grpc):
    import grpc
    pb, pb_grpc, repo_pb, repo_grpc, _ = oip_grpc
    s = grpc_server(repo_copy, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    channel = grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}")
    yield s, pb, pb_grpc.GRPCInferenceServiceStub(channel), repo_pb, \
        repo_grpc.ModelRepositoryServiceStub(channel)
    channel.close()
    assert s.stop() == 0


def eta_rows(n):
    # Rows with every feature given (a missing value has no typed or raw form in the protocol).
    cases = [c for c in selftest_cases("eta", 2) if None not in c["features"].values()]
    return [cases[i % len(cases)]["features"] for i in range(n)]


def typed_request(pb, model, rows, version=""):
    req = pb.ModelInferRequest(model_name=model, model_version=version, id="req-1")
    for name in rows[0]:
        t = req.inputs.add(name=name, datatype="FP64", shape=[len(rows)])
        t.contents.fp64_contents.extend(float(r[name]) for r in rows)
    return req


def raw_matrix_request(pb, model, rows, features):
    """All features as one [N, F] FP32 tensor in raw_input_contents (what Triton clients send)."""
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="input-0", datatype="FP32", shape=[len(rows), len(features)])
    req.raw_input_contents.append(
        b"".join(struct.pack("<f", float(r[f])) for r in rows for f in features))
    return req


def rest_outputs(s, model, rows):
    r = s.post("/infer", {"model_id": model, "instances": rows} if len(rows) > 1 else
               {"model_id": model, "features": rows[0]})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["outputs"] if "outputs" in body else [body["output"]]


def code_of(call, *args, **kw):
    import grpc
    try:
        call(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def test_health_and_metadata_answer_as_rest_does(served):
    s, pb, stub, _, _ = served
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    meta = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "forklift" and "model_repository" in meta.extensions
    rest = s.get("/v2/models/eta").json()
    grpc_meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="eta"))
    assert grpc_meta.name == rest["name"] and list(grpc_meta.versions) == rest["versions"]
    assert grpc_meta.platform == rest["platform"]
    assert [(t.name, t.datatype, list(t.shape)) for t in grpc_meta.inputs] == \
        [(t["name"], t["datatype"], t["shape"]) for t in rest["inputs"]]
    assert [(t.name, t.datatype) for t in grpc_meta.outputs] == \
        [(t["name"], t["datatype"]) for t in rest["outputs"]]
    assert stub.ModelReady(pb.ModelReadyRequest(name="eta", version="1")).ready
    import grpc
    assert code_of(stub.ModelReady, pb.ModelReadyRequest(name="nope"))[0] == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(stub.ModelMetadata, pb.ModelMetadataRequest(name="eta", version="x"))[0] == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_typed_and_raw_inference_give_the_rest_answers(served):
    s, pb, stub, _, _ = served
    rows = eta_rows(5)
    expected = rest_outputs(s, "eta", rows)
    answer, call = stub.ModelInfer.with_call(typed_request(pb, "eta", rows))
    assert answer.model_name == "eta" and answer.model_version == "2" and answer.id == "req-1"
    out = answer.outputs[0]
    assert out.name == "eta_seconds" and out.datatype == "FP32" and list(out.shape) == [5]
    assert not answer.raw_output_contents
    for got, want in zip(out.contents.fp32_contents, expected):
        assert math.isclose(got, want, rel_tol=1e-6), (got, want)
    assert dict(call.initial_metadata())["x-request-id"]

    # The same rows as one raw [N, F] FP32 matrix: the answer comes back raw, little-endian.
    features = [t.name for t in stub.ModelMetadata(pb.ModelMetadataRequest(name="eta")).inputs]
    raw = stub.ModelInfer(raw_matrix_request(pb, "eta", rows, features))
    assert len(raw.raw_output_contents) == 1 and not raw.outputs[0].contents.fp32_contents
    values = struct.unpack("<5f", raw.raw_output_contents[0])
    for got, want in zip(values, expected):
        assert math.isclose(got, want, rel_tol=1e-5), (got, want)


def test_raw_bytes_and_typed_strings_feed_a_string_feature(served):
    s, pb, stub, _, _ = served
    case = selftest_cases("surge", 1)[0]["features"]
    expected = rest_outputs(s, "surge", [case])[0]
    meta = {t.name: t.datatype for t in
            stub.ModelMetadata(pb.ModelMetadataRequest(name="surge")).inputs}
    req = pb.ModelInferRequest(model_name="surge")
    for name, value in case.items():
        t = req.inputs.add(name=name, datatype=meta[name], shape=[1])
        if meta[name] == "BYTES":
            data = value.encode()
            req.raw_input_contents.append(struct.pack("<I", len(data)) + data)
        elif meta[name] == "BOOL":
            req.raw_input_contents.append(bytes([1 if value else 0]))
        elif meta[name] == "INT64":
            req.raw_input_contents.append(struct.pack("<q", int(value)))
        else:
            req.raw_input_contents.append(struct.pack("<f", float(value)))
    answer = stub.ModelInfer(req)
    assert math.isclose(struct.unpack("<f", answer.raw_output_contents[0])[0], expected,
                        rel_tol=1e-5)


def test_bad_requests_get_the_right_status_codes_and_cost_only_themselves(served):
    import grpc
    s, pb, stub, _, _ = served
    rows = eta_rows(2)
    bad = []
    req = typed_request(pb, "nope", rows)
    bad.append(("unknown model", req, grpc.StatusCode.NOT_FOUND, "unknown model"))
    req = typed_request(pb, "eta", rows, version="9")
    bad.append(("unknown version", req, grpc.StatusCode.NOT_FOUND, "version"))
    req = typed_request(pb, "eta", rows, version="-1")
    bad.append(("bad version", req, grpc.StatusCode.INVALID_ARGUMENT, "positive integer"))
    bad.append(("no inputs", pb.ModelInferRequest(model_name="eta"),
                grpc.StatusCode.INVALID_ARGUMENT, "'inputs' is required"))
    req = typed_request(pb, "eta", rows)
    del req.inputs[0]
    bad.append(("missing feature", req, grpc.StatusCode.INVALID_ARGUMENT, "trip_distance_km"))
    req = typed_request(pb, "eta", rows)
    req.inputs[0].shape[:] = [3]
    bad.append(("shape", req, grpc.StatusCode.INVALID_ARGUMENT, "holds 3 element(s)"))
    req = typed_request(pb, "eta", rows)
    req.inputs[0].shape[:] = [2**40, 2**40]
    bad.append(("overflowing shape", req, grpc.StatusCode.INVALID_ARGUMENT, "too many"))
    req = typed_request(pb, "eta", rows)
    req.inputs[0].datatype = "FP16"
    bad.append(("datatype", req, grpc.StatusCode.INVALID_ARGUMENT, "not supported"))
    req = typed_request(pb, "eta", rows)
    req.inputs[0].contents.int64_contents.extend([1, 2])
    bad.append(("two content fields", req, grpc.StatusCode.INVALID_ARGUMENT, "only there"))
    req = typed_request(pb, "eta", rows)
    req.inputs[0].contents.fp64_contents[0] = float("nan")
    bad.append(("NaN", req, grpc.StatusCode.INVALID_ARGUMENT, "finite"))
    req = typed_request(pb, "eta", rows)
    req.inputs[0].datatype = "FP32"
    req.inputs[0].contents.ClearField("fp64_contents")
    req.inputs[0].contents.fp32_contents.extend([1.0, 2.0])
    req.inputs[0].contents.fp32_contents[1] = float("inf")
    bad.append(("infinity", req, grpc.StatusCode.INVALID_ARGUMENT, "finite"))
    req = raw_matrix_request(pb, "eta", rows, list(rows[0]))
    req.raw_input_contents[0] = req.raw_input_contents[0][:-1]
    bad.append(("raw not whole", req, grpc.StatusCode.INVALID_ARGUMENT, "whole number"))
    req = raw_matrix_request(pb, "eta", rows, list(rows[0]))
    req.raw_input_contents.append(b"")
    bad.append(("raw count", req, grpc.StatusCode.INVALID_ARGUMENT, "one per input"))
    req = raw_matrix_request(pb, "eta", rows, list(rows[0]))
    req.inputs[0].contents.fp32_contents.append(1.0)
    bad.append(("raw and contents", req, grpc.StatusCode.INVALID_ARGUMENT, "must be empty"))
    req = pb.ModelInferRequest(model_name="surge")
    req.inputs.add(name="city", datatype="BYTES", shape=[1])
    req.raw_input_contents.append(struct.pack("<I", 1000) + b"sf")
    bad.append(("raw bytes length", req, grpc.StatusCode.INVALID_ARGUMENT, "longer than"))
    req = typed_request(pb, "eta", rows)
    req.outputs.add(name="not_an_output")
    bad.append(("requested output", req, grpc.StatusCode.INVALID_ARGUMENT, "unknown output"))
    req = typed_request(pb, "eta", rows)
    req.parameters["experiment_key"].int64_param = 3
    bad.append(("parameter type", req, grpc.StatusCode.INVALID_ARGUMENT, "experiment_key"))
    req = typed_request(pb, "eta", rows)
    req.parameters["explain"].bool_param = True
    bad.append(("explain over gRPC", req, grpc.StatusCode.INVALID_ARGUMENT, "REST only"))
    req = typed_request(pb, "eta", rows)
    req.id = "x" * 257
    bad.append(("long id", req, grpc.StatusCode.INVALID_ARGUMENT, "longer than 256"))
    for what, request, code, words in bad:
        got, details = code_of(stub.ModelInfer, request)
        assert got == code and words in details, (what, got, details)
    # A message over --max-body-bytes is refused by gRPC itself.
    huge = pb.ModelInferRequest(model_name="eta", raw_input_contents=[b"\0" * (5 << 20)])
    huge.inputs.add(name="x", datatype="FP32", shape=[1])
    assert code_of(stub.ModelInfer, huge)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Compressed calls are refused: gRPC would inflate them before checking their size.
    code, details = code_of(stub.ModelInfer, typed_request(pb, "eta", rows),
                            compression=grpc.Compression.Gzip)
    assert code == grpc.StatusCode.UNIMPLEMENTED and "disabled" in details, (code, details)
    # Nothing of it cost the server: it still answers, and counted each refusal.
    assert stub.ModelInfer(typed_request(pb, "eta", rows)).outputs[0].shape == [2]
    metrics = s.get("/metrics").text
    assert 'forklift_grpc_requests_total{method="ModelInfer",code="INVALID_ARGUMENT"}' in metrics
    assert 'forklift_grpc_requests_total{method="ModelInfer",code="NOT_FOUND"} 2' in metrics


def test_garbage_on_the_grpc_port_does_not_disturb_the_server(served):
    s, pb, stub, _, _ = served
    for payload in [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 100,
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64]:
        with socket.create_connection(("127.0.0.1", s.grpc_port), timeout=5) as sock:
            sock.sendall(payload)
            try:
                sock.recv(1024)
            except OSError:
                pass
    assert stub.ServerLive(pb.ServerLiveRequest()).live


def test_same_metrics_events_and_shadows_as_rest(repo_copy, tmp_path, oip_grpc):
    import grpc
    pb, pb_grpc, *_ = oip_grpc
    events = tmp_path / "events"
    s = grpc_server(repo_copy, "--events-dir", str(events),
                    env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        r = s.admin("PUT", "/admin/models/eta/deployment",
                    {"routes": [{"version": 2, "weight": 100}], "shadows": [{"version": 1}]}, token=TOKEN)
        assert r.status_code == 200, r.text
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}"))
        for _ in range(5):
            stub.ModelInfer(typed_request(pb, "eta", eta_rows(1)),
                            metadata=[("x-request-id", "grpc-call-7")])
        deadline = time.time() + 10
        metrics = ""
        while time.time() < deadline:
            metrics = s.get("/metrics").text
            if 'forklift_shadow_rows_total{model_id="eta",primary_version="2",shadow_version="1"' \
                    in metrics:
                break
            time.sleep(0.1)
        assert 'forklift_requests_total{model_id="eta",version="2",outcome="ok"} 5' in metrics
        assert 'shadow_version="1"' in metrics, metrics
        assert 'forklift_grpc_requests_total{method="ModelInfer",code="OK"} 5' in metrics
        s.stop()
        lines = [json.loads(line) for f in sorted(events.glob("*.jsonl"))
                 for line in f.read_text().splitlines()]
        assert any(e.get("request_id") == "grpc-call-7" and e.get("model_id") == "eta"
                   for e in lines), lines[:3]
    finally:
        s.stop()


def test_deadlines_are_honoured_and_shedding_says_when_to_retry(tmp_path, oip_grpc):
    import grpc
    pb, pb_grpc, _, _, status_pb = oip_grpc
    repo = constant_repo(tmp_path, options="runtime_options: {delay_us: 400000}\n",
                         extra_yaml="dynamic_batching: {max_batch_size: 1, max_queue_size: 1}\n")
    s = grpc_server(repo)
    try:
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}"))

        def slow_request():
            req = pb.ModelInferRequest(model_name="slow")
            req.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1)
            return req

        code, _ = code_of(stub.ModelInfer, slow_request(), timeout=0.1)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        # Load: one call runs, one waits, the rest are shed at once with retry advice.
        results = []

        def call():
            try:
                stub.ModelInfer(slow_request(), timeout=10)
                results.append(("ok", None))
            except grpc.RpcError as e:
                results.append((e.code(), e))

        time.sleep(0.5)  # the timed-out call's prediction is done
        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shed = [e for code, e in results if code == grpc.StatusCode.UNAVAILABLE]
        # At least the first is answered; with one call running and one waiting at most, at
        # least four are refused at once.
        assert len([r for r in results if r[0] == "ok"]) >= 1 and len(shed) >= 4, results
        assert len(results) == 6
        trailers = dict(shed[0].trailing_metadata())
        assert trailers["grpc-retry-pushback-ms"] == "1000"
        details = status_pb.Status.FromString(trailers["grpc-status-details-bin"])
        retry = status_pb.RetryInfo()
        assert details.details[0].Unpack(retry) and retry.retry_delay.seconds == 1
        assert stub.ServerLive(pb.ServerLiveRequest()).live
    finally:
        s.stop()


def test_repository_extension_needs_the_token(served):
    import grpc
    s, pb, stub, repo_pb, repo = served
    code, details = code_of(repo.RepositoryIndex, repo_pb.RepositoryIndexRequest())
    assert code == grpc.StatusCode.UNAUTHENTICATED and "admin token" in details
    code, _ = code_of(repo.RepositoryModelUnload, repo_pb.RepositoryModelUnloadRequest(
        model_name="eta"), metadata=[("authorization", "Bearer wrong")])
    assert code == grpc.StatusCode.UNAUTHENTICATED
    auth = [("authorization", f"Bearer {TOKEN}"), ("x-forklift-actor", "grpc-test")]
    index = repo.RepositoryIndex(repo_pb.RepositoryIndexRequest(ready=True), metadata=auth)
    assert ("eta", "2", "READY") in [(m.name, m.version, m.state) for m in index.models]
    repo.RepositoryModelUnload(repo_pb.RepositoryModelUnloadRequest(model_name="eta"),
                               metadata=auth)
    assert not stub.ModelReady(pb.ModelReadyRequest(name="eta")).ready
    assert code_of(stub.ModelInfer, typed_request(pb, "eta", eta_rows(1)))[0] == \
        grpc.StatusCode.UNAVAILABLE
    repo.RepositoryModelLoad(repo_pb.RepositoryModelLoadRequest(model_name="eta"), metadata=auth)
    assert stub.ModelReady(pb.ModelReadyRequest(name="eta")).ready
    code, _ = code_of(repo.RepositoryModelLoad,
                      repo_pb.RepositoryModelLoadRequest(model_name="../etc"), metadata=auth)
    assert code == grpc.StatusCode.NOT_FOUND
    audit = s.admin("GET", "/admin/audit", token=TOKEN).json()
    assert any(e.get("actor") == "grpc-test" for e in audit.get("entries", audit)), audit


def test_tls_when_the_data_plane_has_it(repo_copy, tmp_path, oip_grpc):
    import grpc
    pb, pb_grpc, *_ = oip_grpc
    cert, key = make_certificate(tmp_path)
    s = grpc_server(repo_copy, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        secure = grpc.secure_channel(f"127.0.0.1:{s.grpc_port}", credentials)
        stub = pb_grpc.GRPCInferenceServiceStub(secure)
        assert stub.ModelInfer(typed_request(pb, "eta", eta_rows(1))).model_name == "eta"
        plain = pb_grpc.GRPCInferenceServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}"))
        assert code_of(plain.ServerLive, pb.ServerLiveRequest(), timeout=3)[0] in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        assert s.stop() == 0


def test_sigterm_lets_calls_in_flight_finish(tmp_path, oip_grpc):
    import grpc
    pb, pb_grpc, *_ = oip_grpc
    repo = constant_repo(tmp_path, options="runtime_options: {delay_us: 700000}\n")
    s = grpc_server(repo)
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}"))
    req = pb.ModelInferRequest(model_name="slow")
    req.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1)
    future = stub.ModelInfer.future(req, timeout=10)
    time.sleep(0.2)  # the call is in the runtime
    s.proc.send_signal(signal.SIGTERM)
    answer = future.result()
    assert answer.outputs[0].contents.fp32_contents[0] == 7
    assert s.stop() == 0
    with pytest.raises(grpc.RpcError):
        stub.ServerLive(pb.ServerLiveRequest(), timeout=2)


def test_a_taken_grpc_port_stops_the_server_with_a_clear_message(repo_copy, oip_grpc):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([FORKLIFT, "serve", "--model-repository", str(repo_copy), "--host",
                            "127.0.0.1", "--port", "0", "--admin-port", "0", "--grpc-port",
                            str(port), "--state-file", "none"], capture_output=True, text=True,
                           timeout=30)
    assert r.returncode == 1 and "cannot listen for gRPC" in r.stdout + r.stderr, r.stdout


def test_calls_their_clients_gave_up_on_are_not_predicted(tmp_path, oip_grpc):
    import grpc
    pb, pb_grpc, *_ = oip_grpc
    repo = constant_repo(tmp_path, options="runtime_options: {delay_us: 300000}\n")
    s = grpc_server(repo, "--threads", "2")
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        req = pb.ModelInferRequest(model_name="slow")
        req.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1)
        futures = [stub.ModelInfer.future(req, timeout=30) for _ in range(40)]
        time.sleep(0.2)  # all sent; two are being predicted, the rest wait
        for f in futures:
            f.cancel()
        # Long enough for all 40 to have been predicted (two threads, 0.3 s each) had the
        # cancellations been ignored.
        time.sleep(7)
        metrics = s.get("/metrics").text
        import re
        predicted = sum(int(v) for v in re.findall(
            r'forklift_requests_total\{model_id="slow",version="1",outcome="[a-z_]+"\} (\d+)',
            metrics))
        # Only what the two threads had started (and perhaps their next) ran, not 40.
        assert predicted <= 8, (predicted, metrics)
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live
    finally:
        assert s.stop() == 0
