"""forklift's images, built by scripts/images.sh and run with podman as a user would: the server
image (and its python and torch variants) gets ready, answers the example models' self-test
requests, runs as a non-root user on a read-only root, and drains on SIGTERM with every accepted
request answered and exit 0. Then, for each runtime, a service that `forklift new` writes is built with its own
Dockerfile (FROM the SDK image to build, FROM the server image of its runtime to run), and its
image is run and checked the same way.

Slow (a base image from debootstrap, then the image builds: about 9 minutes from a clean
machine): ctest runs it as `images`, under the label `images` (-DFORKLIFT_IMAGE_TESTS=OFF leaves
it out). It needs podman, runc and debootstrap (scripts/install-deps.sh), and root while the base
image is still to be made (debootstrap); without them it skips, and under FORKLIFT_REQUIRE_ALL
(CI) it fails."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest import EXAMPLE_MODELS, REQUIRE_ALL, require_or_skip, selftest_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build-images"
BUILD = Path(os.environ.get("FORKLIFT_BUILD_DIR", ROOT / "build"))
LABEL = "forklift-test=images"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
ENV = {**os.environ, "CONTAINERS_CONF": str(OUT / "containers.conf")}


def podman(*args, check=True, timeout=120):
    out = subprocess.run([*PODMAN, *args], capture_output=True, text=True, env=ENV,
                         timeout=timeout)
    if check:
        assert out.returncode == 0, f"podman {' '.join(args)}\n{out.stdout}\n{out.stderr}"
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def images():
    """Every image scripts/images.sh builds: {"plain": tag, "python": tag, "torch": tag,
    "sdk": tag}, without "python" or "torch" when the build has no such runtime."""
    for tool in ("podman", "debootstrap", "runc"):
        require_or_skip(shutil.which(tool), f"{tool} is not installed")
    if os.geteuid() != 0 and not (OUT / "base-image-id").exists():
        reason = "making the base image (debootstrap) needs root"
        if REQUIRE_ALL:
            pytest.fail(f"{reason}; FORKLIFT_REQUIRE_ALL is set: run the tests as root",
                        pytrace=False)
        pytest.skip(reason)
    # Containers a killed earlier run left behind.
    for name in podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}",
                       check=False).stdout.split():
        podman("rm", "-f", name, check=False)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "images.sh"), "--build-dir", str(BUILD)],
                         capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stdout + out.stderr
    print(out.stdout)
    tags = {}
    for line in out.stdout.splitlines():
        if line.startswith("images: localhost/") and " MB, built in " in line:
            tag = line.split()[1].rstrip(":")
            kind = ("sdk" if "forklift-sdk:" in tag else "torch" if tag.endswith("-torch")
                    else "python" if tag.endswith("-python") else "plain")
            tags[kind] = tag
    assert "plain" in tags and "sdk" in tags, out.stdout
    return tags


@pytest.fixture(scope="module")
def image(images):
    return images["plain"]


class Container:
    """One `podman run` of an image on the host's network, as a read-only root. A server image is
    given the example repository (mounted read-only) and ports; a service image carries its own
    models, ports and arguments, and is given its port to talk to."""

    def __init__(self, image, repo=None, port=None):
        self.port, self.admin_port = port or free_port(), free_port()
        self.name = f"forklift-test-{os.getpid()}-{self.port}"
        self.started = time.time()
        args = []
        mounts = []
        if repo is not None:
            mounts = ["-v", f"{repo}:/models:ro"]
            args = ["--model-repository", "/models", "--host", "127.0.0.1",
                    "--port", str(self.port), "--admin-port", str(self.admin_port),
                    "--state-file", "none"]
        # --read-only-tmpfs=false: no writable /tmp or /run either, as Kubernetes'
        # readOnlyRootFilesystem; --timeout: gone even if this test is killed.
        podman("run", "-d", "--name", self.name, "--label", LABEL, "--timeout", "900",
               "--network", "host", "--ulimit", "host", "--read-only", "--read-only-tmpfs=false",
               *mounts, image, *args)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return time.time() - self.started
            except requests.RequestException:
                pass
            state = podman("inspect", self.name, "--format", "{{.State.Status}}", check=False)
            if state.stdout.strip() == "exited":
                break
            time.sleep(0.1)
        raise AssertionError("not ready: " + podman("logs", self.name, check=False).stdout[-2000:])

    def remove(self):
        podman("rm", "-f", self.name, check=False)


def repo_of(tmp_path, *models):
    repo = tmp_path / "models"
    for m in models:
        shutil.copytree(EXAMPLE_MODELS / m, repo / m)
    return repo


def test_the_server_image_serves_the_examples_as_a_non_root_user_on_a_read_only_root(image,
                                                                                      tmp_path):
    c = Container(image, repo_of(tmp_path, "eta", "surge"))
    try:
        print(f"ready {c.wait_ready():.2f} s after podman run")
        check_selftest_answers(c, "eta", selftest_cases("eta", 2)[:5], abs_tolerance=0)
        check_non_root_read_only_with_healthcheck(c, image)
        # The optional runtimes' libraries are in their own variants only.
        for library in ("libpython3", "libtorch"):
            found = podman("exec", c.name, "sh", "-c", f"ls /usr/lib/x86_64-linux-gnu | grep {library}",
                           check=False)
            assert found.returncode != 0, found.stdout
    finally:
        c.remove()


def test_the_python_image_serves_a_python_model(images, tmp_path):
    if "python" not in images:
        pytest.skip("built without the python runtime")
    # A model.py with numpy only (what the image carries; a team adds its own packages FROM it),
    # and a self-test the server runs before it is ready.
    version = tmp_path / "models" / "scaled" / "1"
    version.mkdir(parents=True)
    (version / "model.yaml").write_text(
        "runtime: python\nartifact: weight.txt\n"
        "features:\n  - {name: x, type: float}\noutput: {name: y, type: float}\n")
    (version / "weight.txt").write_text("3\n")
    (version / "model.py").write_text(
        "import numpy as np\n"
        "def load(path):\n    return float(open(path).read())\n"
        "def predict(w, features):\n    return np.asarray(features['x']) * w\n")
    (version / "selftest.jsonl").write_text('{"features": {"x": 2}, "expected": 6}\n')
    c = Container(images["python"], tmp_path / "models")
    try:
        print(f"ready {c.wait_ready():.2f} s after podman run")
        answer = requests.post(c.url + "/infer", json={"model_id": "scaled",
                                                       "features": {"x": 1.5}}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["output"] == 4.5
        check_non_root_read_only_with_healthcheck(c, images["python"])
    finally:
        c.remove()


def check_selftest_answers(c, model_id, cases, abs_tolerance=1e-4):
    """Each self-test case's features sent to /infer: 200, and the expected output where the
    case gives a number."""
    for case in cases:
        r = requests.post(c.url + "/infer", json={"model_id": model_id,
                                                  "features": case["features"]}, timeout=10)
        assert r.status_code == 200, r.text
        if isinstance(case.get("expected"), (int, float)):
            assert r.json()["output"] == pytest.approx(case["expected"], rel=1e-3,
                                                       abs=abs_tolerance)


def check_non_root_read_only_with_healthcheck(c, image):
    # The server itself (PID 1), not just what `exec` would run as.
    status = podman("exec", c.name, "cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["10001"] * 4, uid_line
    health = podman("image", "inspect", image, "--format", "{{.Config.Healthcheck}}").stdout
    assert "/readyz" in health, health
    touch = podman("exec", c.name, "touch", "/usr/local/bin/x", check=False)
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr


def test_the_torch_image_serves_the_torchscript_example(images, tmp_path):
    if "torch" not in images:
        pytest.skip("built without the torchscript runtime")
    c = Container(images["torch"], repo_of(tmp_path, "fraud", "eta"))
    try:
        print(f"ready {c.wait_ready(180):.2f} s after podman run")
        check_selftest_answers(c, "fraud", selftest_cases("fraud", 1)[:5])
        check_non_root_read_only_with_healthcheck(c, images["torch"])
    finally:
        c.remove()


def test_sigterm_drains_every_accepted_request_and_exits_0(image, tmp_path):
    c = Container(image, repo_of(tmp_path, "eta"))
    try:
        c.wait_ready()
        check_drain(c, {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]})
    finally:
        c.remove()


def check_drain(c, body):
    """SIGTERM (podman stop) under load: every request the server accepted is answered in full,
    one sent half before the drain began and half after included, and it exits 0."""
    results, stop = [], threading.Event()

    def load():
        # A connection per request: a refused one was never accepted; any other failure
        # (a reset, a cut answer) is an accepted request lost, and fails the test.
        while not stop.is_set():
            try:
                results.append(requests.post(c.url + "/infer", json=body, timeout=10).status_code)
            except requests.ConnectionError as e:
                results.append("refused" if "refused" in str(e) else f"lost: {e}")
                time.sleep(0.01)
            except requests.RequestException as e:  # a cut answer, a timeout
                results.append(f"lost: {e}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1)
    # One request certainly in flight at SIGTERM: its headers and half its body sent before,
    # the rest after. A drain answers every request it has started reading.
    payload = json.dumps(body).encode()
    slow = socket.create_connection(("127.0.0.1", c.port), timeout=30)
    slow.sendall(b"POST /infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                 + payload[:len(payload) // 2])
    stopper = threading.Thread(target=podman, args=("stop", "-t", "30", c.name),
                               kwargs={"timeout": 60})
    stopper.start()  # SIGTERM to forklift, PID 1
    deadline = time.time() + 30
    while '"draining"' not in podman("logs", c.name, check=False).stdout:
        assert time.time() < deadline, "no drain began"
        time.sleep(0.05)
    slow.sendall(payload[len(payload) // 2:])
    answer = b""
    while chunk := slow.recv(65536):
        answer += chunk
    slow.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    stopper.join(60)
    stop.set()
    for t in threads:
        t.join(15)
    exit_code = podman("inspect", c.name, "--format", "{{.State.ExitCode}}").stdout.strip()
    assert exit_code == "0", podman("logs", c.name, check=False).stdout[-2000:]
    answered = [r for r in results if r != "refused"]
    assert answered and all(r == 200 for r in answered), sorted(set(map(str, results)))
    assert '"draining"' in podman("logs", c.name, check=False).stdout


def free_port_pair():
    """A port whose successor is free too: a generated service listens on PORT and PORT + 1."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two adjacent free ports")


@pytest.mark.parametrize("runtime", ["cpp", "xgboost", "python", "torchscript"])
def test_a_generated_service_image_builds_from_the_sdk_serves_and_drains(images, tmp_path,
                                                                        runtime):
    if runtime == "torchscript" and "torch" not in images:
        pytest.skip("built without the torchscript runtime")
    repo = tmp_path / "svc"
    name = f"svc-{runtime}"
    port = free_port_pair()
    r = subprocess.run([str(BUILD / "forklift"), "new", str(repo), "--yes", "--name", name,
                        "--team", "@lyft/pricing", "--runtime", runtime, "--port", str(port),
                        "--registry", "localhost"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # The generated Dockerfile as written: with --registry localhost it starts FROM the SDK image
    # and the server image of its runtime, both just built.
    tag = f"localhost/{name}:test"
    started = time.time()
    # The build stage (the SDK with the service built in it) tagged on its own first, so that it
    # can be removed by name after: untagged, it would stay behind (2 GB a run).
    stage = f"localhost/{name}:test-build-stage"
    try:
        build = podman("build", "--format", "docker", "--network", "host", "--target", "build",
                       "-t", stage, str(repo), check=False, timeout=1800)
        if build.returncode == 0:
            build = podman("build", "--format", "docker", "--network", "host", "-t", tag,
                           str(repo), check=False, timeout=1800)
    finally:
        podman("rmi", stage, check=False)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
    size = int(podman("image", "inspect", tag, "--format", "{{.Size}}").stdout)
    print(f"{tag}: {size / 1e6:.0f} MB, built in {time.time() - started:.0f} s")
    c = Container(tag, port=port)
    try:
        print(f"ready {c.wait_ready(180):.2f} s after podman run")
        example = json.loads((repo / "models" / name / "1" / "example-request.json").read_text())
        answer = requests.post(c.url + "/infer", json=example, timeout=10)
        assert answer.status_code == 200, answer.text
        # The service's own self-test requests, answered as its selftest.jsonl expects (read
        # from the image: the trained runtimes write theirs when the image is built).
        selftests = podman("exec", c.name, "cat", f"/models/{name}/1/selftest.jsonl").stdout
        cases = [json.loads(line) for line in selftests.splitlines() if line.strip()]
        assert cases
        check_selftest_answers(c, name, cases)
        check_non_root_read_only_with_healthcheck(c, tag)
        # Its own entry point and health check, none of the server image's it starts FROM.
        config = json.loads(podman("image", "inspect", tag, "--format", "{{json .Config}}").stdout)
        assert config["Entrypoint"][0] == "/usr/local/bin/service", config["Entrypoint"]
        assert not config.get("Cmd"), config["Cmd"]
        # (podman's JSON of .Config leaves the health check out; asked for itself, it is there)
        health = json.loads(podman("image", "inspect", tag, "--format",
                                   "{{json .Config.Healthcheck}}").stdout)
        assert f"http://127.0.0.1:{port}/readyz" in health["Test"], health
        check_drain(c, {"model_id": name, "features": cases[0]["features"]})
    finally:
        c.remove()
        podman("rmi", "-f", tag, check=False)
