"""forklift's server image, built by scripts/images.sh and run with podman as a user would: it
gets ready, answers the example models' self-test requests, runs as a non-root user on a
read-only root, and drains on SIGTERM with every accepted request answered and exit 0.

Slow (a base image from debootstrap, then the image builds): ctest runs it under the label
`images` when the build is configured with -DFORKLIFT_IMAGE_TESTS=ON."""
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
from conftest import EXAMPLE_MODELS, selftest_cases  # noqa: E402

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
def image():
    # Containers a killed earlier run left behind.
    for name in podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}",
                       check=False).stdout.split():
        podman("rm", "-f", name, check=False)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "images.sh"), "--build-dir", str(BUILD)],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout + out.stderr
    version = next(line.split("forklift:")[1].split(":")[0]
                   for line in out.stdout.splitlines() if line.startswith("images: localhost/forklift:"))
    return f"localhost/forklift:{version}"


class Container:
    """One `podman run` of the image on 127.0.0.1, the example repository mounted read-only."""

    def __init__(self, image, repo):
        self.port, self.admin_port = free_port(), free_port()
        self.name = f"forklift-test-{os.getpid()}-{self.port}"
        self.started = time.time()
        # --read-only-tmpfs=false: no writable /tmp or /run either, as Kubernetes'
        # readOnlyRootFilesystem; --timeout: gone even if this test is killed.
        podman("run", "-d", "--name", self.name, "--label", LABEL, "--timeout", "600",
               "--network", "host", "--ulimit", "host", "--read-only", "--read-only-tmpfs=false",
               "-v", f"{repo}:/models:ro", image,
               "--model-repository", "/models", "--host", "127.0.0.1",
               "--port", str(self.port), "--admin-port", str(self.admin_port),
               "--state-file", "none")
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
        for case in selftest_cases("eta", 2)[:5]:
            r = requests.post(c.url + "/infer", json={"model_id": "eta",
                                                      "features": case["features"]}, timeout=10)
            assert r.status_code == 200, r.text
            assert abs(r.json()["output"] - case["expected"]) <= 1e-3 * abs(case["expected"])
        # The server itself (PID 1), not just what `exec` would run as.
        status = podman("exec", c.name, "cat", "/proc/1/status").stdout
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4, uid_line
        health = podman("image", "inspect", image, "--format", "{{.Config.Healthcheck}}").stdout
        assert "/readyz" in health, health
        touch = podman("exec", c.name, "touch", "/usr/local/bin/x", check=False)
        assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    finally:
        c.remove()


def test_sigterm_drains_every_accepted_request_and_exits_0(image, tmp_path):
    c = Container(image, repo_of(tmp_path, "eta"))
    try:
        c.wait_ready()
        body = {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]}
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
    finally:
        c.remove()
