#!/usr/bin/env bash
# Builds forklift's libFuzzer targets with clang (AddressSanitizer + UndefinedBehaviorSanitizer,
# in build-fuzz/) and runs each for a bounded time, starting from the committed seed corpus in
# fuzz/corpus/<target>/. New interesting inputs go to build-fuzz/corpus/<target>/; a crash writes
# its input to build-fuzz/crashes/ and fails the run (turn it into a regression test: add the
# input to fuzz/corpus/<target>/ once fixed, so every later run replays it).
#
#   scripts/fuzz.sh [--seconds N] [--build-only | --no-build] [TARGET ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds=30
build_only=0
no_build=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --build-only) build_only=1 ;;
    --no-build) no_build=1 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_http_request fuzz_infer_json fuzz_model_yaml \
                                     fuzz_selftest_jsonl fuzz_tree_models fuzz_worker_protocol \
                                     fuzz_feedback fuzz_control_json fuzz_training fuzz_grpc_infer \
                                     fuzz_repository_files)
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing; run scripts/install-deps.sh" >&2; exit 2; }

if [ "$no_build" = 0 ] && [ ! -f "$build/CMakeCache.txt" ]; then
  mkdir -p "$build"
  # -gline-tables-only: a crash's stack names files and lines, and the build is a fifth faster
  # than with full debug information (measured).
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
    -DFORKLIFT_FUZZ=ON -DFORKLIFT_BUILD_TESTS=OFF -DFORKLIFT_WERROR=ON \
    -DFORKLIFT_WITH_TORCH=OFF -DFORKLIFT_WITH_PYTHON=OFF > "$build/configure.log" 2>&1 \
    || { cat "$build/configure.log" >&2; exit 1; }
fi
[ "$no_build" = 1 ] || cmake --build "$build" --target fuzz_targets
for t in "${targets[@]}"; do
  [ -x "$build/fuzz/$t" ] || { echo "fuzz: $build/fuzz/$t is missing: run scripts/fuzz.sh --build-only" >&2; exit 1; }
done
[ "$build_only" = 1 ] && exit 0

mkdir -p "$build/crashes"
# UBSan prints only a file and line by default; the stack shows which parser reached the code.
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  log="$build/$t.log"
  # -max_total_time bounds the run; -timeout flags an input that takes over 10 s (a hang);
  # -rss_limit_mb bounds memory, and -malloc_limit_mb any one allocation: no input of a few KB
  # may size a buffer of 128 MB (a count taken from content and not bounded by its bytes). The
  # seed corpus is read, never written.
  if "$build/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -malloc_limit_mb=128 \
       -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
       "$build/corpus/$t" "$root/fuzz/corpus/$t" > "$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(ls "$build/corpus/$t" "$root/fuzz/corpus/$t" 2>/dev/null | grep -vc ':$' || true)
    echo "fuzz: $t: ${seconds}s, $runs inputs run, corpus $corpus files, no failure"
  else
    echo "fuzz: $t FAILED; its input is in $build/crashes/; log: $log" >&2
    # The report first (a CI page may show only the start of this), then the log's end.
    grep -m 20 -E 'runtime error|==ERROR|SUMMARY:|#[0-9]+ 0x|Test unit written' "$log" >&2 || true
    echo "fuzz: the end of $log:" >&2
    tail -25 "$log" >&2
    status=1
  fi
done
exit $status
