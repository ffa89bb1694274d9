#!/usr/bin/env bash
# Installs everything forklift needs to build, serve, test and benchmark, from Debian's packages.
# Idempotent: when every package is already there it changes nothing and needs no network.
#
#   scripts/install-deps.sh          everything: build, tests, fuzzing, benchmarks, images
#   scripts/install-deps.sh --sdk    only what building forklift and a team's service needs (the
#                                    SDK image): no test servers, browsers or npm packages
set -euo pipefail
profile=all
case "${1:-}" in
  "") ;;
  --sdk) profile=sdk ;;
  *) echo "usage: scripts/install-deps.sh [--sdk]" >&2; exit 2 ;;
esac

# What a build of forklift, and of a team's service against it (the SDK), needs.
build_packages=(
  # toolchain
  g++ cmake ninja-build pkg-config
  # libraries (see docs/explanation/dependencies.md for why each one)
  libboost-dev libsimdjson-dev libyaml-cpp-dev libcli11-dev libxgboost-dev libpq-dev
  libkainjow-mustache-dev
  # the OTLP/HTTP trace exporter and object-storage repositories (S3's XML answers: tinyxml2)
  libcurl4-openssl-dev libtinyxml2-dev
  # optional runtimes (the build turns each off, with a message, when its library is missing)
  libtorch-dev python3-dev pybind11-dev
  # optional TLS on the listeners
  libssl-dev
  # the Open Inference Protocol over gRPC (--grpc-port)
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc
  # a team's C++ tests (GoogleTest)
  libgtest-dev libgmock-dev
  # the example models are trained at build time, and a team's model tests and trainers run in
  # the same Python
  python3 python3-xgboost python3-numpy python3-yaml python3-torch python3-sklearn
)
# What forklift's own tests, fuzzing, benchmarks and image builds add.
test_packages=(
  clang-format
  # the fuzz targets: clang with libFuzzer and the sanitizers' runtime (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # tests and benchmarks
  libbenchmark-dev
  python3-jsonschema python3-requests python3-pytest python3-flask gunicorn wrk curl nginx
  python3-matplotlib
  # the replica tests start their own PostgreSQL server; the load-balancer test its own HAProxy
  postgresql haproxy
  # the openssl command makes the TLS tests' certificates
  openssl
  # the gRPC tests' client is Python grpcio on stubs generated from the spec's proto
  python3-grpcio python3-protobuf
  # the object-storage tests check every request's AWS Signature Version 4 with botocore's own
  # signer, in front of s3rver (npm, below)
  python3-botocore
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
packages=("${build_packages[@]}")
[ "$profile" = sdk ] || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm for the browser and object-storage tests: Debian's, unless the machine already
# has them.
[ "$profile" = sdk ] || command -v npm >/dev/null || missing+=(nodejs npm)

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

[ "$profile" = sdk ] && exit 0

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
