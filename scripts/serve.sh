#!/usr/bin/env bash
# One command from a fresh machine to a running server: installs dependencies, builds, and serves
# the bundled example models on port 8080 (pass other `forklift serve` flags to override).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
echo "serve: forklift on http://127.0.0.1:${PORT:-8080} with the models in build/models (Ctrl-C stops)"
exec "$root/build/forklift" serve --model-repository "$root/build/models" --port "${PORT:-8080}" "$@"
