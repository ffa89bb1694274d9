#!/usr/bin/env bash
# Installs everything forklift needs to build, serve, test and benchmark, from Debian's packages.
# Idempotent: when every package is already there it changes nothing and needs no network.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config clang-format
  # the fuzz targets: clang with libFuzzer and the sanitizers' runtime (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # libraries (see docs/explanation/dependencies.md for why each one)
  libboost-dev libsimdjson-dev libyaml-cpp-dev libcli11-dev libxgboost-dev libpq-dev
  libkainjow-mustache-dev
  # the OTLP/HTTP trace exporter
  libcurl4-openssl-dev
  # optional runtimes (the build turns each off, with a message, when its library is missing)
  libtorch-dev python3-dev pybind11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-xgboost python3-numpy python3-yaml python3-jsonschema python3-requests
  python3-pytest python3-flask gunicorn wrk curl nginx python3-matplotlib
  # the optional runtimes' example models are trained at build time
  python3-torch python3-sklearn
  # the replica tests start their own PostgreSQL server; the load-balancer test its own HAProxy
  postgresql haproxy
  # optional TLS on the listeners (the openssl command makes the tests' certificates)
  libssl-dev openssl
  # the Open Inference Protocol over gRPC (--grpc-port); the tests' client is Python grpcio on
  # stubs generated from the spec's proto
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf
  # object-storage repositories: S3's XML answers (tinyxml2); the tests check every request's
  # AWS Signature Version 4 with botocore's own signer, in front of s3rver (npm, below)
  libtinyxml2-dev python3-botocore
  # the gRPC benchmark's load generator (h2load)
  nghttp2-client
  # promtool checks and unit-tests the shipped alert rules; the monitoring test scrapes forklift
  # with a real Prometheus
  prometheus
  # the web UI's browser tests (driven by playwright-core from npm, below)
  chromium
  # container images (scripts/images.sh): podman with runc, and debootstrap for a base image
  # made from Debian's packages
  podman runc uidmap debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm for the browser tests: Debian's, unless the machine already has them.
command -v npm >/dev/null || missing+=(nodejs npm)

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    echo "install-deps: run as root or install sudo" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Only the prometheus and promtool binaries are wanted (the tests start their own): a service
  # the package started on a machine with systemd is stopped again.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
     systemctl is-active --quiet prometheus 2>/dev/null; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# npm packages, exactly as tests/ui/package-lock.json records them (playwright-core; it drives
# Debian's chromium and downloads no browser).
ui_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/ui"
if [ ! -d "$ui_tests/node_modules/playwright-core" ]; then
  echo "install-deps: npm ci in tests/ui"
  npm ci --prefix "$ui_tests" --no-audit --no-fund --loglevel=error
fi
# s3rver, the S3-protocol server the object-storage tests start (tests/s3/package-lock.json).
s3_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/s3"
if [ ! -d "$s3_tests/node_modules/s3rver" ]; then
  echo "install-deps: npm ci in tests/s3"
  npm ci --prefix "$s3_tests" --no-audit --no-fund --loglevel=error
fi
