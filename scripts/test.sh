#!/usr/bin/env bash
# One command from a fresh machine to every test: installs dependencies, builds, runs ctest
# (unit tests, integration tests against the real server, the benchmark's smoke mode, the fuzz
# targets for a bounded time, the test suites again under ASan+UBSan and TSan).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# The fuzz targets' instrumented build (clang) and the sanitizer builds, before ctest runs them.
"$root/scripts/fuzz.sh" --build-only
"$root/scripts/sanitize.sh" asan --build-only
"$root/scripts/sanitize.sh" tsan --build-only
cd "$root"
# One test more than cores: the integration shards wait on their servers a third of the time.
ctest --preset release -j "$(( $(nproc) + 1 ))" "$@"
