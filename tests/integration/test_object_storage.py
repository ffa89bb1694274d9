"""Model repositories in object storage: `forklift push` to a real S3-protocol server (s3rver, with
every signature checked by botocore's signer), `forklift serve --model-repository s3://…` and a
static http:// repository, with faults: a corrupt object, a download cut mid-file, the store
killed, wrong credentials, a listing that changes while it is read, a restart."""
import json
import os
import subprocess
import time

import pytest

from conftest import EXAMPLE_MODELS, FORKLIFT, Server, metric, require_or_skip, selftest_cases
import s3_server

CREDS = {"AWS_ACCESS_KEY_ID": s3_server.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": s3_server.SECRET_KEY}


@pytest.fixture
def s3(tmp_path):
    require_or_skip(s3_server.available(), "s3rver (npm, tests/s3) or python3-botocore is missing")
    server = s3_server.S3Server(tmp_path)
    yield server
    server.stop()


def push(s3, model, version, *extra, env=None, check=True):
    out = subprocess.run([FORKLIFT, "push", str(EXAMPLE_MODELS / model / str(version)),
                          "s3://models/prod", "--s3-endpoint", s3.endpoint, *extra],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, **CREDS, **(env or {})})
    if check:
        assert out.returncode == 0, out.stderr
    return out


def serve(s3, tmp_path, *extra, url="s3://models/prod", env=None, wait_ready=True):
    return Server(url, "--s3-endpoint", s3.endpoint, "--repository-cache", str(tmp_path / "cache"),
                  "--poll-seconds", "0.5", *extra, env={**CREDS, **(env or {})},
                  wait_ready=wait_ready)


def eta_body(version=None):
    body = {"model_id": "eta", "features": selftest_cases("eta", 2)[1]["features"]}
    if version:
        body["version"] = version
    return body


def wait_for(predicate, timeout=90, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def versions_served(server):
    r = server.get("/v2/models/eta")
    return r.json().get("versions", []) if r.status_code == 200 else []


def test_a_pushed_version_is_served_from_s3_and_new_ones_arrive_by_polling(s3, tmp_path):
    push(s3, "eta", 1)
    assert s3.rejected == [], s3.rejected  # every request carried a valid SigV4 signature
    s = serve(s3, tmp_path)
    try:
        r = s.post("/infer", eta_body())
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1
        # A new version pushed while serving appears at the next poll, without a restart.
        push(s3, "eta", 2)
        wait_for(lambda: "2" in versions_served(s), what="version 2")
        assert s.post("/infer", eta_body(2)).status_code == 200
        assert metric(s, "forklift_repository_versions", state="mirrored") == 2
        # Polls of an unchanged store read the listing only: no file is fetched again.
        gets = s3.object_gets("/model.json")
        time.sleep(2)
        assert s3.object_gets("/model.json") == gets
        # A version deleted from the store leaves the server.
        s3.delete("prod/eta/2/forklift-files.json")
        wait_for(lambda: "2" not in versions_served(s), what="version 2 to leave")
        assert s.post("/infer", eta_body()).status_code == 200
        assert s3.rejected == []
    finally:
        assert s.stop() == 0


@pytest.mark.not_under_tsan
def test_versions_are_immutable_and_wrong_credentials_are_refused_clearly(s3, tmp_path):
    push(s3, "eta", 1)
    again = push(s3, "eta", 1, check=False)
    assert again.returncode != 0 and "immutable" in again.stderr
    wrong = push(s3, "eta", 2, env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, check=False)
    assert wrong.returncode != 0
    assert "SignatureDoesNotMatch" in wrong.stderr and "credentials" in wrong.stderr
    assert "not-the-secret" not in wrong.stderr
    unknown = push(s3, "eta", 2, env={"AWS_ACCESS_KEY_ID": "NOBODY"}, check=False)
    assert unknown.returncode != 0 and "InvalidAccessKeyId" in unknown.stderr
    # The server with wrong credentials listens, says why it has nothing, stays unready (nothing
    # was ever mirrored) and keeps trying.
    s = serve(s3, tmp_path, env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, wait_ready=False)
    try:
        wait_for(lambda: len(s.events("repository_sync_failed")) >= 2, what="polls to fail")
        failed = s.events("repository_sync_failed")
        assert "SignatureDoesNotMatch" in failed[0]["reason"]
        assert not any("not-the-secret" in line for line in s.logs)
        assert s.get("/readyz").status_code == 503
        assert s.get("/healthz").status_code == 200
    finally:
        s.stop()


@pytest.mark.not_under_tsan
def test_a_corrupt_object_rejects_its_version_and_the_rest_keep_serving(s3, tmp_path):
    push(s3, "eta", 1)
    push(s3, "eta", 2)
    # Same size, other bytes: only the digest can tell.
    original = (EXAMPLE_MODELS / "eta" / "2" / "model.json").read_bytes()
    s3.put("prod/eta/2/model.json", bytes([original[0] ^ 1]) + original[1:])
    s = serve(s3, tmp_path)
    try:
        assert s.post("/infer", eta_body(1)).status_code == 200
        assert s.post("/infer", eta_body(2)).status_code == 404
        rejected = s.events("repository_version_rejected")
        assert rejected and rejected[0]["version"] == "eta/2"
        assert "digest mismatch for model.json" in rejected[0]["reason"]
        assert metric(s, "forklift_repository_version_rejected", model_id="eta", version="2") == 1
        # Nothing of it reached the mirror.
        mirror = next((tmp_path / "cache" / "mirrors").iterdir())
        assert not (mirror / "eta" / "2").exists()
        # Repaired in the store (pushed again, an identical manifest): the version arrives when
        # its backoff runs out (1 s, then 2 s, ...).
        push(s3, "eta", 2, "--overwrite")
        wait_for(lambda: "2" in versions_served(s), what="the repaired version 2")
        assert s.post("/infer", eta_body(2)).status_code == 200
    finally:
        assert s.stop() == 0


def test_a_download_cut_mid_file_never_becomes_a_version_and_is_retried(s3, tmp_path):
    push(s3, "eta", 1)
    s3.cut["/eta/1/model.json"] = 1000  # every download of it breaks after 1,000 bytes
    s = serve(s3, tmp_path)
    try:
        assert s.post("/infer", eta_body()).status_code == 404
        rejected = s.events("repository_version_rejected")
        assert rejected and rejected[0]["retry_in_seconds"] >= 1
        assert metric(s, "forklift_repository_retries_total") >= 1
        mirror = next((tmp_path / "cache" / "mirrors").iterdir())
        assert not (mirror / "eta" / "1").exists()
        assert not any((tmp_path / "cache" / "blobs" / "tmp").iterdir())  # no partial file kept
        s3.cut.clear()  # the store recovers: the next poll completes the version
        wait_for(lambda: s.post("/infer", eta_body()).status_code == 200, what="version 1")
    finally:
        assert s.stop() == 0


@pytest.mark.not_under_tsan
def test_a_killed_store_leaves_the_mirror_serving_and_a_restart_downloads_nothing(s3, tmp_path):
    push(s3, "eta", 1)
    s = serve(s3, tmp_path)
    try:
        assert s.post("/infer", eta_body()).status_code == 200
        s3.kill_backend()
        wait_for(lambda: (metric(s, "forklift_repository_syncs_total", result="failed") or 0) >= 1,
                 what="a failed poll")
        assert s.post("/infer", eta_body()).status_code == 200  # still serving
    finally:
        assert s.stop() == 0
    # Restarted while the store is down: the earlier mirror is served.
    s = serve(s3, tmp_path)
    try:
        assert s.post("/infer", eta_body()).status_code == 200
    finally:
        s.stop()
    # And with the store back, a restart fetches no file again (ETags and the cache).
    s3.start_backend()
    before = s3.object_gets("/eta/1/")
    s = serve(s3, tmp_path)
    try:
        assert s.post("/infer", eta_body()).status_code == 200
        assert s3.object_gets("/eta/1/") == before
        assert metric(s, "forklift_repository_files_total", source="download") == 0
    finally:
        assert s.stop() == 0


@pytest.mark.not_under_tsan
def test_identical_files_across_versions_come_from_the_cache(s3, tmp_path):
    push(s3, "eta", 1)
    # Version 3 holds exactly version 1's files.
    out = subprocess.run([FORKLIFT, "push", str(EXAMPLE_MODELS / "eta" / "1"), "s3://models/prod",
                          "--s3-endpoint", s3.endpoint, "--version", "3"],
                         capture_output=True, text=True, env={**os.environ, **CREDS}, timeout=60)
    assert out.returncode == 0, out.stderr
    s = serve(s3, tmp_path)
    try:
        assert s.post("/infer", eta_body(3)).status_code == 200
        assert s.post("/infer", eta_body(1)).status_code == 200
        assert s3.object_gets("/model.json") == 1
        assert metric(s, "forklift_repository_files_total", source="cache") >= 3
    finally:
        assert s.stop() == 0


def test_a_listing_that_changes_while_it_is_read(s3, tmp_path):
    push(s3, "eta", 1)
    push(s3, "eta", 2)
    s3.page_size = 2  # the listing comes in pages of two keys
    events = []

    def change(page):
        # Between pages, version 2 disappears: the version is skipped, not half-loaded, and
        # whatever the listing said, the server ends up serving what the store holds.
        if page == 1 and not events:
            events.append(page)
            s3.delete("prod/eta/2/forklift-files.json")

    s3.on_list = change
    s = serve(s3, tmp_path)
    try:
        wait_for(lambda: "2" not in versions_served(s) and "1" in versions_served(s),
                 what="the store's state")
        assert s.post("/infer", eta_body(1)).status_code == 200
        assert s3.list_pages > 2
        assert not any("repository_version_rejected" in line and "eta/1" in line for line in s.logs)
    finally:
        assert s.stop() == 0


def test_a_static_http_repository_is_read_through_its_index(s3, tmp_path):
    push(s3, "eta", 1)
    # s3rver answers unsigned GETs: the bucket is a static site here.
    s = Server(f"{s3.endpoint}/models/prod", "--repository-cache", str(tmp_path / "cache"),
               "--poll-seconds", "0.5")
    try:
        assert s.post("/infer", eta_body()).status_code == 200
        push(s3, "eta", 2)  # push updates the index
        wait_for(lambda: "2" in versions_served(s), what="version 2 through the index")
    finally:
        assert s.stop() == 0
    out = subprocess.run([FORKLIFT, "push", str(EXAMPLE_MODELS / "eta" / "1"),
                          f"{s3.endpoint}/models/prod"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "read-only" in out.stderr


@pytest.mark.not_under_tsan
def test_hostile_manifests_cost_only_their_version(s3, tmp_path):
    push(s3, "eta", 1)
    hostile = {
        "eta/5": {"format": 1, "files": [{"path": "../../escape", "size": 1, "sha256": "0" * 64}]},
        "eta/6": {"format": 1, "files": [{"path": "model.yaml", "size": 2 ** 63, "sha256": "0" * 64}]},
        "eta/7": "not json at all",
        "eta/8": {"format": 1, "files": [{"path": "/etc/passwd", "size": 1, "sha256": "0" * 64}]},
    }
    for path, manifest in hostile.items():
        body = manifest if isinstance(manifest, str) else json.dumps(manifest)
        s3.put(f"prod/{path}/forklift-files.json", body.encode())
    s3.put("prod/not a model/1/forklift-files.json", b"{}")
    s = serve(s3, tmp_path, "--max-version-mb", "100")
    try:
        assert s.post("/infer", eta_body(1)).status_code == 200
        rejected = {e["version"]: e["reason"] for e in s.events("repository_version_rejected")}
        assert set(rejected) == {"eta/5", "eta/6", "eta/7", "eta/8"}, rejected
        assert "not valid JSON" in rejected["eta/7"] and "not at all" not in rejected["eta/7"]
        assert not (tmp_path / "escape").exists()
        assert not (tmp_path / "cache" / "mirrors" / "escape").exists()
    finally:
        assert s.stop() == 0


def test_web_identity_credentials_come_from_sts(s3, tmp_path):
    """A Kubernetes service account's token, exchanged at an STS the test runs, for the
    credentials the store accepts."""
    import http.server
    import threading
    token = tmp_path / "token"
    token.write_text("eyJhbGciOi.fake.jwt\n")
    seen = []

    class Sts(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            seen.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            body = (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                f"<AccessKeyId>{s3_server.ACCESS_KEY}</AccessKeyId>"
                f"<SecretAccessKey>{s3_server.SECRET_KEY}</SecretAccessKey>"
                "<SessionToken>session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
                "</Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    sts = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sts)
    threading.Thread(target=sts.serve_forever, daemon=True).start()
    push(s3, "eta", 1)
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
           "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/forklift",
           "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{sts.server_address[1]}"}
    s = serve(s3, tmp_path, env=env)
    try:
        assert s.post("/infer", eta_body()).status_code == 200
        assert seen and "Action=AssumeRoleWithWebIdentity" in seen[0]
        assert "WebIdentityToken=eyJhbGciOi.fake.jwt" in seen[0]
        assert not any("fake.jwt" in line for line in s.logs)
    finally:
        s.stop()
        sts.shutdown()


def test_a_listing_that_never_ends_is_cut_off_and_shutdown_does_not_wait(tmp_path):
    """A store whose every listing page says "truncated" with a new continuation token."""
    import http.server
    import threading
    pages = []

    class Endless(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            pages.append(self.path)
            body = ("<ListBucketResult><IsTruncated>true</IsTruncated>"
                    f"<NextContinuationToken>t{len(pages)}</NextContinuationToken>"
                    "</ListBucketResult>").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        s = Server("s3://models/prod", "--s3-endpoint", f"http://127.0.0.1:{fake.server_address[1]}",
                   "--repository-cache", str(tmp_path / "cache"), "--poll-seconds", "0.5",
                   env=CREDS, wait_ready=False)
        try:
            # It listens at once; the listing is given up after a bounded number of pages.
            assert s.get("/healthz").status_code == 200
            wait_for(lambda: s.events("repository_sync_failed"), what="the listing to be cut off")
            assert "did not end within" in s.events("repository_sync_failed")[0]["reason"]
            started = time.time()
        finally:
            code = s.stop()
        assert code == 0 and time.time() - started < 10  # the poll in progress was cancelled
    finally:
        fake.shutdown()


@pytest.mark.not_under_tsan
def test_credentials_in_a_repository_url_are_refused_without_being_echoed(tmp_path):
    out = subprocess.run([FORKLIFT, "serve", "--model-repository",
                          "http://alice:Hunter2Secret@127.0.0.1:1/models", "--port", "0",
                          "--admin-port", "0", "--repository-cache", str(tmp_path / "c")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "user:password@" in out.stdout + out.stderr
    assert "Hunter2Secret" not in out.stdout + out.stderr


@pytest.mark.not_under_tsan
def test_a_mirrored_version_changed_in_the_store_keeps_its_mirrored_copy(s3, tmp_path):
    push(s3, "eta", 1)
    s = serve(s3, tmp_path)
    try:
        before = s.post("/infer", eta_body()).json()["output"]
        # eta/1 overwritten with eta/2's files: servers that mirrored eta/1 keep it.
        out = subprocess.run([FORKLIFT, "push", str(EXAMPLE_MODELS / "eta" / "2"),
                              "s3://models/prod", "--s3-endpoint", s3.endpoint, "--version", "1",
                              "--overwrite"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, **CREDS})
        assert out.returncode == 0, out.stderr
        wait_for(lambda: s.events("repository_version_rejected"), what="the change to be refused")
        assert "immutable" in s.events("repository_version_rejected")[0]["reason"]
        assert s.post("/infer", eta_body()).json()["output"] == before
    finally:
        assert s.stop() == 0
