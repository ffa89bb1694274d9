#!/usr/bin/env bash
# Configures and builds forklift, its tests and the example models into build/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cmake --preset release -DFORKLIFT_BUILD_TESTS=ON > /dev/null
cmake --build --preset release -j "$(nproc)"
