"""`forklift new` end to end: generate a service repository with the installed forklift, run the
repository's own test and serve commands against that installation, send a real /infer, parse
every YAML and JSON file it wrote, render its Kubernetes manifests with kubectl kustomize and
check its Terraform with terraform fmt."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest import require_or_skip  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FORKLIFT_BUILD_DIR", SOURCE / "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """forklift installed the way a team gets it: cmake --install into a prefix."""
    where = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(where)], check=True,
                   capture_output=True)
    assert (where / "share" / "forklift" / "templates" / "service" / "common").is_dir()
    return where


def new(prefix, *args, stdin=None):
    return subprocess.run([str(prefix / "bin" / "forklift"), "new", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


# The optional runtimes, and the example model that only a build with each of them has.
OPTIONAL_RUNTIMES = {"python": "cancel_risk", "torchscript": "fraud"}


@pytest.mark.parametrize("runtime", ["cpp", "xgboost", "python", "torchscript"])
def test_a_generated_service_tests_serves_and_deploys(prefix, tmp_path, runtime):
    if runtime in OPTIONAL_RUNTIMES:
        require_or_skip((BUILD / "models" / OPTIONAL_RUNTIMES[runtime]).is_dir(),
                        f"built without the {runtime} runtime")
    repo = tmp_path / "svc"
    name = f"ride-score-{runtime}"
    port = free_port()
    # The trained runtimes come with their trainer (--with-training): the repository's own
    # tests then train a new version too (train_test).
    training = ["--with-training"] if runtime in ("xgboost", "python") else []
    r = new(prefix, str(repo), "--yes", "--name", name, "--team", "@lyft/pricing",
            "--runtime", runtime, "--port", str(port), *training)
    assert r.returncode == 0, r.stderr
    assert f"for {name} ({runtime} runtime)" in r.stdout
    written = [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]
    for must in ["README.md", "CODEOWNERS", "Dockerfile", ".github/workflows/ci.yaml",
                 "deploy/envoy/envoy.yaml", "deploy/terraform/main.tf", "scripts/test.sh",
                 "scripts/serve.sh", f"models/{name}/1/model.yaml",
                 "docs/tutorials/first-prediction.md", "docs/how-to/publish-a-new-version.md",
                 "docs/reference/service.md", "docs/explanation/how-it-runs.md",
                 "deploy/k8s/base/kustomization.yaml",
                 "deploy/k8s/overlays/staging/kustomization.yaml",
                 "deploy/k8s/overlays/production/kustomization.yaml"]:
        assert must in written and (repo / must).is_file(), must
    assert (repo / "CODEOWNERS").read_text().strip().endswith("* @lyft/pricing")
    # Nothing left unrendered: GitHub's ${{ }} aside, and forklift's rules and dashboard, copied
    # as they are (their {{ }} are Prometheus's and Grafana's templates).
    monitoring = repo / "deploy/k8s/monitoring"
    for path in repo.rglob("*"):
        if path.is_file() and path.name != "ci.yaml" and (
                path.parent != monitoring or path.name.startswith("kustomization")):
            assert "{{" not in path.read_text(), path

    # Every YAML and JSON file parses.
    for path in repo.rglob("*"):
        if path.suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(path.read_text()))
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
    workflow = yaml.safe_load((repo / ".github/workflows/ci.yaml").read_text())
    assert list(workflow["jobs"]) == ["test", "image", "deploy-staging", "deploy-production"]
    assert "${{ secrets.REGISTRY_PASSWORD }}" in (repo / ".github/workflows/ci.yaml").read_text()

    env = {**os.environ, "FORKLIFT_PREFIX": str(prefix)}
    # Its own test command, against the installed forklift.
    r = subprocess.run([str(repo / "scripts" / "test.sh")], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "100% tests passed" in r.stdout
    if training:
        assert "train_test" in r.stdout and f"models/{name}/train.yaml" in written

    # Its own serve command, and a real prediction.
    admin_port = free_port()
    server = subprocess.Popen([str(repo / "scripts" / "serve.sh"), "--state-file", "none",
                               "--host", "127.0.0.1"],
                              env={**env, "PORT": str(port), "ADMIN_PORT": str(admin_port)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        body = (repo / "models" / name / "1" / "example-request.json").read_text()
        answer = None
        for _ in range(300):
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/infer", data=body, timeout=2)
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, server.stdout
        assert answer.json()["model_id"] == name and answer.json()["version"] == 1
        # The example scores 1.5 + 2 * distance + 0.1 * hour - 0.5 * weekend: exactly for the
        # hand-written runtimes, as learnt from noisy data for the trained ones.
        tolerance = 1e-9 if runtime in ("cpp", "python") else 1.0
        assert abs(answer.json()["output"] - 8.7) < tolerance, answer.json()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(30) == 0


# The deployment files are the same for every runtime (templates/service/common/deploy). kubectl
# (with kustomize v5: Debian's kubernetes-client 1.20 cannot read the `labels` field) and terraform
# come from no registry the project installs from, so without them these tests skip, in CI too.
@pytest.fixture(scope="module")
def deployable(prefix, tmp_path_factory):
    repo = tmp_path_factory.mktemp("deployable") / "svc"
    r = new(prefix, str(repo), "--yes", "--name", "ride-score", "--runtime", "cpp")
    assert r.returncode == 0, r.stderr
    return repo


@pytest.mark.parametrize("env_name,min_replicas", [("staging", 1), ("production", 3)])
def test_generated_kubernetes_manifests_render(deployable, env_name, min_replicas):
    require_or_skip(shutil.which("kubectl"), "kubectl is not installed",
                    installed_by_project=False)
    r = subprocess.run(["kubectl", "kustomize", str(deployable / "deploy/k8s/overlays" / env_name)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(r.stdout)}
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert all(d["metadata"]["namespace"] == f"ride-score-{env_name}" for d in docs.values())
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == min_replicas
    pod = docs["Deployment"]["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/ml/ride-score:latest"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"] and container["resources"]["requests"]


def test_the_pipeline_sets_the_image_it_built_in_the_overlay(deployable, tmp_path):
    """The deploy jobs run `kustomize edit set image "${IMAGE}=${IMAGE}:TAG"` in an overlay. The
    base has already renamed the image to ${IMAGE}, so the edit must name that, or kustomize
    ignores it and the pods run `latest`. Here the edit is written as kustomize writes it, and
    the overlay is rendered."""
    require_or_skip(shutil.which("kubectl"), "kubectl is not installed",
                    installed_by_project=False)
    workflow = (deployable / ".github/workflows/ci.yaml").read_text()
    assert workflow.count('kustomize edit set image "${IMAGE}=${IMAGE}:${{ needs.image.outputs.tag }}"') == 2
    image = yaml.safe_load(workflow)["env"]["IMAGE"]
    repo = tmp_path / "svc"
    shutil.copytree(deployable, repo)
    overlay = repo / "deploy/k8s/overlays/staging/kustomization.yaml"
    kustomization = yaml.safe_load(overlay.read_text())
    kustomization["images"] = [{"name": image, "newName": image, "newTag": "0123456789ab"}]
    overlay.write_text(yaml.safe_dump(kustomization))
    r = subprocess.run(["kubectl", "kustomize", str(overlay.parent)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    deployment = next(d for d in yaml.safe_load_all(r.stdout) if d["kind"] == "Deployment")
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert images == {f"{image}:0123456789ab"}


def test_generated_monitoring_is_valid_and_renders(deployable):
    """The rules (promtool check and their unit tests), the dashboard (JSON), the monitoring
    kustomization and the scale-on-in-flight component, as a team would apply them."""
    monitoring = deployable / "deploy/k8s/monitoring"
    dashboard = json.loads((monitoring / "forklift-dashboard.json").read_text())
    assert dashboard["panels"] and dashboard["uid"] == "forklift-serving"
    require_or_skip(shutil.which("promtool"), "promtool is missing (Debian's prometheus)")
    r = subprocess.run(["promtool", "check", "rules", "forklift-rules.yaml"], cwd=monitoring,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", "forklift-rules.test.yaml"], cwd=monitoring,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    pod = yaml.safe_load((deployable / "deploy/k8s/base/deployment.yaml").read_text())
    env = {e["name"]: e for e in pod["spec"]["template"]["spec"]["containers"][0]["env"]}
    for name in ("FORKLIFT_ADMIN_TOKEN", "FORKLIFT_STATE_POSTGRES", "FORKLIFT_EVENTS_POSTGRES"):
        assert "secretKeyRef" in env[name]["valueFrom"] and "value" not in env[name], name
    require_or_skip(shutil.which("kubectl"), "kubectl is not installed",
                    installed_by_project=False)
    r = subprocess.run(["kubectl", "kustomize", str(monitoring)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "ConfigMap", "ConfigMap", "ServiceMonitor"], kinds
    rules = next(d for d in docs if "forklift-rules.yaml" in d.get("data", {}))
    assert "ForkliftHighErrorRatio" in rules["data"]["forklift-rules.yaml"]
    # An overlay with the component: the HPA also scales on predictions in flight.
    overlay = deployable / "deploy/k8s/overlays/scaled"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(
        "resources: [../../base]\ncomponents: [../../components/scale-on-in-flight]\n")
    r = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    hpa = next(d for d in yaml.safe_load_all(r.stdout) if d["kind"] == "HorizontalPodAutoscaler")
    assert {"type": "Pods", "pods": {"metric": {"name": "forklift_requests_in_flight"},
                                     "target": {"type": "AverageValue", "averageValue": "8"}}} \
        in hpa["spec"]["metrics"]


def test_generated_terraform_is_formatted(deployable):
    require_or_skip(shutil.which("terraform"), "terraform is not installed",
                    installed_by_project=False)
    r = subprocess.run(["terraform", "fmt", "-check", "-recursive",
                        str(deployable / "deploy" / "terraform")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_questions_are_asked_and_checked_on_the_spot(prefix, tmp_path):
    answers = "Bad_Name\nscore\n\n\nlightgbm\ncpp\n80\n9000\n\n\n"
    r = new(prefix, str(tmp_path / "svc"), stdin=answers)
    assert r.returncode == 0, r.stderr
    assert "DNS-1123 label" in r.stdout          # Bad_Name, asked again
    assert "choose cpp, python, xgboost or torchscript" in r.stdout  # lightgbm, asked again
    assert "1024 to 65534" in r.stdout            # 80, asked again
    assert "@my-org/score-owners" in (tmp_path / "svc" / "CODEOWNERS").read_text()
    assert "9000" in (tmp_path / "svc" / "README.md").read_text()


def test_bad_flags_and_non_empty_directories_are_refused(prefix, tmp_path):
    r = new(prefix, str(tmp_path / "a"), "--yes", "--name", "-bad")
    assert r.returncode == 2 and "DNS-1123" in r.stderr
    r = new(prefix, str(tmp_path / "a"), "--yes", "--port", "70000")
    assert r.returncode == 2 and "--port" in r.stderr
    occupied = tmp_path / "b"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    r = new(prefix, str(occupied), "--yes")
    assert r.returncode == 1 and "not empty" in r.stderr and "--force" in r.stderr
    assert sorted(p.name for p in occupied.iterdir()) == ["notes.txt"]
    r = new(prefix, str(occupied), "--yes", "--force")
    assert r.returncode == 0 and (occupied / "notes.txt").read_text() == "mine"
    # Without a terminal and without --yes, a missing answer is an error, not a hang.
    r = new(prefix, str(tmp_path / "c"), stdin="")
    assert r.returncode == 2 and "--yes" in r.stderr


def test_generated_training_manifests_render(prefix, tmp_path):
    require_or_skip(shutil.which("kubectl"), "kubectl is not installed",
                    installed_by_project=False)
    repo = tmp_path / "svc"
    r = new(prefix, str(repo), "--yes", "--name", "ride-eta", "--runtime", "xgboost",
            "--with-training")
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["kubectl", "kustomize", str(repo / "deploy/k8s/overlays/production")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(r.stdout)}
    assert {"CronJob", "PersistentVolumeClaim", "Deployment"} <= set(docs)
    job = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    train = job["containers"][0]
    assert train["command"][:3] == ["/usr/local/bin/service", "train", "ride-eta"]
    assert train["image"] == docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    claim = docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert job["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    assert "--poll-seconds" in pod["containers"][0]["command"]


def test_training_is_refused_for_a_runtime_without_a_trainer(prefix, tmp_path):
    r = new(prefix, str(tmp_path / "svc"), "--yes", "--runtime", "cpp", "--with-training")
    assert r.returncode == 2 and "no built-in trainer" in r.stderr
