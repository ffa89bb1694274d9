"""Issue 14: what an attacker's audit found, each against the real server. Hostile HTTP framing
(endless chunk lines and trailers, Transfer-Encoding smuggling), a server whose stdout reader goes
away, descriptor exhaustion, slow loads that must not hold the admin API, DNS rebinding, load
errors that must not reach unauthenticated clients, a python module outside its version, a
python3 first on PATH that is not the one forklift was built with, and a worker that sends half
an answer."""
import json
import os
import re
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import FORKLIFT, Server, selftest_cases
from test_limits import constant_repo, metric, read_response

TOKEN = "hardening-token-0123456789"


def exchange(port, data, timeout=10):
    """Sends raw bytes; everything the server writes until it closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on us mid-send: what it answered is still readable
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def statuses(raw):
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


@pytest.fixture(scope="module")
def constant_server(tmp_path_factory):
    repo = constant_repo(tmp_path_factory.mktemp("constant"))
    s = Server(repo, "--read-timeout", "30")
    yield s
    assert s.stop() == 0


# --- Defect 2: chunked framing could grow the read buffer without bound ------------------------

def test_an_endless_chunk_size_line_is_refused_before_the_read_timeout(constant_server):
    head = (b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n1;")
    started = time.monotonic()
    raw = exchange(constant_server.port, head + b"a" * (4 << 20))
    assert statuses(raw) == [431], raw[:300]
    assert b"chunk-size line" in raw
    assert time.monotonic() - started < 20  # not the 30 s read timeout


def test_an_endless_trailer_section_is_refused(constant_server):
    body = b'{"model_id": "slow", "features": {"x": 1}}'
    head = (b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n" % (len(body), body))
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 100) for i in range(40000))
    raw = exchange(constant_server.port, head + trailers)
    assert statuses(raw) and statuses(raw)[0] in (400, 431), raw[:300]
    # The server is fine afterwards.
    assert constant_server.post("/infer", {"model_id": "slow", "features": {"x": 1}}).json()[
        "output"] == 7


def test_chunked_bodies_still_work_and_count_against_the_body_limit(tmp_path):
    s = Server(constant_repo(tmp_path), "--max-body-bytes", "1000")
    try:
        body = b'{"model_id": "slow", "features": {"x": 1}}'
        ok = (b"POST /infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        raw = exchange(s.port, ok)
        assert statuses(raw) == [200] and b'"output":7' in raw
        big = b"".join(b"100\r\n" + b" " * 256 + b"\r\n" for _ in range(8))  # 2 KiB of chunks
        raw = exchange(s.port, b"POST /infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                               b"\r\n\r\n" + big + b"0\r\n\r\n")
        assert statuses(raw) == [413]
    finally:
        assert s.stop() == 0


# --- Defect 3: a Transfer-Encoding that is not exactly "chunked" was ignored --------------------

@pytest.mark.parametrize("coding", [b"gzip", b"identity", b"xchunked", b"chunked, identity",
                                    b"gzip, chunked", b"chunked, chunked", b"CHUNKED\r\nTransfer-"
                                    b"Encoding: chunked"])
def test_a_transfer_encoding_other_than_chunked_is_refused_and_closed(constant_server, coding):
    # What would be smuggled: a second request in the body of the first.
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    req = (b"POST /infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n" +
           smuggled)
    raw = exchange(constant_server.port, req)
    assert statuses(raw) == [400], raw[:400]  # one answer: the smuggled request was not read
    # ("gzip, chunked" ends in chunked: the parser finds the body is no chunk before the check.)
    assert b"Transfer-Encoding" in raw or b"bad chunk" in raw
    assert b"Connection: close" in raw


def test_transfer_encoding_in_an_http_1_0_request_is_refused(constant_server):
    # RFC 9112 6.1: faulty framing; a 1.0 proxy in front would not have read it as chunked.
    req = (b"POST /healthz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = exchange(constant_server.port, req)
    assert statuses(raw) == [400], raw[:300]  # one answer: the pipelined GET was not read


def test_transfer_encoding_with_content_length_is_refused(constant_server):
    body = b'{"model_id": "slow", "features": {"x": 1}}'
    req = (b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    raw = exchange(constant_server.port, req)
    assert statuses(raw) == [400], raw[:400]


# --- Defect 8: SIGPIPE killed the server when its stdout reader went away ------------------------

def test_the_server_survives_its_log_reader_going_away(tmp_path):
    repo = constant_repo(tmp_path)
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [FORKLIFT, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--port", "0",
         "--admin-port", "0", "--state-file", "none", "--log-requests", "1"],
        stdout=write_end, stderr=subprocess.STDOUT)
    os.close(write_end)
    try:
        reader = os.fdopen(read_end)
        port = None
        for line in reader:
            event = json.loads(line)
            if event.get("event") == "listening":
                port = event["port"]
            if event.get("event") == "repository_loaded":
                break
        assert port
        reader.close()  # whatever read the logs is gone
        for _ in range(20):  # each request writes a log line into the broken pipe
            r = requests.post(f"http://127.0.0.1:{port}/infer",
                              json={"model_id": "slow", "features": {"x": 1}}, timeout=10)
            assert r.status_code == 200
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


# --- Defect 9: accept() failing with EMFILE spun a core ----------------------------------------

def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(bool(os.environ.get("FORKLIFT_SANITIZER")),
                    reason="UBSan's vptr check needs a descriptor (it probes memory through a "
                           "pipe): out of descriptors it reports every virtual call as invalid")
def test_running_out_of_descriptors_backs_off_instead_of_spinning(tmp_path):
    def limit_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    repo = constant_repo(tmp_path)
    logs = tmp_path / "log"
    with open(logs, "w") as out:
        proc = subprocess.Popen(
            [FORKLIFT, "serve", "--model-repository", str(repo), "--host", "127.0.0.1",
             "--port", "0", "--admin-port", "0", "--state-file", "none", "--threads", "1",
             "--max-connections", "1000"],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit_descriptors)
    held = []
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            for line in logs.read_text().splitlines():
                event = json.loads(line)
                if event.get("event") == "listening":
                    port = event["port"]
            time.sleep(0.05)
        assert port
        assert '"event":"descriptor_limit_low"' in logs.read_text()
        for _ in range(100):  # far beyond what 64 descriptors can accept
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(3)
        used = cpu_seconds(proc.pid) - before
        print(f"out of descriptors: {used:.2f} s of CPU in 3 s")
        assert used < 1.0, f"{used:.2f} s of CPU in 3 s while out of descriptors"
        failures = [line for line in logs.read_text().splitlines() if "accept_failed" in line]
        assert 1 <= len(failures) <= 3, failures[:5]
        for s in held:
            s.close()
        held.clear()
        # Descriptors free again: the listener accepts, and the failures were counted.
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                break
            except requests.RequestException:
                time.sleep(0.1)
        m = re.search(r"^forklift_http_accept_failures_total (\d+)$", text, re.M)
        assert m and int(m.group(1)) > 0, text[-500:]
    finally:
        for s in held:
            s.close()
        proc.terminate()
        proc.wait(30)


# --- Defect 12: a slow load held the admin API, even its refusals --------------------------------

SLOW_VERSION = ("runtime: constant\nartifact: value.txt\nruntime_options: {delay_us: 4000000}\n"
                "features:\n  - {name: x, type: float}\noutput: {name: y, type: float}\n")


def test_a_slow_load_holds_neither_admin_reads_nor_refusals(tmp_path):
    repo = constant_repo(tmp_path)
    s = Server(repo, "--poll-seconds", "0.2", env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        # A new version whose self-tests take 8 s (two calls of 4 s) appears: the loader loads it.
        v2 = repo / "slow" / "2"
        v2.mkdir()
        (v2 / "value.txt").write_text("7\n")
        (v2 / "selftest.jsonl").write_text('{"features": {"x": 1}, "expected": 7}\n')
        (v2 / "model.yaml").write_text(SLOW_VERSION)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not s.events("version_loading")[1:]:
            time.sleep(0.02)
        assert s.events("version_loading")[1:], "the slow version never started loading"
        started = time.monotonic()
        r = s.admin("POST", "/admin/models/slow/rollback", token="wrong-token-0123456789")
        assert r.status_code == 401
        assert s.admin("GET", "/admin/models").status_code == 200
        assert s.admin("GET", "/admin/models/slow").status_code == 200
        took = time.monotonic() - started
        assert not s.events("version_ready")[1:], "the load finished first: the test proves nothing"
        assert took < 3, f"admin answers waited {took:.1f} s for a load"
    finally:
        assert s.stop() == 0


def test_an_admin_change_that_loads_does_not_hold_other_admin_calls(tmp_path):
    repo = constant_repo(tmp_path, "version_policy: {specific: [1]}\n")
    v2 = repo / "slow" / "2"
    v2.mkdir()
    (v2 / "value.txt").write_text("7\n")
    (v2 / "selftest.jsonl").write_text('{"features": {"x": 1}, "expected": 7}\n')
    (v2 / "model.yaml").write_text(SLOW_VERSION + "version_policy: {specific: [1]}\n")
    s = Server(repo, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        result = {}

        def promote():
            result["r"] = s.admin("POST", "/admin/models/slow/promote", {"version": 2},
                                  token=TOKEN)
        t = threading.Thread(target=promote)
        t.start()
        time.sleep(0.5)  # the promote is loading version 2 (8 s of self-tests)
        started = time.monotonic()
        assert s.admin("GET", "/admin/models").status_code == 200
        assert s.admin("POST", "/admin/models/slow/rollback").status_code == 401
        took = time.monotonic() - started
        assert t.is_alive(), "the promote finished first: the test proves nothing"
        assert took < 3, f"admin calls waited {took:.1f} s behind a change"
        t.join(60)
        assert result["r"].status_code == 200, result["r"].text
        assert s.post("/infer", {"model_id": "slow", "features": {"x": 1}}).json()["version"] == 2
    finally:
        assert s.stop() == 0


# --- DNS rebinding, CSP, token length ------------------------------------------------------------

def test_admin_reads_without_a_token_need_an_ip_or_localhost_host(tmp_path):
    s = Server(constant_repo(tmp_path), "--admin-host-name", "forklift.internal",
               env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        def get(host, token=None):
            return s.admin("GET", "/admin/models", token=token, headers={"Host": host})
        for host in ("attacker.example", "attacker.example:8081", "localhost:evil.example",
                     "localhost:80@evil.example", "999.999.999.999", "127.0.0.1.nip.io", "[::1"):
            assert get(host).status_code == 403, host
        assert get("attacker.example", token=TOKEN).status_code == 200
        for host in ("127.0.0.1:8081", "localhost", "LOCALHOST:1", "[::1]:8081",
                     "forklift.internal:8081"):
            assert get(host).status_code == 200, host
        ui = s.admin("GET", "/ui/", headers={"Host": "127.0.0.1"})
        if ui.status_code == 200:
            assert "frame-ancestors 'none'" in ui.headers["Content-Security-Policy"]
            assert ui.headers["X-Frame-Options"] == "DENY"
    finally:
        assert s.stop() == 0


def test_a_short_admin_token_in_the_environment_is_refused(tmp_path):
    out = subprocess.run(
        [FORKLIFT, "serve", "--model-repository", str(constant_repo(tmp_path)), "--port", "0",
         "--admin-port", "0", "--state-file", "none"],
        env={**os.environ, "FORKLIFT_ADMIN_TOKEN": "short"}, capture_output=True, text=True,
        timeout=30)
    assert out.returncode == 1
    assert "shorter than 16 characters" in out.stdout + out.stderr
    assert "short\"" not in out.stdout + out.stderr  # the token itself is never printed


# --- Defect 5: load errors reached unauthenticated clients ---------------------------------------

def test_why_a_version_failed_is_shown_only_with_the_token(tmp_path):
    repo = constant_repo(tmp_path, "version_policy: all\n")
    v2 = repo / "slow" / "2"
    v2.mkdir()
    (v2 / "model.yaml").write_text((repo / "slow" / "1" / "model.yaml").read_text())
    (v2 / "value.txt").write_text("the-secret-in-the-artifact\n")
    (v2 / "selftest.jsonl").write_text('{"features": {"x": 1}, "expected": 7}\n')
    s = Server(repo, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        r = s.post("/infer", {"model_id": "slow", "version": 2, "features": {"x": 1}})
        assert r.status_code == 404
        assert "is not serving (failed)" in r.json()["error"]
        assert "value.txt" not in r.text and "secret" not in r.text
        anonymous = s.admin("GET", "/admin/models/slow").json()
        v = [x for x in anonymous["versions"] if x["version"] == 2][0]
        assert v["state"] == "failed" and "admin token" in v["message"]
        v = [x for x in s.admin("GET", "/admin/models/slow", token=TOKEN).json()["versions"]
             if x["version"] == 2][0]
        assert "value.txt" in v["message"]
        assert "secret" not in json.dumps(v)  # the artifact's bytes are never quoted
    finally:
        assert s.stop() == 0


# --- Defect 11 and the interpreter: python models -------------------------------------------------

@pytest.mark.usefixtures("python_runtime")
def test_a_python_module_outside_its_repository_is_refused(full_repo_copy, tmp_path):
    outside = tmp_path / "outside.py"
    ran = tmp_path / "it-ran"
    # If the server ever runs it, it leaves a mark (and fails the load, as the old code's did).
    outside.write_text(f"open({str(ran)!r}, 'w').write('ran')\nraise SystemExit('never')\n")
    manifest = full_repo_copy / "cancel_risk" / "1" / "model.yaml"
    for module in (str(outside), "../../../outside.py"):
        manifest.write_text(manifest.read_text().split("runtime_options")[0] +
                            f"runtime_options: {{module: '{module}'}}\n")
        s = Server(full_repo_copy, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
        try:
            m = s.admin("GET", "/admin/models/cancel_risk", token=TOKEN).json()
            assert m["versions"][0]["state"] == "failed"
            assert "leads outside" in m["versions"][0]["message"], m
            assert not ran.exists(), "the module outside the repository was run"
            eta = selftest_cases("eta", 2)[0]["features"]
            assert s.post("/infer", {"model_id": "eta", "features": eta}).status_code == 200
        finally:
            assert s.stop() == 0


@pytest.mark.usefixtures("python_runtime")
def test_the_embedded_interpreter_ignores_another_python3_first_on_path(full_repo_copy, tmp_path):
    # A Python installation that is not the one forklift was built with (as a pyenv or a
    # virtualenv would be), first on PATH: CPython used to take its standard library from there.
    fake = tmp_path / "otherpython"
    (fake / "bin").mkdir(parents=True)
    (fake / "lib" / "python3.11").mkdir(parents=True)
    (fake / "lib" / "python3.11" / "os.py").write_text("raise ImportError('wrong python')\n")
    (fake / "bin" / "python3").write_text("#!/bin/sh\nexit 1\n")
    (fake / "bin" / "python3").chmod(0o755)
    env = {"PATH": f"{fake / 'bin'}:{os.environ['PATH']}"}
    for processes in ("", "runtime_options: {processes: 2}\n"):
        manifest = full_repo_copy / "cancel_risk" / "1" / "model.yaml"
        manifest.write_text(manifest.read_text().split("runtime_options")[0] + processes)
        s = Server(full_repo_copy, env=env)
        try:
            features = selftest_cases("cancel_risk", 1)[0]["features"]
            r = s.post("/infer", {"model_id": "cancel_risk", "features": features})
            assert r.status_code == 200, (r.text, s.logs[-5:])
        finally:
            assert s.stop() == 0


@pytest.mark.usefixtures("python_runtime")
def test_a_worker_that_sends_half_an_answer_is_stopped_at_the_timeout(full_repo_copy):
    # predict() writes the start of a frame (a header claiming 100 bytes, then 3 of them) on the
    # worker's socket to the server, then hangs: only the first byte used to be waited for.
    code = full_repo_copy / "cancel_risk" / "1" / "model.py"
    code.write_text(code.read_text().replace(
        "def predict(model, features):\n",
        "def predict(model, features):\n"
        "    if (features['surge_multiplier'] == 97).any():\n"
        "        import os, time\n"
        "        os.write(3, (100).to_bytes(4, 'little') + b'abc')\n"
        "        time.sleep(3600)\n"))
    manifest = full_repo_copy / "cancel_risk" / "1" / "model.yaml"
    manifest.write_text(manifest.read_text() + "runtime_options: {processes: 2}\ntimeout_ms: 2000\n")
    s = Server(full_repo_copy)
    try:
        features = selftest_cases("cancel_risk", 1)[0]["features"]
        # One for each of the two workers: with only the first byte waited for, both would be
        # stuck for good and every later call would wait for a free worker until its deadline.
        for _ in range(2):
            r = s.post("/infer", {"model_id": "cancel_risk",
                                  "features": {**features, "surge_multiplier": 97}})
            assert r.status_code == 504, r.text
        deadline = time.monotonic() + 15
        while True:
            r = s.post("/infer", {"model_id": "cancel_risk", "features": features})
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # a replacement worker may still be loading
        assert r.status_code == 200, r.text
    finally:
        assert s.stop() == 0


# --- Defect 7: versions loaded at start were never freed -----------------------------------------

@pytest.mark.usefixtures("python_runtime")
def test_a_version_loaded_at_start_is_freed_when_unloaded(full_repo_copy):
    # The loader thread's snapshot cache pinned the start-up snapshot: a python version with
    # worker processes, unloaded later, kept its processes for the life of the server.
    from test_runtimes import assert_workers_leave, python_workers
    manifest = full_repo_copy / "cancel_risk" / "1" / "model.yaml"
    manifest.write_text(manifest.read_text() + "runtime_options: {processes: 2}\n")
    s = Server(full_repo_copy, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        assert len(python_workers(full_repo_copy)) == 2
        r = s.admin("POST", "/v2/repository/models/cancel_risk/unload", token=TOKEN)
        assert r.status_code == 200, r.text
        assert_workers_leave(full_repo_copy, within=10)
        eta = selftest_cases("eta", 2)[0]["features"]
        assert s.post("/infer", {"model_id": "eta", "features": eta}).status_code == 200
    finally:
        assert s.stop() == 0
