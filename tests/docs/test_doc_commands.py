"""Runs the command blocks of the tutorials and how-to guides, as a reader would, against a real
`forklift serve`.

Every fenced ```sh, ```bash or ```console block in docs/tutorials/*.md and docs/how-to/*.md runs,
page by page, in the page's order, unless a marker right before it says otherwise. A block that
is neither runnable here nor marked fails the test, so a page cannot drift from the code
unnoticed.

Conventions (write pages with them, and a reader following the page sees nothing of the test):

- Where a block runs: each block is one `bash -e -o pipefail` script, run in a scratch directory
  laid out like forklift's checkout after a build: `build/forklift` (the binary under test,
  $FORKLIFT_BIN), `build/models` (a private copy of the example models, $FORKLIFT_MODELS),
  `examples/`, `scripts/`, `third_party/` and `deploy/` (the repository's). `forklift` is on PATH. `/srv/models`, the repository the how-to
  guides serve, names the same private copy.
- Addresses: pages use forklift's default ports, `localhost:8080` (or `127.0.0.1:8080`) for the
  data plane and `127.0.0.1:8081` (or `localhost:8081`) for the admin API; the test replaces them
  with the free ports its server took. The control-plane commands find the admin API through
  $FORKLIFT_ADMIN_URL and their token in $FORKLIFT_ADMIN_TOKEN, which is also the token the server
  was started with (as the how-to guides tell the reader to do).
- Output: a whole-line comment in a block (`# {"ready":true}`) is what the commands above it
  print. Each must appear in the block's output, in order; `...` stands for anything on the line
  and a run of spaces for any run of spaces. A block whose output holds `"error":` fails unless
  one of its comments shows that error.
- The server: a page runs against `forklift serve --model-repository build/models`, started
  before its first block, unless the page starts its own (marker `server`).
- Markers, an HTML comment on the line before the block (invisible on the rendered page):
  - `<!-- doc-test: skip (REASON) -->`: cannot run here (a build, a package install, docker,
    a cloud, another machine); the reason is required.
  - `<!-- doc-test: serve-instead (REASON) -->`: a block that builds and then serves the example
    models (`scripts/serve.sh`); not run, the test starts `forklift serve --model-repository
    build/models` in its place.
  - `<!-- doc-test: server -->`: the block starts a server in the foreground. It runs in the
    background with `--host 127.0.0.1 --port 0 --admin-port 0` appended to its `forklift serve`
    (any server already running is stopped first, as a reader's Ctrl-C would) and the page goes
    on once the server has loaded its repository.
  - `<!-- doc-test: exit N -->`: the block's last command exits with status N.
- Preconditions: a how-to guide starts from a state ("version 3 of eta exists"); the state a page
  assumes is made by the entry for it in PRECONDITIONS below, which says in words what it stands
  for.

Run: FORKLIFT_BIN=build/forklift FORKLIFT_MODELS=build/models python3 -m pytest tests/docs
"""
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BUILD = ROOT / "build"
FORKLIFT = Path(os.environ.get("FORKLIFT_BIN", str(BUILD / "forklift"))).resolve()
EXAMPLE_MODELS = Path(os.environ.get("FORKLIFT_MODELS", str(BUILD / "models"))).resolve()

PAGES = sorted(DOCS.glob("tutorials/*.md")) + sorted(DOCS.glob("how-to/*.md"))
SHELLS = ("sh", "bash", "console")
BLOCK_TIMEOUT = 180  # seconds; the slowest block waits one 10 s poll interval, on a busy CI machine
MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<kind>[a-z-]+)\s*(?P<arg>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str  # the block's content, its indentation removed
    marker: tuple | None = None  # (kind, argument)

    def where(self):
        return f"{self.page}:{self.line}"


def read_blocks(path):
    """Every fenced block of a page, with the marker that precedes it; raises on a stray marker."""
    lines = path.read_text().splitlines()
    page = str(path.relative_to(DOCS))
    blocks, pending, i = [], None, 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if marker:
            if pending:
                raise AssertionError(f"{page}:{pending[2]}: a doc-test marker with no block "
                                     "after it")
            pending = (marker["kind"], marker["arg"], i + 1)
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if not fence:
            if lines[i].strip() and pending:
                raise AssertionError(f"{page}:{pending[2]}: a doc-test marker must come right "
                                     "before its block")
            i += 1
            continue
        indent, start = fence["indent"], i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        i += 1
        blocks.append(Block(page, start + 1, fence["lang"], "\n".join(body) + "\n",
                            pending[:2] if pending else None))
        pending = None
    if pending:
        raise AssertionError(f"{page}:{pending[2]}: a doc-test marker with no block after it")
    return blocks


def shell_blocks(path):
    return [b for b in read_blocks(path) if b.lang in SHELLS]


def console_to_script(text):
    """A ```console block: `$ ` lines (and their `\\` continuations) are commands, the rest output,
    turned into the comment form the test checks."""
    out, continued = [], False
    for line in text.splitlines():
        if line.startswith("$ ") or continued:
            command = line[2:] if line.startswith("$ ") and not continued else line
            out.append(command)
            continued = command.rstrip().endswith("\\")
        elif line.strip():
            out.append("# " + line)
    return "\n".join(out) + "\n"


def expected_lines(script):
    """The whole-line comments of a script, outside here-documents."""
    expected, heredoc_end = [], None
    for line in script.splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            expected.append(stripped[1:].strip())
            continue
        here = re.search(r"<<-?\s*(['\"]?)(\w+)\1", line)
        if here:
            heredoc_end = here.group(2)
    return expected


def output_pattern(expected):
    parts = [re.sub(r"\\[ ]|\\\t", " ", re.escape(p)) for p in expected.split("...")]
    parts = [re.sub(r" +", "[ \\t]+", p) for p in parts]
    return re.compile(".*?".join(parts))


def check_output(block, script, output):
    position = 0
    for expected in expected_lines(script):
        match = output_pattern(expected).search(output, position)
        assert match, (f"{block.where()}: the page shows\n    {expected}\nbut the commands printed "
                       f"(from the previous match on):\n{output[position:]}")
        position = match.end()
    if '"error":' in output:
        assert any('"error"' in e for e in expected_lines(script)), (
            f"{block.where()}: the commands answered an error the page does not show:\n{output}")


class Server:
    """A `forklift serve` started by a shell command line, in its own process group."""

    def __init__(self, command, cwd, env):
        self.command = command
        self.logs = []
        self.data_port = None
        self.admin_port = None
        self._loaded = threading.Event()
        self._listening = threading.Event()
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.time() + 60
        while not self._loaded.is_set():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise AssertionError(f"`{command}` did not start and load its repository:\n"
                                     + "".join(self.logs))
            self._loaded.wait(0.05)

    def _read(self):
        for line in self.proc.stdout:
            self.logs.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                self.data_port = event["port"]
            elif event.get("event") == "admin_listening":
                self.admin_port = event["port"]
            elif event.get("event") == "repository_loaded":
                self._loaded.set()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)


SERVER_FLAGS = "--host 127.0.0.1 --port 0 --admin-port 0"


def server_command(block):
    """The block's script with the test's flags appended to its `forklift serve` command."""
    script = block.text.replace("\\\n", " ")
    lines = script.splitlines()
    serving = [i for i, l in enumerate(lines) if re.search(r"forklift\s+serve\b", l)]
    assert len(serving) == 1, f"{block.where()}: a server block needs exactly one `forklift serve`"
    line = lines[serving[0]]
    for flag in ("--host", "--port", "--admin-port"):
        assert not re.search(rf"{flag}\b", line), (
            f"{block.where()}: a server block must leave {flag} to the test")
    command = re.split(r"\s+#\s", line, maxsplit=1)[0]  # without a trailing comment
    lines[serving[0]] = f"{command.rstrip()} {SERVER_FLAGS}"
    return "\n".join(lines) + "\n"


@dataclass
class Page:
    """One page's run: its scratch directory, its server, and how its blocks see them."""

    name: str
    work: Path
    env: dict
    server: Server | None = None
    ran: list = field(default_factory=list)

    def start_server(self, command):
        self.stop_server()
        self.server = Server(command, self.work, self.env)
        self.env["FORKLIFT_ADMIN_URL"] = f"http://127.0.0.1:{self.server.admin_port}"

    def start_default_server(self):
        self.start_server(f"exec forklift serve --model-repository build/models {SERVER_FLAGS}")

    def stop_server(self):
        if self.server:
            self.server.stop()
            self.server = None

    def substitute(self, text):
        if self.server:
            for host in ("localhost", "127.0.0.1"):
                text = text.replace(f"{host}:8080", f"127.0.0.1:{self.server.data_port}")
                text = text.replace(f"{host}:8081", f"127.0.0.1:{self.server.admin_port}")
        return text.replace("/srv/models", str(self.work / "build" / "models"))

    def sh(self, script, where="precondition", status=0):
        """Runs a script as a block would; returns its output (stdout and stderr together)."""
        script = self.substitute(script)
        # Its own process group: whatever the block leaves running in the background ends with it.
        proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.work,
                                env=self.env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            raise AssertionError(f"{where}: still running after {BLOCK_TIMEOUT} s:\n{script}\n"
                                 f"--- output\n{output}{self.server_log()}")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert proc.returncode == status, (
            f"{where}: exit status {proc.returncode}, the page expects {status}:\n{script}\n"
            f"--- output\n{output}{self.server_log()}")
        return output

    def server_log(self):
        if not self.server:
            return ""
        return "--- server log (last lines)\n" + "".join(self.server.logs[-30:])


# ---------------------------------------------------------------------------------------------
# Preconditions: the state a how-to guide starts from, made before its first block (after the
# page's default server has started, if it has one).

# eta version 3: a copy of version 2 that says `new_versions: hold`, so that it loads and passes
# its self-tests without taking traffic (what a team publishing a candidate does).
ETA_V3_HELD = """
cp -r build/models/eta/2 build/models/eta/.staging-3
echo 'new_versions: hold' >> build/models/eta/.staging-3/model.yaml
mv build/models/eta/.staging-3 build/models/eta/3
"""


def new_version_files_here(page):
    """A new version's files are in the current directory: eta version 2's, with the default
    `latest` version policy (the example's model.yaml says `all`)."""
    page.sh("cp build/models/eta/2/model.json build/models/eta/2/selftest.jsonl .\n"
            "grep -v '^version_policy:' build/models/eta/2/model.yaml > model.yaml")


def eta_v3_held_published(page):
    """eta version 3 has been published (held), and the server has not looked yet."""
    page.sh(ETA_V3_HELD)


def eta_v3_held_loaded(page):
    """eta version 3 has been published (held) and loaded: ready, no traffic."""
    page.sh(ETA_V3_HELD + "forklift deploy eta\n")


def eta_changed_twice(page):
    """eta's deployment was changed: promoted to version 2, then to version 1."""
    page.sh("forklift promote eta 2\nforklift promote eta 1\n")


def eta_batched_with_traffic(page):
    """eta version 3 has the page's `dynamic_batching` block, serves, and has had requests."""
    yaml = next(b.text for b in read_blocks(DOCS / page.name) if b.lang == "yaml"
                and "dynamic_batching:" in b.text)
    batching = yaml[yaml.index("dynamic_batching:"):]
    (page.work / "batching.yaml").write_text(batching)
    page.sh("cp -r build/models/eta/2 build/models/eta/.staging-3\n"
            "cat batching.yaml >> build/models/eta/.staging-3/model.yaml\n"
            "mv build/models/eta/.staging-3 build/models/eta/3\n"
            "forklift deploy eta\n"
            "body=$(head -1 build/models/eta/3/selftest.jsonl | python3 -c 'import json,sys; "
            "print(json.dumps({\"model_id\": \"eta\", "
            "\"features\": json.load(sys.stdin)[\"features\"]}))')\n"
            "for i in $(seq 20); do curl -sf localhost:8080/infer -d \"$body\" > /dev/null; done\n")


def ci_repository_with_a_broken_version(page):
    """A team's repository `models/` in which eta version 3's model answers 100 s less than its
    self-tests expect on one case."""
    page.sh("mkdir -p models/eta\n"
            "cp -r build/models/eta/1 models/eta/1\n"
            "cp -r build/models/eta/1 models/eta/3\n"
            "sed -i '1s/\"expected\": 2533.139892578125/\"expected\": 2633.139892578125/' "
            "models/eta/3/selftest.jsonl\n")


class _Rows:
    """Stands in for a pandas DataFrame: slicing and `to_dict("records")`."""

    def __init__(self, records):
        self.records = records

    def __getitem__(self, s):
        return _Rows(self.records[s])

    def to_dict(self, orient):
        assert orient == "records"
        return [dict(r) for r in self.records]


class _Booster:
    """Stands in for LightGBM's Booster on CHURN_MODEL: its one tree, worked out by hand
    (last_login_days <= 3.5 or missing: left leaf, 1; else 0)."""

    def predict(self, rows):
        return [1.0 if math.isnan(r["last_login_days"]) or r["last_login_days"] <= 3.5 else 0.0
                for r in rows.records]


def churn_model(page):
    """The reader has trained `churn` with LightGBM: models/churn/1/ holds model.txt, the page's
    model.yaml, and selftest.jsonl written by the page's own snippet. LightGBM and pandas are not
    packaged for Debian, so the model is LightGBM's own test model (tests/data/lightgbm) moved to
    the third column, and the snippet runs with stand-ins for the DataFrame and the Booster."""
    version = page.work / "models" / "churn" / "1"
    version.mkdir(parents=True)
    text = (ROOT / "tests/data/lightgbm/missing_value_handle_na.txt").read_text()
    for old, new in [("max_feature_idx=0", "max_feature_idx=2"),
                     ("feature_names=Column_0", "feature_names=tenure_months plan last_login_days"),
                     ("feature_infos=[0:7]", "feature_infos=[1:60] [0:3] [0:30]"),
                     ("split_feature=0", "split_feature=2"),
                     ("Column_0=1", "last_login_days=1")]:
        assert old in text
        text = text.replace(old, new)
    (version / "model.txt").write_text(text)
    blocks = read_blocks(DOCS / page.name)
    (version / "model.yaml").write_text(next(b.text for b in blocks if b.lang == "yaml"
                                             and "runtime: tree" in b.text))
    snippet = next(b.text for b in blocks if b.lang == "python" and "json.dumps" in b.text)
    rows = [{"tenure_months": 7.0, "plan": 3, "last_login_days": float("nan")},
            {"tenure_months": 30.0, "plan": 1, "last_login_days": 2.0},
            {"tenure_months": 2.0, "plan": 0, "last_login_days": 12.0}]
    lines = []
    exec(snippet, {"X_test": _Rows(rows), "booster": _Booster(), "print": lines.append})
    (version / "selftest.jsonl").write_text("\n".join(lines) + "\n")


PRECONDITIONS = {
    "how-to/publish-a-version.md": new_version_files_here,
    "how-to/deploy-a-new-version.md": eta_v3_held_published,
    "how-to/run-an-ab-experiment.md": eta_v3_held_loaded,
    "how-to/roll-back.md": eta_changed_twice,
    "how-to/batch-requests.md": eta_batched_with_traffic,
    "how-to/selftests-in-ci.md": ci_repository_with_a_broken_version,
    "how-to/serve-a-lightgbm-model.md": churn_model,
}


# ---------------------------------------------------------------------------------------------

def pages_with_commands():
    return [p for p in PAGES if shell_blocks(p)]


def test_every_marker_is_known_and_every_exemption_says_why():
    for path in PAGES:
        for block in read_blocks(path):
            if not block.marker:
                continue
            kind, arg = block.marker
            assert block.lang in SHELLS, (
                f"{block.where()}: a doc-test marker on a {block.lang} block")
            assert kind in ("skip", "serve-instead", "server", "exit"), (
                f"{block.where()}: unknown doc-test marker '{kind}'")
            if kind in ("skip", "serve-instead"):
                assert re.fullmatch(r"\(.{10,}\)", arg), (
                    f"{block.where()}: `{kind}` needs its reason in parentheses")
            if kind == "exit":
                assert re.fullmatch(r"\d+", arg), f"{block.where()}: `exit` needs a number"


def test_every_precondition_names_a_page_with_commands():
    names = {str(p.relative_to(DOCS)) for p in pages_with_commands()}
    assert names, f"no command blocks found under {DOCS}"
    assert set(PRECONDITIONS) <= names


@pytest.fixture
def workspace(tmp_path):
    assert FORKLIFT.exists(), f"no forklift binary at {FORKLIFT} (set FORKLIFT_BIN)"
    assert (EXAMPLE_MODELS / "eta" / "2" / "model.json").exists(), (
        f"no example models in {EXAMPLE_MODELS} (set FORKLIFT_MODELS)")
    work = tmp_path / "checkout"
    (work / "build").mkdir(parents=True)
    # Dot files are a server's state file or a half-copied version: not part of the examples.
    shutil.copytree(EXAMPLE_MODELS, work / "build" / "models", ignore=shutil.ignore_patterns(".*"))
    (work / "build" / "forklift").symlink_to(FORKLIFT)
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "scripts").symlink_to(ROOT / "scripts")
    (work / "third_party").symlink_to(ROOT / "third_party")
    (work / "deploy").symlink_to(ROOT / "deploy")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "forklift").symlink_to(FORKLIFT)
    # `python3` in a page is the distribution's, which has the packages the project installs
    # (python3-grpcio, python3-xgboost), whatever python3 comes first on this PATH.
    if Path("/usr/bin/python3").exists():
        (bin_dir / "python3").symlink_to("/usr/bin/python3")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORKLIFT_", "PG"))}
    env.update(PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               FORKLIFT_ADMIN_TOKEN=secrets.token_hex(16), USER=env.get("USER", "docs"))
    return work, env


@pytest.mark.parametrize("path", pages_with_commands(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_commands_run_as_written(path, workspace):
    work, env = workspace
    page = Page(str(path.relative_to(DOCS)), work, env)
    blocks = shell_blocks(path)
    try:
        if not any(b.marker and b.marker[0] in ("server", "serve-instead") for b in blocks):
            page.start_default_server()
        if page.name in PRECONDITIONS:
            PRECONDITIONS[page.name](page)
        for block in blocks:
            kind, arg = block.marker or (None, "")
            if kind == "skip":
                continue
            if kind == "serve-instead":
                page.start_default_server()
                continue
            if kind == "server":
                page.start_server(page.substitute(server_command(block)))
                continue
            script = console_to_script(block.text) if block.lang == "console" else block.text
            output = page.sh(script, block.where(), int(arg) if kind == "exit" else 0)
            check_output(block, script, output)
    finally:
        page.stop_server()
