"""Every include in src/ goes down the layer order or stays in its layer, and the public headers
(include/forklift/) include only the standard library and each other.

The per-layer include paths (CMakeLists.txt, forklift_layer) make a wrong-way include fail to
build; this check names each one at once, with its file and line, and also covers what the
compiler cannot see: files this configuration does not compile (an optional runtime left out),
includes that climb out of their folder ("../api/x.h" is found next to the including file,
whatever the include path), layer folders included with <...>, and a public header that would
compile here but not for a team building against the installed SDK."""
import re
import sys
from pathlib import Path

# The same order as FORKLIFT_LAYERS in CMakeLists.txt.
LAYERS = ["common", "observability", "core", "runtimes", "store", "training", "api", "grpc_api", "server",
          "cli"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def includes(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = INCLUDE.match(line)
        if m:
            yield number, m.group(1), m.group(2)


def check_sources(src: Path, bad: list):
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cc"):
            continue
        own = path.relative_to(src).parts[0]
        if own not in LAYERS:
            bad.append(f"{path}: not in a layer folder ({', '.join(LAYERS)})")
            continue
        for number, bracket, name in includes(path):
            first = name.split("/")[0]
            if ".." in name.split("/"):
                bad.append(f"{path}:{number}: includes {name}: name layer headers from src/, "
                           "never with ..")
            elif first in LAYERS and bracket == "<":
                bad.append(f"{path}:{number}: includes <{name}>: layer headers are included "
                           'with "..."')
            elif first in LAYERS and LAYERS.index(first) > LAYERS.index(own):
                bad.append(f"{path}:{number}: {own} includes {first}/ (a layer above it)")


def check_public(include: Path, bad: list):
    for path in sorted(include.rglob("*.h")):
        for number, bracket, name in includes(path):
            if bracket == '"' and not name.startswith("forklift/"):
                bad.append(f"{path}:{number}: a public header includes \"{name}\"; only "
                           "forklift/... and the standard library are installed")


def main(src: Path, include: Path) -> int:
    bad = []
    check_sources(src, bad)
    check_public(include, bad)
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
