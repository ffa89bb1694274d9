"""What issue 15 found with no test at all, each through the real server: a multi-output
(float_vector) model end to end, int and bool features into the xgboost and tree runtimes, the
web UI's static-file guard, --idle-timeout, a shadow whose schema lacks the request's features,
PostgreSQL unreachable at start, and HTTP/1.0 bodies. (Chunked bodies: test_hardening.py.)"""
import json
import math
import re
import select
import shutil
import socket
import time
from pathlib import Path

import pytest

from conftest import EXAMPLE_MODELS, Server, require_or_skip
from test_v2_protocol import check

TOKEN = "coverage-token-0123456789"


# --- helpers -------------------------------------------------------------------------------------

def xgboost_and_numpy():
    """The Python XGBoost that trains the example models at build time (install-deps.sh)."""
    try:
        import numpy
        import xgboost
    except ImportError:
        require_or_skip(False, "python3-xgboost is not installed (scripts/install-deps.sh)")
    return xgboost, numpy


def write_version(repo, model_id, version, manifest, cases, files=None):
    """One version directory: model.yaml, selftest.jsonl (a case per dict) and other files."""
    d = repo / model_id / str(version)
    d.mkdir(parents=True)
    (d / "model.yaml").write_text(manifest)
    (d / "selftest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    for name, content in (files or {}).items():
        if isinstance(content, str):
            content = content.encode()
        (d / name).write_bytes(content)
    return d


def constant_repo(tmp_path):
    """One model, `slow`, answering 7 for every row (the built-in constant runtime)."""
    repo = tmp_path / "repo"
    write_version(repo, "slow", 1,
                  "runtime: constant\nartifact: value.txt\nfeatures:\n  - {name: x, type: float}\n"
                  "output: {name: y, type: float}\n",
                  [{"features": {"x": 1}, "expected": 7}], {"value.txt": "7\n"})
    return repo


INFER = b'{"model_id": "slow", "features": {"x": 1}}'


def read_answer(sock):
    """One HTTP answer (head and Content-Length body) from `sock`; b"" if it closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)", head, re.I)
    length = int(m.group(1)) if m else 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def read_to_eof(sock):
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def raw_get(port, target, method=b"GET"):
    """`method target` with Connection: close, sent byte for byte (no client normalises the
    path); the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n")
        return read_to_eof(s)


def split_answer(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1]) if lines and lines[0].startswith(b"HTTP/") else None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    return status, headers, body


def wait_for(predicate, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- 1. a multi-output (float_vector) model end to end ------------------------------------------

def test_a_multi_output_model_answers_whole_vectors_over_infer_and_v2(tmp_path):
    xgb, np = xgboost_and_numpy()
    rng = np.random.default_rng(15)
    x = rng.uniform(0, 10, (300, 2)).astype(np.float32)
    label = np.minimum(x[:, 0] // 3.4, 2).astype(int)  # three classes by the first feature
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3,
                         "eta": 0.3, "nthread": 1}, xgb.DMatrix(x, label=label), 10)
    rows = np.array([[0.5, 1.0], [5.0, 2.0], [9.5, 8.0], [3.3, 0.25]], dtype=np.float32)
    want = booster.inplace_predict(rows)
    assert want.shape == (4, 3)
    # Rows of different classes, so an answer with the rows (or the columns) mixed up shows.
    assert list(want.argmax(axis=1)[:3]) == [0, 1, 2]
    features = [{"a": float(r[0]), "b": float(r[1])} for r in rows]
    repo = tmp_path / "repo"
    booster.save_model(str(tmp_path / "model.json"))
    artifact = (tmp_path / "model.json").read_bytes()
    manifest = ("runtime: xgboost\nartifact: model.json\nfeatures:\n"
                "  - {name: a, type: float}\n  - {name: b, type: float}\n"
                "output: {name: probs, type: float_vector, length: %d}\n")
    write_version(repo, "classes", 1, manifest % 3,
                  [{"features": f, "expected": [float(v) for v in w]}
                   for f, w in zip(features, want)], {"model.json": artifact})
    # The same model declaring the wrong length is refused at load, naming both lengths.
    write_version(repo, "classes_wrong", 1, manifest % 2,
                  [{"features": features[0], "expected": [0.5, 0.5]}], {"model.json": artifact})
    s = Server(repo, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        def close(got, expected):
            assert len(got) == len(expected) == 3, got
            assert all(math.isclose(g, float(e), rel_tol=1e-6, abs_tol=1e-7)
                       for g, e in zip(got, expected)), (got, expected)

        for f, w in zip(features, want):
            r = s.post("/infer", {"model_id": "classes", "features": f})
            assert r.status_code == 200, r.text
            close(r.json()["output"], w)
            assert math.isclose(sum(r.json()["output"]), 1.0, abs_tol=1e-5)
        r = s.post("/infer", {"model_id": "classes", "instances": features})
        assert r.status_code == 200, r.text
        assert len(r.json()["outputs"]) == len(features)
        for got, w in zip(r.json()["outputs"], want, strict=True):
            close(got, w)

        meta = s.get("/v2/models/classes").json()
        assert meta["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [-1, 3]}]
        per_feature = {"inputs": [
            {"name": "a", "shape": [4], "datatype": "FP32", "data": [f["a"] for f in features]},
            {"name": "b", "shape": [4, 1], "datatype": "FP32",
             "data": [[f["b"]] for f in features]}]}
        matrix = {"inputs": [{"name": "input-0", "shape": [4, 2], "datatype": "FP32",
                              "data": [[f["a"], f["b"]] for f in features]}]}
        for request in (per_feature, matrix):
            r = s.post("/v2/models/classes/infer", check("inference_request", request))
            assert r.status_code == 200, r.text
            out = check("inference_response", r.json())["outputs"]
            assert [(o["name"], o["datatype"], o["shape"]) for o in out] == [
                ("probs", "FP32", [4, 3])]
            data = out[0]["data"]
            assert len(data) == 12  # row-major: row 0's three values, then row 1's, ...
            for i, w in enumerate(want):
                close(data[3 * i:3 * i + 3], w)

        assert s.get("/v2/models/classes_wrong/ready").status_code == 503
        versions = s.admin("GET", "/admin/models/classes_wrong", token=TOKEN).json()["versions"]
        assert versions[0]["state"] == "failed"
        assert "produces 3 value(s) per row" in versions[0]["message"], versions
        assert "declares 2" in versions[0]["message"], versions
    finally:
        assert s.stop() == 0


# --- 2. int and bool features into the xgboost and tree runtimes --------------------------------

def test_int_and_bool_features_reach_the_xgboost_and_tree_runtimes_as_numbers(tmp_path):
    """One XGBoost JSON model served four ways: by `xgboost` and by `tree`, each once with an int
    and a bool feature and once with the same columns declared float. Ints and bools must give
    exactly what the same values as floats give, and what XGBoost's Python predicts."""
    xgb, np = xgboost_and_numpy()
    rng = np.random.default_rng(7)
    n = 400
    x = np.column_stack([rng.uniform(0, 1, n), rng.integers(-5, 10, n),
                         rng.integers(0, 2, n)]).astype(np.float32)
    y = x[:, 0] + 10 * x[:, 1] + 100 * x[:, 2]
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "eta": 0.5,
                         "nthread": 1}, xgb.DMatrix(x, label=y), 30)
    typed = [{"a": 0.25, "n": -3, "b": False}, {"a": 0.25, "n": 0, "b": True},
             {"a": 0.25, "n": 4, "b": True}, {"a": 0.25, "n": 5, "b": True},
             {"a": 0.75, "n": 9, "b": False}, {"a": 0.75, "n": 1000000, "b": True}]
    floats = [{"a": r["a"], "n": float(r["n"]), "b": 1.0 if r["b"] else 0.0} for r in typed]
    want = [float(v) for v in booster.inplace_predict(
        np.array([[r["a"], r["n"], r["b"]] for r in floats], dtype=np.float32))]
    # Every row answers differently, so an int or bool read as anything else shows.
    assert len({round(w, 3) for w in want}) == len(want), want
    booster.save_model(str(tmp_path / "model.json"))
    artifact = (tmp_path / "model.json").read_bytes()
    repo = tmp_path / "repo"
    for runtime in ("xgboost", "tree"):
        for kind, n_type, b_type, rows in (("typed", "int", "bool", typed),
                                           ("float", "float", "float", floats)):
            write_version(
                repo, f"{runtime}_{kind}", 1,
                f"runtime: {runtime}\nartifact: model.json\nfeatures:\n"
                f"  - {{name: a, type: float}}\n  - {{name: n, type: {n_type}}}\n"
                f"  - {{name: b, type: {b_type}}}\noutput: {{name: y, type: float}}\n",
                [{"features": r, "expected": w, "atol": 1e-4}
                 for r, w in zip(rows, want)], {"model.json": artifact})
    s = Server(repo)
    try:
        for runtime in ("xgboost", "tree"):
            got = {}
            for kind, rows in (("typed", typed), ("float", floats)):
                model = f"{runtime}_{kind}"
                assert s.get(f"/v2/models/{model}/ready").status_code == 200, s.logs[-5:]
                r = s.post("/infer", {"model_id": model, "instances": rows})
                assert r.status_code == 200, r.text
                got[kind] = r.json()["outputs"]
                singles = [s.post("/infer", {"model_id": model, "features": row}).json()["output"]
                           for row in rows]
                assert singles == got[kind], (runtime, kind)
            assert got["typed"] == got["float"], runtime
            assert all(math.isclose(g, w, rel_tol=1e-5, abs_tol=1e-4)
                       for g, w in zip(got["typed"], want, strict=True)), (runtime, got, want)
            # v2: INT64 and BOOL tensors feed the int and bool features.
            model = f"{runtime}_typed"
            meta = s.get(f"/v2/models/{model}").json()
            assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
                ("a", "FP32"), ("n", "INT64"), ("b", "BOOL")]
            request = {"inputs": [
                {"name": "a", "shape": [len(typed)], "datatype": "FP32",
                 "data": [r["a"] for r in typed]},
                {"name": "n", "shape": [len(typed)], "datatype": "INT64",
                 "data": [r["n"] for r in typed]},
                {"name": "b", "shape": [len(typed)], "datatype": "BOOL",
                 "data": [r["b"] for r in typed]}]}
            r = s.post(f"/v2/models/{model}/infer", check("inference_request", request))
            assert r.status_code == 200, r.text
            assert check("inference_response", r.json())["outputs"][0]["data"] == pytest.approx(
                got["typed"], rel=1e-6)
            # The typed model really is typed: a float for the int, a number for the bool, no.
            for bad in ({"a": 0.25, "n": 3.0, "b": True}, {"a": 0.25, "n": 3, "b": 1}):
                r = s.post("/infer", {"model_id": model, "features": bad})
                assert r.status_code == 400, (runtime, bad, r.text)
    finally:
        assert s.stop() == 0


# --- 3. the web UI's static-file guard -----------------------------------------------------------

SECRET_OUTSIDE = b"SECRET-OUTSIDE-THE-UI-4f1d"
SECRET_HIDDEN = b"SECRET-HIDDEN-FILE-9c2e"


@pytest.fixture
def ui_server(tmp_path):
    """A server whose --ui-dir is a copy of ui/ with a hidden file in it and a secret beside it."""
    ui = tmp_path / "web" / "ui"
    shutil.copytree(Path(__file__).resolve().parents[2] / "ui", ui)
    (ui / ".secret").write_bytes(SECRET_HIDDEN)
    (ui / "sub").mkdir()
    (ui / "sub" / ".hidden").write_bytes(SECRET_HIDDEN)
    (ui / "sub" / "page.html").write_bytes(b"<p>sub page</p>")
    (tmp_path / "web" / "secret.txt").write_bytes(SECRET_OUTSIDE)
    s = Server(constant_repo(tmp_path), "--ui-dir", str(ui))
    yield s, ui
    assert s.stop() == 0


GUARDED_TARGETS = [
    b"/ui/../secret.txt", b"/ui/../../../../../etc/passwd", b"/ui/%2e%2e/secret.txt",
    b"/ui/%2E%2E/secret.txt", b"/ui/..%2fsecret.txt", b"/ui/..%2Fsecret.txt",
    b"/ui/sub/../../secret.txt", b"/ui/sub/..", b"/ui/.secret", b"/ui/%2esecret", b"/ui/./.secret",
    b"/ui/a\\b", b"/ui/..\\secret.txt", b"/ui/sub\\page.html", b"/ui//etc/passwd",
    b"/ui/%2fetc%2fpasswd", b"/ui/index.html%00", b"/ui/index.html%00.png", b"/ui/~/secret.txt",
    b"/ui/index.html/", b"/ui/nope.html", b"/ui/..", b"/ui/...",
]


def test_the_web_ui_serves_its_files_and_nothing_outside_or_hidden(ui_server):
    s, ui = ui_server
    for target in GUARDED_TARGETS:
        status, headers, body = split_answer(raw_get(s.admin_port, target))
        assert status == 404, (target, status, body[:200])
        assert json.loads(body) == {"error": "no such file in the web UI"}, (target, body[:200])
        assert SECRET_OUTSIDE not in body and SECRET_HIDDEN not in body, target
        assert b"root:" not in body, target
    # A real file: its bytes, its content type, and the page's security headers.
    for target, name, content_type in (
            (b"/ui/index.html", "index.html", "text/html; charset=utf-8"),
            (b"/ui/", "index.html", "text/html; charset=utf-8"),
            (b"/ui/index.html?cache=1", "index.html", "text/html; charset=utf-8"),
            (b"/ui/app.js", "app.js", "text/javascript; charset=utf-8"),
            (b"/ui/style.css", "style.css", "text/css; charset=utf-8"),
            (b"/ui/sub/page.html", "sub/page.html", "text/html; charset=utf-8")):
        status, headers, body = split_answer(raw_get(s.admin_port, target))
        assert status == 200, (target, body[:200])
        assert body == (ui / name).read_bytes(), target
        assert headers["content-type"] == content_type, target
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-cache"
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    status, headers, _ = split_answer(raw_get(s.admin_port, b"/ui"))
    assert (status, headers["location"]) == (301, "/ui/")
    status, headers, _ = split_answer(raw_get(s.admin_port, b"/ui/index.html", method=b"POST"))
    assert status in (401, 405), status  # never a write, never the file


# Found while writing the test above: serve_ui refused only a name that *started* with ".", so a
# hidden file in a subdirectory (sub/.hidden, a .git/config under --ui-dir) was served, and a
# directory answered 200 with an empty body.
@pytest.mark.parametrize("target", [b"/ui/sub/.hidden", b"/ui/sub", b"/ui/sub/"])
def test_the_web_ui_serves_no_hidden_file_in_a_subdirectory_and_no_directory(ui_server, target):
    s, _ = ui_server
    status, _, body = split_answer(raw_get(s.admin_port, target))
    assert status == 404 and SECRET_HIDDEN not in body, (target, status, body[:100])


# --- 4. --idle-timeout ---------------------------------------------------------------------------

def test_an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not(tmp_path):
    s = Server(constant_repo(tmp_path), "--idle-timeout", "1")
    request = (b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(INFER), INFER))
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=15) as idle:
            idle.sendall(request)
            answer = read_answer(idle)
            answered = time.monotonic()
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            assert b"Connection: close" not in answer  # kept alive: any close later is the timer
            # Bound by the event, not a clock: wait up to 10 s for the socket to become readable.
            readable, _, _ = select.select([idle], [], [], 10)
            waited = time.monotonic() - answered
            assert readable, "the idle connection was still open 10 s after --idle-timeout 1"
            assert idle.recv(1) == b"", "the server wrote something instead of closing"
            # Not closed at once after the answer either (the timeout's sweep is 0.5 s).
            assert waited >= 0.5, f"closed {waited:.2f} s after the answer"
        # A connection that sends its next request within the timeout keeps being served, for
        # well past the timeout in total, on the same socket.
        with socket.create_connection(("127.0.0.1", s.port), timeout=15) as busy:
            started = last = time.monotonic()
            gaps = []
            while time.monotonic() - started < 2.5:
                time.sleep(0.1)
                gaps.append(time.monotonic() - last)
                busy.sendall(request)
                answer = read_answer(busy)
                assert answer.startswith(b"HTTP/1.1 200 "), (answer, f"largest gap {max(gaps):.2f}")
                last = time.monotonic()
            assert len(gaps) >= 5
    finally:
        assert s.stop() == 0


# --- 5. a shadow whose schema lacks the request's features ---------------------------------------

def shadow_metric(server, name, shadow):
    labels = f'model_id="m",primary_version="1",shadow_version="{shadow}"'
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", server.get("/metrics").text, re.M)
    return float(m.group(1)) if m else None


def test_a_shadow_needing_features_the_requests_lack_is_refused_unless_forced(tmp_path):
    """Version 1 (x float) serves. Version 2 needs a feature `extra` the requests do not carry,
    version 3 takes x as an int, version 4 reads exactly what 1 does (the control)."""
    repo = tmp_path / "repo"
    policy = "version_policy: {specific: [1]}\n"
    for version, features, case in (
            (1, "  - {name: x, type: float}\n", {"x": 1.5}),
            (2, "  - {name: x, type: float}\n  - {name: extra, type: float}\n",
             {"x": 1.5, "extra": 2}),
            (3, "  - {name: x, type: int}\n", {"x": 1}),
            (4, "  - {name: x, type: float}\n", {"x": 1.5})):
        write_version(repo, "m", version,
                      "runtime: constant\nartifact: value.txt\n" + policy + "features:\n" +
                      features + "output: {name: y, type: float}\n",
                      [{"features": case, "expected": 7}], {"value.txt": "7\n"})
    s = Server(repo, state_file=tmp_path / "state.json", env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        deployment = {"routes": [{"version": 1, "weight": 1}],
                      "shadows": [{"version": 2}, {"version": 3}, {"version": 4}]}
        r = s.admin("PUT", "/admin/models/m/deployment", deployment, token=TOKEN)
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert ("shadow version 2 cannot read the requests of version 1: "
                "requires new feature 'extra'") in error, error
        assert ("shadow version 3 cannot read the requests of version 1: "
                "retypes feature 'x' (float -> int)") in error, error
        assert "shadow version 4" not in error, error
        assert "Force it" in error
        # Refused: nothing changed, nothing recorded, the shadows loaded for the check left again.
        assert s.admin("GET", "/admin/models/m/deployment").json()["deployment"] == {
            "routes": [], "shadows": []}
        assert s.admin("GET", "/admin/audit").json()["entries"] == []
        assert s.get("/v2/models/m").json()["versions"] == ["1"]
        # The control: a shadow that reads the same requests is not refused.
        ok = {"routes": [{"version": 1, "weight": 1}], "shadows": [{"version": 4}]}
        assert s.admin("PUT", "/admin/models/m/deployment", ok, token=TOKEN).status_code == 200
        # Forced: made, and each copy the shadows cannot read is an error, not a crash.
        r = s.admin("PUT", "/admin/models/m/deployment?force=true", deployment, token=TOKEN)
        assert r.status_code == 200, r.text
        assert [sh["version"] for sh in r.json()["deployment"]["shadows"]] == [2, 3, 4]
        requests_sent = 6
        for _ in range(requests_sent):
            r = s.post("/infer", {"model_id": "m", "features": {"x": 1.5}})
            assert r.status_code == 200, r.text
            assert (r.json()["version"], r.json()["output"]) == (1, 7)

        def comparisons():
            rows = s.admin("GET", "/admin/models/m").json()["shadow_comparisons"]
            by_shadow = {c["shadow_version"]: c for c in rows}
            done = all(c["errors"] + c["agree"] + c["disagree"] + c["dropped"] >= requests_sent
                       for c in by_shadow.values())
            return by_shadow if done and len(by_shadow) == 3 else None

        by_shadow = wait_for(comparisons, what="every shadow copy compared or counted")
        for shadow in (2, 3):
            c = by_shadow[shadow]
            assert (c["errors"], c["agree"], c["disagree"], c["dropped"]) == (
                requests_sent, 0, 0, 0), c
            assert shadow_metric(s, "forklift_shadow_errors_total", shadow) == requests_sent
        c = by_shadow[4]
        assert (c["errors"], c["agree"], c["disagree"]) == (0, requests_sent, 0), c
        assert shadow_metric(s, "forklift_shadow_errors_total", 4) == 0
        assert s.get("/healthz").status_code == 200
        assert s.get("/readyz").status_code == 200
    finally:
        assert s.stop() == 0


# --- 6. PostgreSQL unreachable at start ----------------------------------------------------------

def test_postgres_unreachable_at_start_serves_the_local_copy_and_refuses_changes(tmp_path):
    """docs/how-to/run-replicas.md "What happens when the database goes away": a replica that
    starts meanwhile serves from its local copy (--state-file) and logs state_from_local_copy;
    forklift_state_store_up{store="postgres"} is 0; changes are refused with 503 "not made"."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(EXAMPLE_MODELS / "eta", repo / "eta")
    state = tmp_path / "state.json"
    body = {"model_id": "eta", "features": json.loads(
        (repo / "eta" / "2" / "selftest.jsonl").read_text().splitlines()[0])["features"]}
    # A first run keeps eta on version 1 in the state file (the policy alone would serve 2).
    s = Server(repo, state_file=state, env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    try:
        assert s.post("/infer", body).json()["version"] == 2
        r = s.admin("POST", "/admin/models/eta/promote", {"version": 1}, token=TOKEN)
        assert r.status_code == 200, r.text
    finally:
        assert s.stop() == 0
    saved = state.read_bytes()
    # A port that refuses connections: bound, never listening.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        conninfo = f"postgresql://127.0.0.1:{closed_port.getsockname()[1]}/nope"
        started = time.monotonic()
        s = Server(repo, "--state-postgres", conninfo, state_file=state,
                   env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
        try:
            local = s.events("state_from_local_copy")
            assert len(local) == 1 and local[0]["models"] == 1, local
            assert str(state) in local[0]["store"]
            down = s.events("state_store_unavailable")
            assert len(down) == 1, down
            assert "changes are refused" in down[0]["effect"]
            # Serving goes on, with the deployment of the local copy.
            r = s.post("/infer", body)
            assert r.status_code == 200 and r.json()["version"] == 1, r.text
            assert s.get("/readyz").status_code == 200
            assert 'forklift_state_store_up{store="postgres"} 0' in s.get("/metrics").text
            assert s.admin("GET", "/admin/models/eta/deployment").json()["deployment"][
                "routes"] == [{"version": 1, "weight": 1}]
            # A change is refused (admin-api.md: 503 "could not be stored"), made nowhere.
            for path, change in (("/admin/models/eta/promote", {"version": 2}),
                                 ("/admin/models/eta/rollback", None)):
                r = s.admin("POST", path, change, token=TOKEN)
                assert r.status_code == 503, (path, r.text)
                assert "not made" in r.json()["error"], (path, r.text)
                assert s.post("/infer", body).json()["version"] == 1
            # The repository extension answers other failures 400, as Triton does; a change that
            # could not be stored is 503, as everywhere in the admin API (admin-api.md).
            r = s.admin("POST", "/v2/repository/models/eta/unload", token=TOKEN)
            assert r.status_code == 503, r.text
            assert "not made" in r.json()["error"], r.text
            assert s.post("/infer", body).json()["version"] == 1  # not unloaded
            assert s.admin("GET", "/admin/audit").status_code == 503
            # The store retries every second (postgres_state_store.cc): still down, logged once.
            time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
            assert 'forklift_state_store_up{store="postgres"} 0' in s.get("/metrics").text
            assert len(s.events("state_store_unavailable")) == 1
        finally:
            assert s.stop() == 0
    assert state.read_bytes() == saved


# --- 7. HTTP/1.0 bodies --------------------------------------------------------------------------

def test_http_1_0_requests_with_a_content_length_body_are_answered(tmp_path):
    s = Server(constant_repo(tmp_path))
    try:
        # HTTP/1.0 without keep-alive: answered in 1.0, then closed by the server.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"POST /infer HTTP/1.0\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(INFER), INFER))
            status, headers, body = split_answer(read_to_eof(c))  # EOF: the server closed it
            assert status == 200, body
            assert headers["connection"] == "close"
            assert json.loads(body)["output"] == 7
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"POST /infer HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(INFER),
                                                                                 INFER))
            assert read_to_eof(c).startswith(b"HTTP/1.0 200 ")
        # The body in a later segment than the head: the server waits for Content-Length bytes.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"POST /infer HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(INFER))
            time.sleep(0.2)
            c.sendall(INFER[:10])
            time.sleep(0.2)
            c.sendall(INFER[10:])
            status, _, body = split_answer(read_to_eof(c))
            assert status == 200 and json.loads(body)["output"] == 7, body
        # HTTP/1.0 asking for keep-alive: told so, and the connection serves a second request.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            for _ in range(2):
                c.sendall(b"POST /infer HTTP/1.0\r\nConnection: keep-alive\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(INFER), INFER))
                answer = read_answer(c)
                assert answer.startswith(b"HTTP/1.0 200 "), answer
                assert b"\r\nConnection: keep-alive" in answer
                assert json.loads(split_answer(answer)[2])["output"] == 7
        # A 1.0 body whose Content-Length is short of the JSON is a 400, not a hang.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"POST /infer HTTP/1.0\r\nContent-Length: 10\r\n\r\n%s" % INFER)
            status, _, body = split_answer(read_answer(c))
            assert status == 400, body
    finally:
        assert s.stop() == 0
