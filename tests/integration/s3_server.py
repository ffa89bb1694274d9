"""An S3-protocol server for the object-storage tests: s3rver (npm, tests/s3) on 127.0.0.1, behind
a small proxy that checks every signed request's AWS Signature Version 4 with botocore's own
signer (s3rver checks only that the access key exists) and the payload's SHA-256, as AWS does.
The proxy also injects faults: answers cut mid-body, listings split into small pages with a hook
run between them, the backend killed and restarted."""
import hashlib
import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

S3RVER = Path(__file__).resolve().parents[1] / "s3" / "node_modules" / ".bin" / "s3rver"
ACCESS_KEY = "S3RVER"  # s3rver's built-in account
SECRET_KEY = "S3RVER"
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                  r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available():
    try:
        import botocore  # noqa: F401
    except ImportError:
        return False
    return S3RVER.exists()


class S3Server:
    def __init__(self, tmp_path, bucket="models"):
        self.data = Path(tmp_path) / "s3-data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        self.backend_port = free_port()
        self.backend = None
        self.requests = []  # (method, path) of every request the proxy passed on
        self.rejected = []  # why signed requests were refused
        self.cut = {}  # key substring -> bytes sent of a GET's body before the connection drops
        self.page_size = None  # max-keys forced on listings
        self.on_list = None  # called with the page number before each listing page is answered
        self.list_pages = 0
        self.start_backend()
        self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.proxy.daemon_threads = True
        self.port = self.proxy.server_address[1]
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start_backend(self):
        self.backend = subprocess.Popen(
            [str(S3RVER), "-d", str(self.data), "-a", "127.0.0.1", "-p", str(self.backend_port),
             "--configure-bucket", self.bucket, "-s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            # s3rver's continuation tokens use DES, which Node 17+ (OpenSSL 3) leaves out.
            env=dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider"))
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.backend_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("s3rver did not start")

    def kill_backend(self):
        if self.backend and self.backend.poll() is None:
            os.killpg(self.backend.pid, signal.SIGKILL)
            self.backend.wait()

    def stop(self):
        self.kill_backend()
        self.proxy.shutdown()

    # A signed PUT from the test itself (botocore signs it), e.g. to corrupt an object.
    def put(self, key, body, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        url = f"{self.endpoint}/{self.bucket}/{urllib.parse.quote(key)}"
        req = AWSRequest(method="PUT", url=url, data=body,
                         headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
        S3SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("PUT", urllib.parse.urlsplit(url).path, body=body, headers=dict(req.headers))
        res = conn.getresponse()
        res.read()
        conn.close()
        assert res.status == 200, res.status

    def delete(self, key):
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        url = f"{self.endpoint}/{self.bucket}/{urllib.parse.quote(key)}"
        req = AWSRequest(method="DELETE", url=url,
                         headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("DELETE", urllib.parse.urlsplit(url).path, headers=dict(req.headers))
        conn.getresponse().read()
        conn.close()

    def object_gets(self, substring):
        return sum(1 for m, p in self.requests if m == "GET" and substring in p)

    def _verify(self, method, target, headers, body):
        """None when the signature is AWS's, else why not (as S3 would refuse it)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        m = AUTH.match(headers.get("Authorization", ""))
        if not m:
            return "malformed Authorization header"
        key, _date, region, signed, signature = m.groups()
        if key != ACCESS_KEY:
            return "InvalidAccessKeyId"
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha is None:
            return "no x-amz-content-sha256"
        if content_sha != "UNSIGNED-PAYLOAD" and content_sha != hashlib.sha256(body).hexdigest():
            return "XAmzContentSHA256Mismatch"
        wanted = {h: headers.get(h, "") for h in signed.split(";")}
        req = AWSRequest(method=method, url=f"http://{headers.get('Host')}{target}",
                         headers=wanted, data=body)
        req.context["timestamp"] = headers.get("x-amz-date", "")
        signer = S3SigV4Auth(Credentials(key, SECRET_KEY), "s3", region)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        return None if expected == signature else "SignatureDoesNotMatch"

    def _handler(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _refuse(self, status, code):
                body = f"<Error><Code>{code}</Code><Message>refused</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _proxy(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "Authorization" in self.headers:
                    why = outer._verify(self.command, self.path, self.headers, body)
                    if why:
                        outer.rejected.append(why)
                        return self._refuse(403, why)
                target = self.path
                split = urllib.parse.urlsplit(target)
                listing = self.command == "GET" and "list-type=2" in (split.query or "")
                if listing:
                    if outer.page_size:
                        target += f"&max-keys={outer.page_size}"
                    if outer.on_list:
                        outer.on_list(outer.list_pages)
                    outer.list_pages += 1
                outer.requests.append((self.command, split.path))
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", outer.backend_port, timeout=30)
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("host", "connection")}
                    conn.request(self.command, target, body=body or None, headers=headers)
                    res = conn.getresponse()
                    data = res.read()
                    conn.close()
                except OSError:
                    self.close_connection = True
                    return self._refuse(503, "ServiceUnavailable")
                cut = next((n for s, n in outer.cut.items() if s in split.path), None)
                self.send_response(res.status)
                for k, v in res.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if cut is not None and self.command == "GET" and res.status == 200:
                    # The server goes away mid-file: some bytes, then the connection drops.
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _proxy

        return Handler
