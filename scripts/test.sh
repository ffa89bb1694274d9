#!/usr/bin/env bash
# One command from a fresh machine to every test: installs dependencies, builds, runs ctest
# (unit tests, integration tests against the real server, the benchmark's smoke mode, the fuzz
# targets for a bounded time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# The fuzz targets' instrumented build (clang), before ctest runs them.
"$root/scripts/fuzz.sh" --build-only
cd "$root"
ctest --preset release -j "$(nproc)" "$@"
