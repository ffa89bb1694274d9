"""A private PostgreSQL server for the replica and event tests: its own data directory, port
and socket directory under /tmp, started and stopped by the test (never the system's cluster)."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin_dir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs else None


def available():
    return _bin_dir() is not None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl as an unprivileged user: PostgreSQL refuses to run as root, so when the
    tests run as root the server runs as the `postgres` account the Debian package creates."""

    def __init__(self):
        self.bin = _bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="forklift-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "--auth=trust", "--username=forklift",
                  "--encoding=UTF8", "--no-sync")
        self.start()

    @property
    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=forklift"

    def _run(self, tool, *args):
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.dir)

    def start(self):
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "30", "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def query(self, sql):
        """Runs `sql` with psql; the rows as lists of strings."""
        out = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "forklift",
             "-d", "postgres", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines()]

    def close(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(predicate, timeout, interval=0.02):
    """Polls `predicate` until it is true; the seconds it took, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None
