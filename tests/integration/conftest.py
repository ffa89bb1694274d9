"""Starts the real `forklift serve` and talks real HTTP to it."""
import json
import re
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "not_under_tsan: the ThreadSanitizer run (scripts/sanitize.sh tsan) leaves the test "
        "out: its subject is a command's output, a refusal, a restart or a file format, and an "
        "unmarked test of its file drives the same threads under load. Never on hostile input. "
        "The release run keeps it, and the ASan run if its file is in ASan's list")


def pytest_collection_modifyitems(config, items):
    """FORKLIFT_TEST_SHARD=K/N keeps the K-th of N shards of the suite, whole files each, so that
    ctest runs the shards side by side (tests/CMakeLists.txt): one suite spends a third of its
    time waiting on servers, not computing. Files go to the shard with the fewest seconds so far,
    longest first (file_seconds.json: measured, a table for each build, since a sanitizer slows
    some files far more than others), so every run splits them the same way."""
    shard = os.environ.get("FORKLIFT_TEST_SHARD")
    if not shard:
        return
    k, n = (int(part) for part in shard.split("/"))
    if not 1 <= k <= n:
        raise pytest.UsageError(f"FORKLIFT_TEST_SHARD={shard}: want K/N with 1 <= K <= N")
    by_file = {}
    for item in items:
        by_file.setdefault(str(item.path), []).append(item)
    tables = json.loads((Path(__file__).parent / "file_seconds.json").read_text())
    sanitizer = os.environ.get("FORKLIFT_SANITIZER")
    table = f"{sanitizer}_seconds" if sanitizer else "seconds"
    measured = tables.get(table, tables["seconds"])  # a build without a table: the release one

    def seconds(path, tests):
        return measured.get(Path(path).name, 3 * len(tests))

    load = [0] * n
    owner = {}
    for path, tests in sorted(by_file.items(), key=lambda kv: (-seconds(*kv), kv[0])):
        i = load.index(min(load))
        owner[path] = i
        load[i] += seconds(path, tests)
    kept = [item for item in items if owner[str(item.path)] == k - 1]
    config.hook.pytest_deselected(items=[item for item in items if owner[str(item.path)] != k - 1])
    items[:] = kept

BUILD = Path(__file__).resolve().parents[2] / "build"
FORKLIFT = os.environ.get("FORKLIFT_BIN", str(BUILD / "forklift"))
EXAMPLE_MODELS = Path(os.environ.get("FORKLIFT_MODELS", BUILD / "models"))
# Set by .ci/run: what the project installs must be there, and no test may skip for want of it.
REQUIRE_ALL = bool(os.environ.get("FORKLIFT_REQUIRE_ALL"))


def require_or_skip(available, reason, installed_by_project=True):
    """Skips the calling test (or fixture) when `available` is false, saying why. With
    FORKLIFT_REQUIRE_ALL set (CI) a missing tool, runtime or package that the project installs
    itself (scripts/install-deps.sh, the build) fails the test instead: there a skip would hide a
    broken install step and a suite that quietly shrank. Tools the project cannot install from
    its package registries (installed_by_project=False) stay skips, also in CI."""
    if available:
        return
    if REQUIRE_ALL and installed_by_project:
        pytest.fail(f"{reason}; FORKLIFT_REQUIRE_ALL is set and the project installs it",
                    pytrace=False)
    pytest.skip(reason)



def metric(server, name, **labels):
    """The value of one sample on the server's /metrics (with exactly these labels), or None."""
    text = server.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + \
        r" (\S+)$"
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else None

def grpc_server(repo, *args, env=None):
    """A server with its gRPC listener on a free port. The TSan build leaves gRPC out on purpose
    (scripts/sanitize.sh), so there the test is a plain skip; elsewhere gRPC must be built in."""
    if os.environ.get("FORKLIFT_SANITIZER") == "tsan":
        pytest.skip("the TSan build has no gRPC listener (scripts/sanitize.sh)")
    s = Server(repo, "--grpc-port", "0", *args, env=env, wait_ready=False)
    if s.grpc_port is None:
        s.stop()
        require_or_skip(not any("built without gRPC" in line for line in s.logs),
                        "this forklift was built without gRPC")
        raise AssertionError(f"no grpc_listening line: {s.logs}")
    s.wait_ready()
    return s

def require_runtime_model(model_id, runtime):
    """For tests of an optional runtime: its example model `model_id` exists only in a build with
    that runtime (require_or_skip). The TSan build leaves the torchscript and python runtimes out
    on purpose (scripts/sanitize.sh), so there it is a plain skip."""
    if os.environ.get("FORKLIFT_SANITIZER") == "tsan":
        pytest.skip(f"the TSan build has no {runtime} runtime (scripts/sanitize.sh)")
    require_or_skip((EXAMPLE_MODELS / model_id).is_dir(), f"built without the {runtime} runtime")


class Server:
    """One `forklift serve` process on a free port of 127.0.0.1, with its log lines collected."""

    def __init__(self, repository, *extra_args, wait_ready=True, state_file="none", env=None,
                 port=0):
        self.repository = Path(repository)
        self.logs = []
        self.proc = subprocess.Popen(
            [FORKLIFT, "serve", "--model-repository", str(repository), "--host", "127.0.0.1",
             "--port", str(port), "--admin-port", "0", "--state-file", str(state_file), *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # `env` adds to the suite's environment; a value of None removes that variable.
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None})
        self.port = None
        self.admin_port = None
        self.grpc_port = None  # with --grpc-port
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()
        if not self._listening.wait(30):
            self.stop()
            raise RuntimeError(f"forklift did not start listening: {self.logs}")
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.session = requests.Session()
        if wait_ready:
            try:
                self.wait_ready()
            except RuntimeError:
                self.stop()  # a server that never got ready must not outlive its test
                raise

    def _read_logs(self):
        for line in self.proc.stdout:
            self.logs.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "admin_listening":
                self.admin_port = event["port"]
            if event.get("event") == "grpc_listening":
                self.grpc_port = event["port"]
            if event.get("event") == "listening":
                self.port = event["port"]
                self._listening.set()

    def events(self, name):
        out = []
        for line in list(self.logs):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                out.append(event)
        return out

    # Generous: only a server that is slow to load waits it out, and under a sanitizer on a busy
    # two-core machine one on the whole example repository took 30 s (seen in CI).
    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(self.events("repository_loaded")):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(f"forklift exited ({self.proc.returncode}) before it was "
                                   f"ready: {self.logs}")
            time.sleep(0.05)
        raise RuntimeError(f"forklift did not finish loading: {self.logs}")

    def get(self, path, **kw):
        return self.session.get(self.url + path, timeout=10, **kw)

    def post(self, path, body=None, **kw):
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return self.session.post(self.url + path, data=body, timeout=kw.pop("timeout", 10), **kw)

    def admin(self, method, path, body=None, token=None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return self.session.request(method, self.admin_url + path, data=body, headers=headers,
                                    timeout=kw.pop("timeout", 30), **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


# The example models that need neither libtorch nor CPython. A server on these alone is ready
# with about a quarter of the CPU of one on the whole repository (EXAMPLE_MODELS): 0.7-0.9 s
# against 3.1-3.5 s in release (three starts each, 2026-11-30), and 3.8 s against 6.0 s under
# ASan (2026-11-29); the suites start hundreds of servers on two cores. The `example_models`
# fixture gives a module these two, or every example model where the module says
# `EXAMPLE_REPOSITORY = "full"`; a single test asks for `full_example_models` or `full_repo_copy`.
CORE_EXAMPLES = ("eta", "surge")


@pytest.fixture(scope="session")
def full_example_models():
    assert (EXAMPLE_MODELS / "eta" / "1" / "model.json").exists(), "build the example models first"
    return EXAMPLE_MODELS


@pytest.fixture(scope="session")
def core_example_models(tmp_path_factory, full_example_models):
    dest = tmp_path_factory.mktemp("core-examples") / "models"
    dest.mkdir()
    for model_id in CORE_EXAMPLES:
        shutil.copytree(full_example_models / model_id, dest / model_id)
    return dest


@pytest.fixture(scope="module")
def example_models(request, full_example_models, core_example_models):
    """The repository a module's servers start on: eta and surge, or every example model where
    the module sets EXAMPLE_REPOSITORY = "full"."""
    which = getattr(request.module, "EXAMPLE_REPOSITORY", "core")
    assert which in ("core", "full"), f"EXAMPLE_REPOSITORY is {which!r}: core or full"
    return full_example_models if which == "full" else core_example_models


@pytest.fixture(scope="module")
def server(example_models):
    s = Server(example_models)
    yield s
    assert s.stop() == 0


@pytest.fixture
def torchscript_runtime():
    """Use (pytest.mark.usefixtures) in tests of the torchscript runtime."""
    require_runtime_model("fraud", "torchscript")


@pytest.fixture
def python_runtime():
    """Use (pytest.mark.usefixtures) in tests of the python runtime."""
    require_runtime_model("cancel_risk", "python")


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def oip_grpc(tmp_path_factory):
    """Python modules for the Open Inference Protocol over gRPC, generated by protoc and Debian's
    grpcio plugin from the spec's own proto (third_party/) and forklift's repository and error
    protos: a client nobody here wrote. Returns (pb, pb_grpc, repo_pb, repo_grpc, status_pb)."""
    import importlib
    import sys
    plugin = shutil.which("grpc_python_plugin")
    protoc = shutil.which("protoc")
    try:
        import grpc  # noqa: F401
    except ImportError:
        grpc = None
    require_or_skip(plugin and protoc and grpc,
                    "protoc, grpc_python_plugin or python3-grpcio is missing")
    out = tmp_path_factory.mktemp("oip_stubs")
    subprocess.run([protoc, "-I", str(ROOT / "third_party/open-inference-protocol"),
                    "-I", str(ROOT / "src/grpc_api"), f"--python_out={out}", f"--grpc_out={out}",
                    f"--plugin=protoc-gen-grpc={plugin}", "open_inference_grpc.proto",
                    "model_repository.proto", "rpc_status.proto"], check=True)
    sys.path.insert(0, str(out))
    names = ["open_inference_grpc_pb2", "open_inference_grpc_pb2_grpc", "model_repository_pb2",
             "model_repository_pb2_grpc", "rpc_status_pb2"]
    return tuple(importlib.import_module(n) for n in names)


@pytest.fixture
def repo_copy(tmp_path, example_models):
    """A private copy of the module's example repository that a test may change."""
    dest = tmp_path / "models"
    shutil.copytree(example_models, dest)
    return dest


@pytest.fixture
def full_repo_copy(tmp_path, full_example_models):
    """A private copy of every example model, the optional runtimes' included."""
    dest = tmp_path / "models"
    shutil.copytree(full_example_models, dest)
    return dest


def example_model_ids(repo=EXAMPLE_MODELS):
    """A repository's model ids. The whole example repository has eta and surge, plus the
    optional runtimes' examples (fraud, cancel_risk) when the build has those runtimes."""
    return sorted(p.name for p in Path(repo).iterdir() if p.is_dir())


def example_version_count(repo=EXAMPLE_MODELS):
    return sum(1 for m in Path(repo).iterdir() if m.is_dir()
               for v in m.iterdir() if v.is_dir())


def selftest_cases(model_id, version):
    path = EXAMPLE_MODELS / model_id / str(version) / "selftest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
