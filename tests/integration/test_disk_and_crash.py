"""Faults of the disk and of the process: the disk filling while deployments or prediction events
are written (state never corrupt, serving never affected, every event written or counted as
dropped), and `kill -9` with prediction events in flight (what is lost is bounded and no file is
left with a torn line)."""
import json
import os
import re
import signal
import threading
import time

import pytest

from conftest import Server, selftest_cases

TOKEN = "disk-token-0123456789abcdef"
PRELOAD = os.environ.get("FORKLIFT_DISK_FULL_PRELOAD")

needs_preload = pytest.mark.skipif(
    not PRELOAD or os.environ.get("FORKLIFT_SANITIZER"),
    reason="needs the disk-full preload library (not with a sanitizer's runtime)")


class Disk:
    """A directory on a "disk" that the preload library fills on demand."""

    def __init__(self, tmp_path):
        self.dir = (tmp_path / "disk").resolve()
        self.dir.mkdir()
        self.flag = (tmp_path / "disk-full").resolve()

    def env(self):
        return {"LD_PRELOAD": PRELOAD, "FORKLIFT_FAULT_DISK_DIR": str(self.dir),
                "FORKLIFT_FAULT_DISK_FULL": str(self.flag), "FORKLIFT_ADMIN_TOKEN": TOKEN}

    def fill(self, free_bytes=0):
        """From now on only `free_bytes` more bytes fit."""
        self.flag.write_text(str(free_bytes))

    def free(self):
        self.flag.unlink()


def eta_body():
    return {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]}


def answered_version(server):
    r = server.post("/infer", eta_body())
    assert r.status_code == 200, r.text
    return r.json()["version"]


def metric(server, name):
    text = server.get("/metrics").text
    m = re.search("^" + re.escape(name) + r" (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def event_lines(directory):
    """Every line of every events file, checking each is whole JSON."""
    lines = []
    for f in sorted(directory.glob("events-*.jsonl")):
        content = f.read_bytes()
        assert not content or content.endswith(b"\n"), f"{f.name} ends in a torn line"
        lines += [json.loads(line) for line in content.decode().splitlines()]
    return lines


@needs_preload
def test_a_full_disk_refuses_deployment_changes_and_leaves_the_state_file_whole(repo_copy, tmp_path):
    disk = Disk(tmp_path)
    state = disk.dir / "state.json"
    s = Server(repo_copy, state_file=state, env=disk.env())
    try:
        assert s.admin("POST", "/admin/models/eta/promote", {"version": 1},
                       token=TOKEN).status_code == 200
        before = state.read_bytes()
        for free_bytes in (0, 100):  # nothing fits; a part of the file fits
            disk.fill(free_bytes)
            r = s.admin("POST", "/admin/models/eta/promote", {"version": 2}, token=TOKEN)
            assert r.status_code == 503, r.text
            assert "could not be written" in r.json()["error"]
            assert "the change was not made" in r.json()["error"]
            assert state.read_bytes() == before  # byte for byte the last good state
            assert not list(disk.dir.glob("state.json.tmp*"))  # no temporary left behind
            assert answered_version(s) == 1  # the change was not made, serving goes on
            assert s.admin("GET", "/admin/models/eta/deployment").json()["deployment"][
                "routes"] == [{"version": 1, "weight": 1}]
        disk.free()
        assert s.admin("POST", "/admin/models/eta/promote", {"version": 2},
                       token=TOKEN).status_code == 200
        assert answered_version(s) == 2
        assert json.loads(state.read_text())  # whole JSON
    finally:
        s.stop(signal.SIGKILL)
    s = Server(repo_copy, state_file=state)  # after kill -9, the last change that was made
    try:
        assert answered_version(s) == 2
    finally:
        assert s.stop() == 0


@needs_preload
def test_a_full_disk_drops_and_counts_events_without_tearing_a_line(repo_copy, tmp_path):
    disk = Disk(tmp_path)
    events_dir = disk.dir / "events"
    s = Server(repo_copy, "--events-dir", str(events_dir), env=disk.env())
    sent = {"before": 40, "full": 40, "after": 40}
    try:
        for phase, count in sent.items():
            if phase == "full":
                disk.fill(300)  # part of a line fits, then nothing
            elif phase == "after":
                disk.free()
            for i in range(count):
                r = s.post("/infer", eta_body(), headers={"x-request-id": f"{phase}-{i}"})
                assert r.status_code == 200, r.text  # a full disk never fails a prediction
            time.sleep(0.5)  # the writer thread hands over within 200 ms
        written = metric(s, 'forklift_events_written_total{sink="file"}')
        dropped = metric(s, 'forklift_events_dropped_total{stage="file"}')
    finally:
        assert s.stop() == 0
    lines = event_lines(events_dir)
    ids = [e["request_id"] for e in lines]
    assert written + dropped == sum(sent.values())  # every event written or counted
    assert len(lines) == written
    assert dropped >= 1
    assert all(f"before-{i}" in ids for i in range(sent["before"]))
    assert all(f"after-{i}" in ids for i in range(sent["after"]))
    assert len(s.events("events_file_unwritable")) == 1  # logged once, not per event
    assert len(s.events("events_file_writable")) == 1
    print(f"\nfull disk: {sum(sent.values())} events, {written:.0f} written, {dropped:.0f} dropped"
          f" and counted, every line whole")


def test_kill_9_loses_only_events_still_in_memory_and_leaves_whole_lines(repo_copy, tmp_path):
    events_dir = tmp_path / "events"
    # Given a moment after the last answer, kill -9 loses nothing: write() has handed every line
    # to the kernel, which keeps it when the process dies.
    s = Server(repo_copy, "--events-dir", str(events_dir))
    for i in range(300):
        assert s.post("/infer", eta_body(), headers={"x-request-id": f"calm-{i}"}).status_code == 200
    time.sleep(0.5)
    s.stop(signal.SIGKILL)
    assert sorted(e["request_id"] for e in event_lines(events_dir)) == sorted(
        f"calm-{i}" for i in range(300))

    # Killed in the middle of steady load: lost are only the events of the last moments.
    s = Server(repo_copy, "--events-dir", str(events_dir))
    answered = {}  # request id -> when its answer arrived
    sent = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(n):
        import requests
        session = requests.Session()
        i = 0
        while not stop.is_set():
            rid = f"busy-{n}-{i}"
            i += 1
            with lock:
                sent.add(rid)
            try:
                r = session.post(s.url + "/infer", json=eta_body(),
                                 headers={"x-request-id": rid}, timeout=5)
            except Exception:
                return  # the server is gone
            if r.status_code == 200:
                with lock:
                    answered[rid] = time.monotonic()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    s.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    stop.set()
    for t in threads:
        t.join()
    s.stop()

    # A restart cuts a torn last line, if the kill left one, before writing on.
    s = Server(repo_copy, "--events-dir", str(events_dir))
    try:
        assert s.post("/infer", eta_body(), headers={"x-request-id": "after"}).status_code == 200
    finally:
        assert s.stop() == 0
    lines = event_lines(events_dir)  # every line whole JSON
    ids = {e["request_id"] for e in lines}
    busy = {i for i in ids if i.startswith("busy-")}
    assert busy <= sent  # no event for a request never made
    missing = set(answered) - busy
    recent = {rid for rid, t in answered.items() if t > killed_at - 1.0}
    assert missing <= recent, "an event older than a second before the kill was lost"
    assert "after" in ids
    print(f"\nkill -9 under load: {len(answered)} answered, {len(busy)} events on disk, "
          f"{len(missing)} lost (all answered in the last second), "
          f"{len(s.events('events_torn_line_removed'))} torn line cut at restart")
