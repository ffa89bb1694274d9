"""An OTLP/HTTP trace receiver for the tests, decoding what forklift sends the way a collector
does: the body is parsed into the published ExportTraceServiceRequest message
(third_party/opentelemetry-proto, compiled by protoc at test time) by protobuf's own JSON parser,
which refuses unknown fields and wrong types. OTLP's JSON differs from protobuf's standard
mapping in one way, which a collector special-cases too: trace and span ids are hex, not
base64."""
import base64
import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "third_party" / "opentelemetry-proto"
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def compile_protos(out):
    """Python modules for the OTLP trace protos; returns the ExportTraceServiceRequest class."""
    protoc = shutil.which("protoc")
    if protoc is None:
        return None
    files = ["opentelemetry/proto/common/v1/common.proto",
             "opentelemetry/proto/resource/v1/resource.proto",
             "opentelemetry/proto/trace/v1/trace.proto",
             "opentelemetry/proto/collector/trace/v1/trace_service.proto"]
    subprocess.run([protoc, "-I", str(PROTOS), f"--python_out={out}", *files], check=True)
    sys.path.insert(0, str(out))
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    return trace_service_pb2.ExportTraceServiceRequest


def hex_ids_to_base64(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            hex_ids_to_base64(item)


def attribute_value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Receiver:
    """Listens on 127.0.0.1:<free port>; `spans` holds every span received, as dicts with hex ids,
    times in ns, and attributes as a plain dict. `status` is what it answers (200, or 503 to play
    a collector that refuses); `errors` what it could not decode."""

    def __init__(self, request_class):
        self.request_class = request_class
        self.spans = []
        self.requests = 0
        self.errors = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.receive(self.path, self.headers.get("Content-Type"), body)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, path, content_type, body):
        from google.protobuf import json_format
        with self.lock:
            self.requests += 1
        try:
            assert path == "/v1/traces", path
            assert content_type == "application/json", content_type
            data = json.loads(body)
            hex_ids_to_base64(data)
            message = json_format.ParseDict(data, self.request_class())
        except Exception as e:  # noqa: BLE001 - every failure is a finding for the test
            with self.lock:
                self.errors.append(f"{type(e).__name__}: {e}")
            return
        spans = []
        for rs in message.resource_spans:
            resource = {a.key: attribute_value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append({
                        "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(), "name": s.name,
                        "kind": s.kind, "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano, "trace_state": s.trace_state,
                        "attributes": {a.key: attribute_value(a.value) for a in s.attributes},
                        "links": [(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                        "status": s.status.code, "resource": resource, "scope": ss.scope.name})
        with self.lock:
            self.spans.extend(spans)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
