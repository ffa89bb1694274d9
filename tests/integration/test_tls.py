"""Optional TLS on the listeners: `--tls-cert/--tls-key` (data plane) and
`--admin-tls-cert/--admin-tls-key` (admin API), with a self-signed certificate made by the
openssl command for 127.0.0.1."""
import json
import socket
import ssl
import subprocess
import time
import warnings

import pytest
import requests

from conftest import FORKLIFT, Server, selftest_cases

TOKEN = "tls-token-0123456789abcdef"


def make_certificate(directory, name="server"):
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def certificate(tmp_path):
    return make_certificate(tmp_path)


@pytest.fixture
def tls_server(repo_copy, certificate):
    cert, key = certificate
    s = Server(repo_copy, "--tls-cert", str(cert), "--tls-key", str(key),
               "--admin-tls-cert", str(cert), "--admin-tls-key", str(key),
               "--read-timeout", "2", env={"FORKLIFT_ADMIN_TOKEN": TOKEN})
    s.url = s.url.replace("http://", "https://")
    s.admin_url = s.admin_url.replace("http://", "https://")
    s.session.trust_env = False  # else $REQUESTS_CA_BUNDLE would replace `verify`
    s.session.verify = str(cert)
    yield s
    assert s.stop() == 0


def eta_body():
    return {"model_id": "eta", "features": selftest_cases("eta", 2)[0]["features"]}


def test_https_answers_inference_and_keeps_connections_alive(tls_server):
    assert tls_server.events("listening")[0]["scheme"] == "https"
    for _ in range(20):  # one kept-alive TLS connection (the session reuses it)
        r = tls_server.post("/infer", eta_body())
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2
        assert r.json()["output"] == pytest.approx(selftest_cases("eta", 2)[0]["expected"],
                                                   rel=1e-5)
    assert tls_server.get("/readyz").status_code == 200
    # The v2 route over TLS too: a row with no missing value (v2 has no null), every feature
    # of eta a float.
    case = selftest_cases("eta", 2)[1]
    assert None not in case["features"].values()
    r = tls_server.post("/v2/models/eta/infer", {"id": "tls-1", "inputs": [
        {"name": k, "shape": [1], "datatype": "FP32", "data": [v]}
        for k, v in case["features"].items()]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "tls-1" and body["model_version"] == "2"
    out = body["outputs"][0]
    assert out["name"] == "eta_seconds" and out["shape"] == [1]
    assert out["data"] == [pytest.approx(case["expected"], rel=1e-5)]
    r = tls_server.post("/infer", "{not json")
    assert r.status_code == 400


def test_tls_version_and_certificate_checks(tls_server, certificate):
    cert, _ = certificate
    host, port = "127.0.0.1", tls_server.port
    # TLS 1.1 and older are refused.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(cert)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client itself would speak TLS 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.minimum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="(?i)protocol.version"):
        with socket.create_connection((host, port), timeout=5) as raw:
            with old.wrap_socket(raw, server_hostname=host):
                pass
    # A client that does not trust the certificate refuses the server.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_server.url + "/readyz", timeout=5)
    # TLS 1.3 works.
    new = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection((host, port), timeout=5) as raw:
        with new.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")


def test_plain_http_and_stalled_handshakes_are_cut_off_and_counted(tls_server):
    # Plain HTTP to a TLS port: the handshake fails and the connection closes.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):  # a TLS alert at most, then the close
            data += chunk
        assert not data.startswith(b"HTTP/")
    # A client that connects and never starts the handshake is closed after --read-timeout.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as s:
        assert s.recv(1) == b""
    assert time.monotonic() - started < 5
    # The server counts the stalled one as it closes it: under a sanitizer on a busy machine,
    # a moment after the client sees the close.
    deadline = time.monotonic() + 10
    while True:
        metrics = tls_server.get("/metrics").text
        failures = [l for l in metrics.splitlines()
                    if l.startswith("forklift_tls_handshake_failures_total ")]
        if (failures and float(failures[0].split()[1]) >= 2) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert failures and float(failures[0].split()[1]) >= 2
    assert tls_server.post("/infer", eta_body()).status_code == 200  # still serving


def test_admin_api_and_cli_over_https(tls_server, certificate):
    cert, _ = certificate
    assert tls_server.admin("POST", "/admin/models/eta/promote", {"version": 1}).status_code == 401
    assert tls_server.admin("POST", "/admin/models/eta/promote", {"version": 1},
                            token=TOKEN).status_code == 200
    env = {"FORKLIFT_ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([FORKLIFT, "status", "--server", tls_server.admin_url, "--ca-file",
                          str(cert)], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "eta" in out.stdout
    # Without the CA the CLI refuses the server's certificate, saying so.
    out = subprocess.run([FORKLIFT, "status", "--server", tls_server.admin_url],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode != 0
    assert "SSL certificate problem" in out.stderr, out.stderr


@pytest.mark.not_under_tsan
def test_bad_certificate_files_stop_the_server_with_a_clear_message(repo_copy, tmp_path,
                                                                     certificate):
    cert, key = certificate
    other_cert, other_key = make_certificate(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (["--tls-cert", str(cert)], "both a certificate and a private key"),
        (["--tls-cert", str(garbage), "--tls-key", str(key)], "cannot use the TLS certificate"),
        (["--tls-cert", str(cert), "--tls-key", str(garbage)], "cannot use the TLS private key"),
        (["--tls-cert", str(cert), "--tls-key", str(other_key)], "mismatch"),
    ]
    for args, message in cases:
        out = subprocess.run(
            [FORKLIFT, "serve", "--model-repository", str(repo_copy), "--host", "127.0.0.1",
             "--port", "0", "--admin-port", "0", "--state-file", "none", *args],
            capture_output=True, text=True, timeout=60)
        assert out.returncode != 0, args
        logged = [json.loads(l) for l in out.stdout.splitlines() + out.stderr.splitlines()
                  if l.startswith("{")]
        assert any(message in e.get("reason", "") for e in logged), (args, out.stdout, out.stderr)
