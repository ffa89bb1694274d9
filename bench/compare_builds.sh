#!/usr/bin/env bash
# Two builds of forklift side by side under the same load, alternating, in one run: did a change
# move throughput or latency? (bench/run.sh puts forklift beside the Flask stack; this puts it
# beside itself.) Both serve the same model repository; wrk (one thread) sends the same bodies.
#
#   bench/compare_builds.sh BASELINE_FORKLIFT CANDIDATE_FORKLIFT [--duration S] [--reps N]
#                           [--models DIR]
#
# Prints a markdown table of medians and the candidate/baseline ratio of requests per second.
# Build the baseline from an earlier commit in a worktree, e.g.
#   git worktree add /tmp/forklift-base <commit> && (cd /tmp/forklift-base &&
#     cmake --preset release -DFORKLIFT_BUILD_TESTS=OFF && cmake --build build --target forklift)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
baseline=$(realpath "$1")
candidate=$(realpath "$2")
shift 2
duration=5
reps=3
models="$root/build/models"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift ;;
    --reps) reps=$2; shift ;;
    --models) models=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v wrk >/dev/null || { echo "compare_builds: wrk is missing; run scripts/install-deps.sh" >&2; exit 2; }
work=$(mktemp -d)
/usr/bin/python3 "$here/make_bodies.py" "$models" "$work" > /dev/null
# The same rows as Open Inference Protocol v2 bodies: one [N, F] FP32 tensor.
/usr/bin/python3 - "$work" <<'EOF2'
import json, sys
work = sys.argv[1]
for name in ("one", "batch100"):
    body = json.load(open(f"{work}/eta_{name}.json"))
    rows = [body["features"]] if "features" in body else body["instances"]
    data = [v for row in rows for v in row.values()]
    v2 = {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [len(rows), len(rows[0])],
                      "data": data}]}
    json.dump(v2, open(f"{work}/v2_{name}.json", "w"))
EOF2

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start() {  # binary -> prints the port once ready
  local port
  port=$(free_port)
  "$1" serve --model-repository "$models" --host 127.0.0.1 --port "$port" --admin-port 0 \
    --state-file none > "$work/$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && { echo "$port"; return 0; }
    sleep 0.05
  done
  echo "compare_builds: $1 did not become ready" >&2
  return 1
}
base_port=$(start "$baseline")
cand_port=$(start "$candidate")

measure() {  # port body connections path -> "rps p50_us p99_us errors"
  local line
  line=$(BENCH_BODY_FILE="$2" wrk -t1 -c"$3" -d"${duration}s" --timeout 5s \
           -s "$here/post.lua" "http://127.0.0.1:$1$4" | grep '^BENCH_JSON' | sed 's/^BENCH_JSON //')
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["rps"], d["p50_us"], d["p99_us"], d["errors"])' "$line"
}

raw="$work/raw.txt"
: > "$raw"
for case in "eta_one 8 /infer" "eta_one 64 /infer" "eta_batch100 8 /infer" \
            "v2_one 8 /v2/models/eta/infer" "v2_batch100 8 /v2/models/eta/infer"; do
  read -r body conns path <<< "$case"
  for _ in $(seq 1 "$reps"); do
    for which in baseline candidate; do
      port=$base_port
      [ "$which" = candidate ] && port=$cand_port
      read -r rps p50 p99 err < <(measure "$port" "$work/$body.json" "$conns" "$path")
      [ "$err" = 0 ] || { echo "compare_builds: $which $body c=$conns had $err errors" >&2; exit 1; }
      echo "$body $conns $which $rps $p50 $p99" >> "$raw"
    done
  done
done

/usr/bin/python3 - "$raw" "$duration" "$reps" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"{sys.argv[3]} alternating runs of {sys.argv[2]} s per case, medians; wrk -t1, same machine.\n")
print("| body | connections | baseline req/s | p50 ms | p99 ms | candidate req/s | p50 ms | p99 ms | candidate / baseline |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
cases = []
for body, conns, *_ in rows:
    if (body, conns) not in cases:
        cases.append((body, conns))
for body, conns in cases:
    med = {}
    for which in ("baseline", "candidate"):
        sel = [r for r in rows if r[0] == body and r[1] == conns and r[2] == which]
        med[which] = [statistics.median(float(r[i]) for r in sel) for i in (3, 4, 5)]
    b, c = med["baseline"], med["candidate"]
    kind, size = body.split("_", 1)
    label = ("v2, " if kind == "v2" else "") + ("one row" if size == "one" else size.replace("batch", "") + " rows")
    print(f"| {label} | {conns} | {b[0]:,.0f} | {b[1]/1000:.2f} | {b[2]/1000:.2f} | "
          f"{c[0]:,.0f} | {c[1]/1000:.2f} | {c[2]/1000:.2f} | {c[0]/b[0]:.2f}x |")
EOF
