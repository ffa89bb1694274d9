"""Three `forklift serve` replicas behind a real HAProxy (Debian's haproxy) on 127.0.0.1,
health-checked on /readyz: one killed with -9 under steady load, restarted, and rejoining; another
stopped with SIGTERM under load. No client request may fail: HAProxy retries a request whose
replica refused the connection or closed it without answering (`retry-on conn-failure
empty-response`, `option redispatch`), which the configuration in
docs/how-to/run-replicas-behind-haproxy.md documents."""
import csv
import io
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

from conftest import Server, selftest_cases

HAPROXY_CFG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HAProxy:
    """HAProxy in the foreground with deploy/haproxy/haproxy.cfg, its servers filled in."""

    def __init__(self, tmp_path, replica_ports):
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        assert Path(haproxy).exists(), "haproxy is missing: run scripts/install-deps.sh"
        self.port = free_port()
        self.stats_socket = tmp_path / "haproxy.sock"
        servers = "\n".join(f"    server forklift{i + 1} 127.0.0.1:{p} check"
                            for i, p in enumerate(replica_ports))
        config = (HAPROXY_CFG.read_text()
                  .replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
                  .replace("/run/haproxy/forklift.sock", str(self.stats_socket)))
        # The committed file lists three replicas on 9001-9003; the test's have other ports.
        config = "\n".join(l for l in config.splitlines() if not l.strip().startswith("server "))
        config += "\n" + servers + "\n"
        # Every request's log line (with its termination state) on HAProxy's stdout.
        config = config.replace("global\n", "global\n    log stdout format raw local0\n", 1)
        config = config.replace("defaults\n", "defaults\n    log global\n    option httplog\n", 1)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(config)
        check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(tmp_path / "haproxy.log", "w")
        self.proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)],
                                     stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        """`show stat` from the stats socket: one dict per server, by name."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {r["svname"]: r for r in rows if r["pxname"] == "forklift"}

    def wait_status(self, server, status, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.stats()[server]["status"].startswith(status):
                    return
            except (OSError, KeyError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"{server} not {status}: {self.stats().get(server)}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def test_killing_a_replica_under_load_loses_no_request_and_it_rejoins(repo_copy, tmp_path):
    replicas = [Server(repo_copy) for _ in range(3)]
    lb = HAProxy(tmp_path, [r.port for r in replicas])
    body = {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]}
    results = {"sent": 0, "ok": 0}
    failures = []
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.monotonic()
    marks = {}

    def client():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(lb.url + "/infer", json=body, timeout=10)
                ok, why = r.status_code == 200, f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                ok, why = False, repr(e)
            with lock:
                results["sent"] += 1
                results["ok"] += ok
                if not ok:
                    failures.append(f"{time.monotonic() - t0:.3f}s {why}")

    clients = [threading.Thread(target=client) for _ in range(8)]
    try:
        for i in range(3):
            lb.wait_status(f"forklift{i + 1}", "UP")
        for c in clients:
            c.start()
        time.sleep(2)

        # kill -9: in-flight requests lose their connection; HAProxy retries them elsewhere.
        killed_port = replicas[1].port
        marks["kill"] = time.monotonic() - t0
        replicas[1].stop(signal.SIGKILL)
        lb.wait_status("forklift2", "DOWN")
        time.sleep(1)
        # Restarted on the same port: health checks see /readyz answer 200 and it takes traffic.
        replicas[1] = Server(repo_copy, port=killed_port)
        lb.wait_status("forklift2", "UP")
        rejoined_at = int(lb.stats()["forklift2"]["stot"])
        time.sleep(2)
        rejoined_requests = int(lb.stats()["forklift2"]["stot"]) - rejoined_at

        # SIGTERM: the replica stops accepting, answers what it has, exits 0.
        marks["term"] = time.monotonic() - t0
        assert replicas[2].stop(signal.SIGTERM) == 0
        lb.wait_status("forklift3", "DOWN")
        time.sleep(2)
    finally:
        stop.set()
        for c in clients:
            if c.is_alive():
                c.join()
        stats = lb.stats()
        lb.stop()
        for r in replicas:
            r.stop()

    retries = sum(int(s["wretr"] or 0) for s in stats.values())
    redispatches = sum(int(s["wredis"] or 0) for s in stats.values())
    print(f"\nHAProxy, 3 replicas, 8 clients: {results['sent']} requests sent, {results['ok']} "
          f"answered 200, {len(failures)} failed; one replica kill -9'd, restarted and given "
          f"{rejoined_requests} requests in its first 2 s back; one stopped with SIGTERM; "
          f"HAProxy retried {retries} times and redispatched {redispatches}")
    assert failures == [], (marks, failures[:5])
    assert results["ok"] == results["sent"] > 1000
    assert rejoined_requests > 100  # the restarted replica took its share again
