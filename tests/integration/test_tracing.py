"""OpenTelemetry traces of predictions, received by a collector-like OTLP receiver
(otlp_receiver.py): the caller's trace continued, parent and child ids, timing order, attributes
by OpenTelemetry's conventions, sampling, shadows linked, gRPC calls traced, a dead collector
costing nothing but counted drops, and Server-Timing."""
import subprocess
import time

import pytest

from conftest import FORKLIFT, Server, grpc_server, require_or_skip, selftest_cases
from otlp_receiver import Receiver, compile_protos

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TOKEN = "tracing-admin-token-0123456789"


@pytest.fixture(scope="module")
def request_class(tmp_path_factory):
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        require_or_skip(False, "python3-protobuf is missing")
    cls = compile_protos(tmp_path_factory.mktemp("otlp"))
    require_or_skip(cls is not None, "protoc is missing")
    return cls


@pytest.fixture
def receiver(request_class):
    r = Receiver(request_class)
    yield r
    r.stop()


def eta_body():
    case = next(c for c in selftest_cases("eta", 2) if None not in c["features"].values())
    return {"model_id": "eta", "features": case["features"]}


def wait_for(receiver, predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with receiver.lock:
            spans = list(receiver.spans)
        found = [s for s in spans if predicate(s)]
        if found:
            return found, spans
        time.sleep(0.05)
    raise AssertionError(f"no such span; received {spans}, errors {receiver.errors}")


def trace_of(receiver, trace_id, count, timeout=15):
    deadline = time.time() + timeout
    spans = []
    while time.time() < deadline:
        with receiver.lock:
            spans = [s for s in receiver.spans if s["trace_id"] == trace_id]
        if len(spans) >= count:
            return spans
        time.sleep(0.05)
    raise AssertionError(f"{len(spans)} spans of {trace_id}: {spans}; errors {receiver.errors}")


@pytest.mark.not_under_tsan
def test_a_traced_prediction_continues_the_callers_trace(repo_copy, receiver, tmp_path):
    s = Server(repo_copy, "--otlp-endpoint", receiver.url, "--trace-sample-ratio", "0",
               "--events-dir", str(tmp_path / "events"))
    try:
        r = s.post("/infer", eta_body(), headers={
            "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": "vendor=x1",
            "X-Request-Id": "traced-1"})
        assert r.status_code == 200, r.text
        spans = trace_of(receiver, CALLER_TRACE, 4)
        by_name = {sp["name"]: sp for sp in spans}
        server = by_name["POST /infer"]
        assert server["parent_span_id"] == CALLER_SPAN and server["kind"] == 2
        assert server["trace_state"] == "vendor=x1"
        a = server["attributes"]
        assert a["http.request.method"] == "POST" and a["http.route"] == "/infer"
        assert a["http.response.status_code"] == 200 and a["forklift.request_id"] == "traced-1"
        assert a["forklift.model.id"] == "eta" and a["forklift.model.version"] == 2
        assert server["resource"]["service.name"] == "forklift" and server["scope"] == "forklift"
        for name in ("parse", "predict", "event"):
            child = by_name[name]
            assert child["parent_span_id"] == server["span_id"], name
            assert server["start"] <= child["start"] <= child["end"] <= server["end"], name
        assert by_name["parse"]["end"] <= by_name["predict"]["start"]
        assert by_name["predict"]["attributes"]["forklift.rows"] == 1
        assert by_name["predict"]["attributes"]["forklift.runtime"] == "xgboost"
        assert not receiver.errors
    finally:
        s.stop()


@pytest.mark.not_under_tsan
def test_sampling_follows_the_caller_else_the_ratio(repo_copy, receiver):
    s = Server(repo_copy, "--otlp-endpoint", receiver.url, "--trace-sample-ratio", "0")
    try:
        unsampled = "5bf92f3577b34da6a3ce929d0e0e4736"
        s.post("/infer", eta_body(), headers={"traceparent": f"00-{unsampled}-{CALLER_SPAN}-00"})
        for _ in range(20):
            s.post("/infer", eta_body())  # no caller decision: ratio 0
        for bad in ["00-zz", "00-" + "0" * 32 + "-" + CALLER_SPAN + "-01", "x" * 5000]:
            assert s.post("/infer", eta_body(), headers={"traceparent": bad}).status_code == 200
        sampled = "6bf92f3577b34da6a3ce929d0e0e4736"
        s.post("/infer", eta_body(), headers={"traceparent": f"00-{sampled}-{CALLER_SPAN}-01"})
        trace_of(receiver, sampled, 3)
        time.sleep(1.5)  # the exporter flushes every second: anything else would be here now
        with receiver.lock:
            assert {sp["trace_id"] for sp in receiver.spans} == {sampled}
    finally:
        s.stop()
    s = Server(repo_copy, "--otlp-endpoint", receiver.url, "--trace-sample-ratio", "1")
    try:
        s.post("/infer", eta_body())
        found, _ = wait_for(receiver, lambda sp: sp["name"] == "POST /infer" and
                            sp["trace_id"] != sampled)
        assert found[0]["parent_span_id"] == ""  # a new trace, started here
    finally:
        s.stop()


def test_batch_queue_shadows_and_v2_routes_are_traced(repo_copy, receiver):
    with open(repo_copy / "eta" / "2" / "model.yaml", "a") as f:
        f.write("dynamic_batching: {max_batch_size: 8, max_queue_delay_us: 2000}\n")
    s = Server(repo_copy, "--otlp-endpoint", receiver.url, "--trace-sample-ratio", "1",
               env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        r = s.admin("PUT", "/admin/models/eta/deployment",
                    {"routes": [{"version": 2, "weight": 100}], "shadows": [{"version": 1}]},
                    token=TOKEN)
        assert r.status_code == 200, r.text
        features = eta_body()["features"]
        body = {"inputs": [{"name": k, "datatype": "FP64", "shape": [1], "data": [v]}
                           for k, v in features.items()]}
        trace = "7bf92f3577b34da6a3ce929d0e0e4736"
        r = s.post("/v2/models/eta/infer", body,
                   headers={"traceparent": f"00-{trace}-{CALLER_SPAN}-01"})
        assert r.status_code == 200, r.text
        spans = trace_of(receiver, trace, 4)
        by_name = {sp["name"]: sp for sp in spans}
        server = by_name["POST /v2/models/{model}/infer"]
        assert server["attributes"]["url.path"] == "/v2/models/eta/infer"
        queue, predict = by_name["queue"], by_name["predict"]
        for child in (queue, predict):
            assert child["parent_span_id"] == server["span_id"]
            assert server["start"] <= child["start"] <= child["end"] <= server["end"]
        assert queue["end"] <= predict["start"]  # the wait ends as the runtime call starts
        found, _ = wait_for(receiver, lambda sp: sp["name"] == "shadow")
        shadow = found[0]
        assert shadow["links"] == [(trace, server["span_id"])]
        assert shadow["trace_id"] != trace  # off the request's critical path: its own trace
        assert shadow["attributes"]["forklift.model.version"] == 1
    finally:
        s.stop()


def test_grpc_calls_are_traced(repo_copy, receiver, oip_grpc):
    import grpc
    pb, pb_grpc, *_ = oip_grpc
    s = grpc_server(repo_copy, "--otlp-endpoint", receiver.url, "--trace-sample-ratio", "0")
    try:
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}"))
        req = pb.ModelInferRequest(model_name="eta")
        for name, value in eta_body()["features"].items():
            req.inputs.add(name=name, datatype="FP64", shape=[1]).contents.fp64_contents.append(
                value)
        trace = "8bf92f3577b34da6a3ce929d0e0e4736"
        stub.ModelInfer(req, metadata=[("traceparent", f"00-{trace}-{CALLER_SPAN}-01")])
        spans = trace_of(receiver, trace, 3)
        server = next(sp for sp in spans if sp["kind"] == 2)
        assert server["name"] == "inference.GRPCInferenceService/ModelInfer"
        a = server["attributes"]
        assert a["rpc.system"] == "grpc" and a["rpc.method"] == "ModelInfer"
        assert a["rpc.grpc.status_code"] == 0 and server["parent_span_id"] == CALLER_SPAN
    finally:
        s.stop()


def test_a_dead_or_refusing_collector_costs_only_counted_spans(repo_copy, receiver):
    receiver.status = 503
    s = Server(repo_copy, "--otlp-endpoint", receiver.url, "--trace-sample-ratio", "1")
    try:
        for _ in range(30):
            assert s.post("/infer", eta_body()).status_code == 200
        deadline = time.time() + 10
        while time.time() < deadline and 'reason="export_failed"} 0' in s.get("/metrics").text:
            time.sleep(0.1)
        assert 'forklift_trace_spans_dropped_total{reason="export_failed"} 0' not in \
            s.get("/metrics").text
    finally:
        s.stop()
    # Nothing listens: the exporter times out in the background; serving goes on.
    dead = "http://127.0.0.1:9/v1/traces"
    s = Server(repo_copy, "--otlp-endpoint", dead, "--trace-sample-ratio", "1")
    try:
        for _ in range(30):
            assert s.post("/infer", eta_body()).status_code == 200
    finally:
        assert s.stop() == 0


@pytest.mark.not_under_tsan
def test_server_timing_on_request_or_by_flag(repo_copy):
    s = Server(repo_copy)
    try:
        plain = s.post("/infer", eta_body())
        assert "Server-Timing" not in plain.headers
        timed = s.post("/infer", eta_body(), headers={"x-forklift-server-timing": "1"})
        value = timed.headers["Server-Timing"]
        names = [part.split(";")[0].strip() for part in value.split(",")]
        assert names == ["parse", "queue", "predict", "total"], value
        durations = {p.split(";")[0].strip(): float(p.split("dur=")[1]) for p in value.split(",")}
        assert durations["predict"] > 0 and durations["total"] >= durations["predict"]
    finally:
        s.stop()
    s = Server(repo_copy, "--server-timing")
    try:
        assert "predict;dur=" in s.post("/infer", eta_body()).headers["Server-Timing"]
        assert "Server-Timing" not in s.get("/healthz").headers
    finally:
        s.stop()


@pytest.mark.not_under_tsan
def test_a_bad_endpoint_stops_the_server_with_a_clear_message(repo_copy):
    r = subprocess.run([FORKLIFT, "serve", "--model-repository", str(repo_copy), "--port", "0",
                        "--admin-port", "0", "--state-file", "none", "--otlp-endpoint",
                        "file:///etc/passwd"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "http:// or https://" in r.stdout, r.stdout
