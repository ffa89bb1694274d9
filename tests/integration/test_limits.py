"""Limits with clear answers (issue #8): connections beyond --max-connections, too many header
fields, slow clients (a slowloris connection cannot hold the server), and load shedding when a
version's queue is full: each answered at once with a status and a reason."""
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import Server

REQUEST = (b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s")


def constant_repo(tmp_path, extra_yaml="", options=""):
    """One model, `slow`, answering 7 for every row (the built-in constant runtime)."""
    version = tmp_path / "repo" / "slow" / "1"
    version.mkdir(parents=True)
    (version / "value.txt").write_text("7\n")
    (version / "model.yaml").write_text(
        "runtime: constant\nartifact: value.txt\nfeatures:\n  - {name: x, type: float}\n"
        "output: {name: y, type: float}\n" + options + extra_yaml)
    (version / "selftest.jsonl").write_text('{"features": {"x": 1}, "expected": 7}\n')
    return tmp_path / "repo"


def raw_request(port, body=b'{"model_id": "slow", "features": {"x": 1}}', extra_headers=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = REQUEST % (len(body), body)
        head = head.replace(b"Host: x\r\n", b"Host: x\r\n" + extra_headers)
        s.sendall(head)
        return read_response(s)


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"Content-Length: (\d+)", head, re.I)
    length = int(m.group(1)) if m else 0
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def metric(server, name):
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", server.get("/metrics").text, re.M)
    return float(m.group(1)) if m else None


def test_connections_beyond_the_limit_get_503_and_are_closed(tmp_path):
    s = Server(constant_repo(tmp_path), "--max-connections", "4", "--threads", "1")
    held = []
    try:
        s.session.close()
        for _ in range(4):
            held.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        # Let the server accept the four before the fifth arrives.
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as extra:
            answer = read_response(extra)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"Retry-After: 1" in answer and b"too many open connections" in answer
            assert extra.recv(1) == b""  # closed by the server
        # The held connections still work, and freeing one lets a new client in.
        body = b'{"model_id": "slow", "features": {"x": 1.5}}'
        held[0].sendall(REQUEST % (len(body), body))
        assert read_response(held[0]).startswith(b"HTTP/1.1 200 ")
        held.pop().close()
        time.sleep(0.3)
        assert raw_request(s.port).startswith(b"HTTP/1.1 200 ")
        for c in held:
            c.close()
        held.clear()
        time.sleep(0.3)
        assert metric(s, "forklift_http_connections_rejected_total") >= 1
    finally:
        for c in held:
            c.close()
        assert s.stop() == 0


def test_too_many_header_fields_get_431(tmp_path):
    s = Server(constant_repo(tmp_path), "--max-header-count", "20")
    try:
        few = b"".join(b"X-Field-%d: %d\r\n" % (i, i) for i in range(10))
        many = b"".join(b"X-Field-%d: %d\r\n" % (i, i) for i in range(30))
        assert raw_request(s.port, extra_headers=few).startswith(b"HTTP/1.1 200 ")
        answer = raw_request(s.port, extra_headers=many)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"header fields; the limit is 20" in answer
    finally:
        assert s.stop() == 0


def test_slow_clients_do_not_hold_the_server_and_are_cut_off(tmp_path):
    s = Server(constant_repo(tmp_path), "--read-timeout", "2", "--threads", "1")
    slow = []
    try:
        # Twenty slowloris connections: a request line, then one header byte every 0.3 s.
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"POST /infer HTTP/1.1\r\nHost: x\r\n")
            slow.append(c)
        stop = threading.Event()

        def trickle():
            while not stop.is_set():
                for c in slow:
                    try:
                        c.send(b"X")
                    except OSError:
                        pass
                time.sleep(0.3)

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        started = time.time()
        # Meanwhile the one serving thread answers everyone else.
        for _ in range(50):
            r = requests.post(s.url + "/infer", json={"model_id": "slow", "features": {"x": 1}},
                              timeout=2)
            assert r.status_code == 200
        # The read timeout (2 s, checked every 0.5 s) closes them though they keep sending.
        cut_start = started
        deadline = time.time() + 10
        closed = 0
        for c in slow:
            c.settimeout(max(0.1, deadline - time.time()))
            try:
                while c.recv(4096):
                    pass
                closed += 1
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except socket.timeout:
                pass
        stop.set()
        t.join(2)
        assert closed == len(slow)
        print(f"\nslowloris: 20 trickling connections closed after {time.time() - cut_start:.1f} s "
              f"(read timeout 2 s); 50 other requests answered 200 meanwhile")
    finally:
        for c in slow:
            c.close()
        assert s.stop() == 0


def test_a_client_stuck_mid_request_does_not_hold_the_drain(tmp_path):
    # SIGTERM lets requests in progress finish, for up to --drain-seconds; a client that sent
    # half a request and stopped is still cut off at --read-timeout, so the server exits then.
    s = Server(constant_repo(tmp_path), "--read-timeout", "1", "--drain-seconds", "30")
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as stuck:
        stuck.sendall(b"POST /infer HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        time.sleep(0.2)
        started = time.monotonic()
        assert s.stop() == 0
        took = time.monotonic() - started
        assert stuck.recv(4096) == b""  # closed without an answer
    assert took < 10, f"the drain waited {took:.1f} s for a stuck client"


def test_a_full_queue_sheds_load_with_503_and_retry_after_at_once(tmp_path):
    # Each call takes a second; one runs and two may wait; the rest are refused at once.
    repo = constant_repo(tmp_path, options="runtime_options: {delay_us: 1000000}\n",
                         extra_yaml="dynamic_batching: {max_batch_size: 1, max_queue_size: 2}\n")
    s = Server(repo)
    try:
        started = time.monotonic()

        def call(_):
            r = requests.post(s.url + "/infer", json={"model_id": "slow", "features": {"x": 1}},
                              timeout=30)
            return r, time.monotonic() - started

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, range(8)))
        ok = [(r, t) for r, t in results if r.status_code == 200]
        shed = [(r, t) for r, t in results if r.status_code == 503]
        assert len(ok) + len(shed) == 8, [r.status_code for r, _ in results]
        assert len(ok) >= 3 and len(shed) >= 3, ([r.status_code for r, _ in results])
        for r, t in shed:
            assert r.headers["Retry-After"] == "1"
            assert "queue is full" in r.json()["error"] and "'slow' version 1" in r.json()["error"]
        # "At once": every refusal came before the first accepted request could finish.
        assert max(t for _, t in shed) < min(t for _, t in ok)
        assert all(r.json()["output"] == 7 for r, _ in ok)
        assert metric(s, "forklift_requests_shed_total") == len(shed)
        print(f"\nshedding: 8 sent, {len(ok)} answered 200 (the last after "
              f"{max(t for _, t in ok):.2f} s), {len(shed)} shed with 503 (the last after "
              f"{max(t for _, t in shed) * 1000:.0f} ms)")
    finally:
        assert s.stop() == 0
