#!/usr/bin/env bash
# Builds forklift and its tests with a sanitizer and runs them:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer), in build-asan/: the
#         whole unit-test binary, and the integration files that feed the server bytes, files
#         and lifetimes (requests good and hostile, model files and workers, the repository and
#         object store, loads, swaps, unloads and eviction under load). The files that orchestrate
#         (control plane, replicas, rollouts, training, tracing) run under TSan instead, and the
#         two that drive HAProxy and Prometheus in the release suite only: a server under ASan
#         starts in 6 s, not 2.6 s (measured), and the whole suite made CI's longest test.
#         UBSan's null and alignment checks are off here (CMakePresets.json): a null pointer that
#         is read faults and ASan reports it with its stack (a member call or reference through
#         one never read goes unseen), and the fuzz targets' build checks alignment where hostile
#         bytes are parsed (not the python and torchscript modules: it leaves them out). The two
#         checks were 46% of this build's compile time (one unity file: 40.7 s, 22.4 s without).
#   tsan  ThreadSanitizer, in build-tsan/ (without the torchscript and python runtimes and the
#         gRPC listener, whose libraries are not instrumented): every unit test and the
#         integration files that hold the concurrency tests (hot swaps and promotes under load,
#         shadowing, dynamic batching, the event log, limits, SIGTERM under load, replicas, TLS,
#         rollouts, feedback, training jobs, the object-storage mirror's parallel downloads); the
#         rest of the suite is single-threaded request checking, which ASan covers. Within those
#         files, a test marked not_under_tsan (tests/integration/conftest.py) is left out: one
#         whose subject is a command's output, a refusal, a restart or a file format, where an
#         unmarked test of the file already drives the same threads under load. Hostile input
#         stays unmarked. Where a marked test's file is in no ASan list (control plane, replicas,
#         rollouts, training, tracing), the release run is the only one left to it.
# A report from any process (the test binary, every `forklift serve` the tests start, its worker
# processes) fails the run: each sanitizer writes its reports to files under build-*/sanitizer-logs/,
# and the run fails if any appear, even when the test that caused it passed.
#
#   scripts/sanitize.sh asan|tsan [--build-only | --no-build] [unit|integration]
# (ctest runs the parts with --no-build, after scripts/test.sh has built with --build-only: two
# builds in one directory at once would trip over each other.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-}
shift || true
build_only=0
no_build=0
parts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --no-build) no_build=1 ;;
    unit | integration) parts+=("$1") ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#parts[@]} -gt 0 ] || parts=(unit integration)

case "$kind" in
  asan) configure_args=() ;;
  # The concurrency tests need neither libtorch nor CPython, whose builds are the slowest. gRPC's
  # own threads hand calls over through code TSan cannot see: the listener is tested under ASan.
  tsan) configure_args=(-DFORKLIFT_WITH_TORCH=OFF -DFORKLIFT_WITH_PYTHON=OFF
                        -DFORKLIFT_WITH_GRPC=OFF) ;;
  *) echo "usage: scripts/sanitize.sh asan|tsan [--build-only | --no-build] [unit|integration]" >&2
     exit 2 ;;
esac
build="$root/build-$kind"
cd "$root"
if [ "$no_build" = 0 ]; then
  # The release build's trained example models, when it has them: the same files, copied instead
  # of trained again (about 40 s of CPU in the ASan build). Brought up to date first (a no-op in
  # scripts/test.sh, which has just built them), and checked on every build: CMake trains here
  # when the release build lacks one this build serves, or has gone.
  models_from=""
  if [ -f "$root/build/models/eta/2/model.json" ] &&
     cmake --build "$root/build" --target example_models > /dev/null; then
    models_from="$root/build/models"
  fi
  if [ ! -f "$build/CMakeCache.txt" ]; then
    mkdir -p "$build"
    cmake --preset "$kind" -DFORKLIFT_BUILD_TESTS=ON "${configure_args[@]}" \
      -DFORKLIFT_EXAMPLE_MODELS_FROM="$models_from" \
      > "$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
  elif [ -n "$models_from" ] ||
       [ -n "$(sed -n 's/^FORKLIFT_EXAMPLE_MODELS_FROM:PATH=//p' "$build/CMakeCache.txt")" ]; then
    cmake "$build" -DFORKLIFT_EXAMPLE_MODELS_FROM="$models_from" \
      >> "$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
  fi
  cmake --build --preset "$kind" -j "$(nproc)" --target forklift unit_tests example_models
fi
[ "$build_only" = 1 ] && exit 0
for f in "$build/forklift" "$build/tests/unit_tests"; do
  [ -x "$f" ] || { echo "sanitize: $f is missing: run scripts/sanitize.sh $kind --build-only" >&2; exit 1; }
done

# One directory of reports per part (and per shard of the integration suite, FORKLIFT_TEST_SHARD
# K/N: tests/integration/conftest.py), so that parts running at once keep theirs apart.
shard=${FORKLIFT_TEST_SHARD:-}
logs="$build/sanitizer-logs/$(IFS=-; echo "${parts[*]}")${shard:+-${shard/\//of}}"
rm -rf "$logs"
mkdir -p "$logs"
export FORKLIFT_SANITIZER=$kind
# halt_on_error=0 where the sanitizer allows it: every report of a run is collected, not just
# the first; the report files decide the outcome.
# LeakSanitizer is on for the unit tests but those of the python runtime: forklift's own code
# frees everything (checked), while an embedded CPython with numpy and scikit-learn imported
# never frees its heap, and scanning it at exit took four minutes per process (measured). The
# integration servers load the python example model, so leak checking is off for them; memory
# growth under load is checked by the soak (bench/soak.py) instead.
asan_common="log_path=$logs/asan:strict_string_checks=1:detect_stack_use_after_return=1"
export ASAN_OPTIONS="$asan_common:detect_leaks=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1"
export TSAN_OPTIONS="log_path=$logs/tsan:suppressions=$root/tests/tsan.supp:halt_on_error=0:second_deadlock_stack=1"

# Every unit test under both; the integration files named at the top under each (under TSan the
# torchscript, python and gRPC tests skip themselves: those are not built). Every file runs
# under at least one sanitizer but test_load_balancer.py and test_monitoring.py.
asan_files=(test_infer.py test_v2_protocol.py test_hardening.py test_limits.py test_security.py
            test_grpc.py test_object_storage.py test_feedback.py test_explain.py test_runtimes.py
            test_memory_bounds.py test_coverage_gaps.py test_events.py test_tls.py
            test_inference_path.py test_disk_and_crash.py test_faults.py test_memory_budget.py
            test_batching.py test_lifecycle.py test_version_lifecycle.py test_drift.py)
tsan_files=(test_version_lifecycle.py test_control_plane.py test_batching.py test_events.py
            test_limits.py test_lifecycle.py test_replicas.py test_tls.py test_inference_path.py
            test_rollouts.py test_feedback.py test_training.py test_tracing.py
            test_object_storage.py)
release_only=(test_load_balancer.py test_monitoring.py)
# A new integration file must be placed: under a sanitizer, or knowingly in release_only.
for f in "$root"/tests/integration/test_*.py; do
  name=$(basename "$f")
  case " ${asan_files[*]} ${tsan_files[*]} ${release_only[*]} " in
    *" $name "*) ;;
    *) echo "sanitize: $name is in no list of scripts/sanitize.sh: add it to asan_files, tsan_files or release_only" >&2
       exit 1 ;;
  esac
done
if [ "$kind" = asan ]; then integration_tests=("${asan_files[@]}"); else integration_tests=("${tsan_files[@]}"); fi

status=0
for part in "${parts[@]}"; do
  case "$part" in
    unit)
      echo "sanitize: $kind: unit tests"
      if [ "$kind" = asan ]; then
        ASAN_OPTIONS="$asan_common:detect_leaks=1" \
          "$build/tests/unit_tests" --gtest_filter='-PythonRuntime*' --gtest_brief=1 || status=1
        "$build/tests/unit_tests" --gtest_filter='PythonRuntime*' --gtest_brief=1 || status=1
      else
        "$build/tests/unit_tests" --gtest_brief=1 || status=1
      fi
      ;;
    integration)
      echo "sanitize: $kind: integration tests (${integration_tests[*]:-all})"
      selected=()
      for t in "${integration_tests[@]}"; do selected+=("$root/tests/integration/$t"); done
      [ ${#selected[@]} -gt 0 ] || selected=("$root/tests/integration")
      # Under TSan, not the tests marked not_under_tsan (see the top of this file): they were a
      # third of TSan's time.
      marker=()
      if [ "$kind" = tsan ]; then marker=(-m "not not_under_tsan"); fi
      (cd "$build" && FORKLIFT_BIN="$build/forklift" FORKLIFT_MODELS="$build/models" \
        FORKLIFT_OPENAPI="$root/third_party/open-inference-protocol/open_inference_rest.yaml" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider --strict-markers ${marker[@]+"${marker[@]}"} \
        "${selected[@]}") || status=1
      ;;
  esac
done

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitize: $kind: $(echo "$reports" | wc -l) report file(s):" >&2
  for r in $reports; do
    echo "=== $r" >&2
    head -60 "$r" >&2
  done
  status=1
else
  echo "sanitize: $kind: no sanitizer reports"
fi
exit $status
