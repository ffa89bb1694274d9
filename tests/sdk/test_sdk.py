"""The team SDK end to end: `cmake --install` forklift into a prefix, build examples/surge out of
tree against it with find_package(forklift), then run the binary that gives: self-tests, and a
real server answering /infer with the team's runtime beside the built-in ones."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import conftest  # noqa: E402
from conftest import EXAMPLE_MODELS, Server, selftest_cases  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FORKLIFT_BUILD_DIR", SOURCE / "build"))


def run(*cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}"
    return out


def test_a_team_service_builds_against_the_installed_sdk_and_serves(tmp_path):
    prefix = tmp_path / "prefix"
    run("cmake", "--install", str(BUILD), "--prefix", str(prefix))
    assert (prefix / "include" / "forklift" / "runtime.h").is_file()
    assert (prefix / "lib" / "cmake" / "forklift" / "forkliftConfig.cmake").is_file()
    assert (prefix / "bin" / "forklift").is_file()
    if (EXAMPLE_MODELS / "fraud").is_dir():  # built with the torchscript runtime: its module
        assert (prefix / "lib" / "forklift" / "libforklift_torchscript.so").is_file()

    # Out of tree: the example's own CMakeLists.txt, nothing from forklift's build directory.
    service_build = tmp_path / "surge-build"
    run("cmake", "-S", str(SOURCE / "examples" / "surge"), "-B", str(service_build), "-G", "Ninja",
        f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release")
    run("cmake", "--build", str(service_build))
    binary = service_build / "surge-service"
    assert binary.is_file()

    repo = tmp_path / "models"
    shutil.copytree(EXAMPLE_MODELS / "surge", repo / "surge")
    shutil.copytree(EXAMPLE_MODELS / "eta", repo / "eta")  # a built-in runtime, same binary
    out = run(str(binary), "selftest", str(repo))
    assert "PASS  surge/1" in out.stdout and "PASS  eta/2" in out.stdout
    if (EXAMPLE_MODELS / "fraud").is_dir():
        # The torchscript runtime's module, found through the directory the SDK's CMake package
        # compiled into the team binary (forklift's build directory is not searched).
        fraud = tmp_path / "fraud-repo"
        shutil.copytree(EXAMPLE_MODELS / "fraud", fraud / "fraud")
        out = run(str(binary), "selftest", str(fraud))
        assert "PASS  fraud/1" in out.stdout, out.stdout

    conftest.FORKLIFT = str(binary)  # the team's binary, not forklift's own
    server = Server(repo)
    try:
        assert server.proc.args[0] == str(binary)
        for case in selftest_cases("surge", 1):
            r = server.post("/infer", {"model_id": "surge", "features": case["features"]})
            assert r.status_code == 200, r.text
            assert r.json()["output"] == case["expected"], case["name"]
        eta = selftest_cases("eta", 2)[0]
        r = server.post("/infer", {"model_id": "eta", "features": eta["features"]})
        assert r.status_code == 200 and r.json()["version"] == 2
        assert server.get("/v2/models/surge").json()["platform"] == "cpp_surge"
    finally:
        assert server.stop() == 0
