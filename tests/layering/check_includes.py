"""Every #include "layer/..." in src/ goes down the layer order or stays in its layer.

The per-layer include paths (CMakeLists.txt, forklift_layer) make a wrong-way include fail to
build; this check names every such include at once, with the file and line, and also covers
files no target compiles in this configuration (an optional runtime left out)."""
import re
import sys
from pathlib import Path

LAYERS = ["common", "observability", "core", "runtimes", "store", "api", "server", "cli"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')

def main(src: Path) -> int:
    bad = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".cc"):
            continue
        own = path.relative_to(src).parts[0]
        if own not in LAYERS:
            bad.append(f"{path}: not in a layer folder ({', '.join(LAYERS)})")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) in LAYERS and LAYERS.index(m.group(1)) > LAYERS.index(own):
                bad.append(f"{path}:{number}: {own} includes {m.group(1)}/ (a layer above it)")
    for b in bad:
        print(b)
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
