#!/usr/bin/env bash
# The forklift benchmark: forklift and the seed's stack (Flask + Gunicorn, 2 sync workers,
# XGBoost nthread=1) serve the same `eta` model and the same JSON, loaded by wrk from this machine
# one after the other in the same run; then, in the same run, the ceilings (nginx, a no-op
# model), dynamic batching, a 1,000-row request against its in-process cost, the model's own
# cost, and memory and start-up with many versions. Prints Markdown tables and draws a PNG;
# ratios are what to compare (docs/how-to/run-the-benchmark.md).
#
#   bench/run.sh [--smoke] [--duration SECONDS] [--build-dir DIR] [--out FILE]
#
# --smoke runs each case for one second at 8 connections only: CI uses it to prove the benchmark
# works; its figures mean nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build"
duration=10
smoke=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; duration=1 ;;
    --duration) duration=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
build=$(cd "$build" && pwd)  # absolute: gunicorn runs from bench/ (--chdir)
out=${out:-$build/bench/results.md}
work="$build/bench"
mkdir -p "$work"
for tool in wrk gunicorn nginx openssl; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing; run scripts/install-deps.sh" >&2; exit 2; }
done
/usr/bin/python3 "$here/make_bodies.py" "$build/models" "$work"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # url
  for _ in $(seq 1 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "bench: $1 did not come up" >&2; return 1
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

fl_port=$(free_port)
"$build/forklift" serve --model-repository "$build/models" --host 127.0.0.1 --port "$fl_port" \
  --admin-port 0 --state-file none \
  > "$work/forklift.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$fl_port/readyz"

gu_port=$(free_port)
FORKLIFT_ETA_DIR="$build/models/eta/2" /usr/bin/python3 -m gunicorn -w 2 -b "127.0.0.1:$gu_port" \
  --chdir "$here" --log-level warning flask_baseline:app > "$work/gunicorn.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  curl -sf -o /dev/null -X POST --data @"$work/eta_one.json" "http://127.0.0.1:$gu_port/infer" && break
  sleep 0.1
done

# One wrk run; prints "rps p50_us p99_us p999_us requests errors". One wrk thread: on a 2-core
# machine a second client thread takes CPU from the server under test (measured: -t2 cut
# forklift's throughput by 15% and tripled its p99); both stacks get the same client.
measure() {  # url body_file connections
  local line
  line=$(BENCH_BODY_FILE="$2" wrk -t1 -c"$3" -d"${duration}s" --timeout 5s \
           -s "$here/post.lua" "$1" | grep '^BENCH_JSON' | sed 's/^BENCH_JSON //')
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["rps"], d["p50_us"], d["p99_us"], d["p999_us"], d["requests"], d["errors"])' "$line"
}

if [ "$smoke" = 1 ]; then conns=(8); reps=1; else conns=(1 8 64); reps=3; fi
check_errors() {  # name errors
  if [ "$2" != 0 ]; then echo "bench: $1 had $2 errors; the figures are not valid" >&2; exit 1; fi
}
# Each case runs $reps times, alternating forklift and the baseline so that both see the same
# moments of a shared, noisy machine; the table reports medians.
raw="$work/raw.txt"
: > "$raw"
run_case() {  # label body_file connections
  for _ in $(seq 1 "$reps"); do
    read -r rps p50 p99 p999 n err < <(measure "http://127.0.0.1:$fl_port/infer" "$2" "$3")
    check_errors "forklift $1 c=$3" "$err"
    echo "$3 $1 forklift $rps $p50 $p99 $p999" >> "$raw"
    read -r rps p50 p99 p999 n err < <(measure "http://127.0.0.1:$gu_port/infer" "$2" "$3")
    check_errors "flask $1 c=$3" "$err"
    echo "$3 $1 flask $rps $p50 $p99 $p999" >> "$raw"
  done
}
for c in "${conns[@]}"; do run_case one "$work/eta_one.json" "$c"; done
run_case batch100 "$work/eta_batch100.json" 8

# Ceilings, at 8 connections, alternating as above: nginx answering a fixed 200 (the HTTP
# ceiling for this client and body), forklift with a model that costs nothing (its own
# overhead), and eta through forklift's native tree runtime and through XGBoost.
ceil_repo="$work/ceiling-models"
rm -rf "$ceil_repo"
mkdir -p "$ceil_repo/noop/1" "$ceil_repo/eta_tree" "$ceil_repo/eta_plain" "$ceil_repo/eta_batched"
printf 'runtime: constant\nartifact: value.txt\nfeatures:\n  - {name: x, type: float}\noutput: {name: y, type: float}\n' \
  > "$ceil_repo/noop/1/model.yaml"
echo 0 > "$ceil_repo/noop/1/value.txt"
echo '{"features": {"x": 1}, "expected": 0}' > "$ceil_repo/noop/1/selftest.jsonl"
cp -r "$build/models/eta/2" "$ceil_repo/eta_tree/1"
sed -i 's/runtime: xgboost/runtime: tree/' "$ceil_repo/eta_tree/1/model.yaml"
# eta through XGBoost twice more, without and with dynamic batching (64 rows, no queue delay).
cp -r "$build/models/eta/2" "$ceil_repo/eta_plain/1"
cp -r "$build/models/eta/2" "$ceil_repo/eta_batched/1"
printf 'dynamic_batching: {max_batch_size: 64, max_queue_delay_us: 0}\n' \
  >> "$ceil_repo/eta_batched/1/model.yaml"
# Through the XGBoost library, not the native engine the xgboost runtime now takes by default.
for m in eta_plain eta_batched; do echo 'engine: library' >> "$ceil_repo/$m/1/model.yaml"; done
echo '{"model_id": "noop", "features": {"x": 1}}' > "$work/noop_one.json"
for m in eta_tree eta_plain eta_batched; do
  sed "s/\"model_id\": *\"eta\"/\"model_id\": \"$m\"/" "$work/eta_one.json" > "$work/${m}_one.json"
done
sed 's/"model_id": *"eta"/"model_id": "eta_tree"/' "$work/eta_batch1000.json" \
  > "$work/eta_tree_batch1000.json"
fl2_port=$(free_port)
"$build/forklift" serve --model-repository "$ceil_repo" --host 127.0.0.1 --port "$fl2_port" \
  --admin-port 0 --state-file none > "$work/forklift-ceilings.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$fl2_port/readyz"
# The same models with one serving thread: on this 2-core machine the load generator needs the
# other core, and a second serving thread only time-slices with it (longer tails, same req/s).
fl3_port=$(free_port)
"$build/forklift" serve --model-repository "$ceil_repo" --host 127.0.0.1 --port "$fl3_port" \
  --admin-port 0 --state-file none --threads 1 > "$work/forklift-one-thread.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$fl3_port/readyz"
# The same again over HTTPS (TLS 1.3, a self-signed certificate; wrk does not verify it): what
# TLS costs per request once connections are kept alive.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" \
  > /dev/null 2>&1
fl4_port=$(free_port)
"$build/forklift" serve --model-repository "$ceil_repo" --host 127.0.0.1 --port "$fl4_port" \
  --admin-port 0 --state-file none --threads 1 --tls-cert "$work/tls-cert.pem" \
  --tls-key "$work/tls-key.pem" > "$work/forklift-tls.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  curl -sfk -o /dev/null "https://127.0.0.1:$fl4_port/readyz" && break
  sleep 0.05
done
ng_port=$(free_port)
ng_dir="$work/nginx"
mkdir -p "$ng_dir"
{
  echo "daemon off; worker_processes $(nproc); pid $ng_dir/nginx.pid; error_log $ng_dir/error.log;"
  [ "$(id -u)" = 0 ] && echo "user root;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; keepalive_requests 1000000;"
  for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $ng_dir/$t;"; done
  echo "  server { listen 127.0.0.1:$ng_port; location / { default_type application/json;"
  echo "    return 200 '{\"model_id\":\"noop\",\"version\":1,\"output\":0,\"request_id\":\"0123456789abcdef-00000001\"}'; } } }"
} > "$ng_dir/nginx.conf"
nginx -c "$ng_dir/nginx.conf" -p "$ng_dir" > "$ng_dir/stdout.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ng_port/"
ceilings="$work/ceilings.txt"
: > "$ceilings"
for _ in $(seq 1 "$reps"); do
  for target in "nginx $ng_port noop_one" "forklift-noop $fl2_port noop_one" \
                "forklift-noop-1t $fl3_port noop_one" \
                "forklift-tree $fl2_port eta_tree_one" "forklift-tree-1t $fl3_port eta_tree_one" \
                "forklift-tree-1t-tls $fl4_port eta_tree_one" \
                "forklift-xgboost $fl_port eta_one"; do
    read -r name port body <<< "$target"
    scheme=http
    [[ "$name" == *-tls ]] && scheme=https
    read -r rps p50 p99 p999 n err < <(measure "$scheme://127.0.0.1:$port/infer" "$work/$body.json" 8)
    check_errors "$name" "$err"
    echo "$name $rps $p50 $p99 $p999" >> "$ceilings"
  done
done

# Dynamic batching: eta through XGBoost without and with it, same server, alternating.
batching="$work/batching.txt"
: > "$batching"
if [ "$smoke" = 1 ]; then batch_conns=(8); else batch_conns=(8 64); fi
for c in "${batch_conns[@]}"; do
  for _ in $(seq 1 "$reps"); do
    for m in eta_plain eta_batched; do
      read -r rps p50 p99 p999 n err < <(measure "http://127.0.0.1:$fl2_port/infer" "$work/${m}_one.json" "$c")
      check_errors "$m c=$c" "$err"
      echo "$c $m $rps $p50 $p99 $p999" >> "$batching"
    done
  done
done

# A 1,000-row request on one connection against its cost in process: parsing the same body and
# predicting the same rows (bench/predict_benchmark.cc, FORKLIFT_BENCH_BODY). Each repetition
# measures both, one after the other, so that the ratio compares the same moments of the machine.
large="$work/large.txt"
: > "$large"
min_time=1
[ "$smoke" = 1 ] && min_time=0.05
for rep in $(seq 1 "$reps"); do
  for target in "xgboost $fl_port eta_batch1000" "tree $fl2_port eta_tree_batch1000"; do
    read -r name port body <<< "$target"
    read -r rps p50 p99 p999 n err < <(measure "http://127.0.0.1:$port/infer" "$work/$body.json" 1)
    check_errors "1000 rows $name" "$err"
    echo "$rep $name $rps $p50 $p99 $p999" >> "$large"
  done
  FORKLIFT_BENCH_BODY="$work/eta_batch1000.json" "$build/predict_benchmark" \
    --benchmark_filter='BM_EtaParseInstances|BM_EtaPredictBody|BM_EtaPredict/1$|BM_EtaPredict/1000$' \
    --benchmark_min_time="$min_time" --benchmark_format=json \
    > "$work/inprocess.$rep.json" 2> "$work/inprocess.log"
done

/usr/bin/python3 - "$out" "$duration" "$reps" "$raw" "$ceilings" "$batching" "$large" \
  "$work" <<'PY'
import collections, datetime, json, statistics, subprocess, sys
out, duration, reps, raw, ceilings, batching, large, work = sys.argv[1:9]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
runs = collections.defaultdict(list)
order = []
for line in open(raw):
    c, body, stack, *nums = line.split()
    if (c, body) not in order:
        order.append((c, body))
    runs[(c, body, stack)].append([float(x) for x in nums])
med = lambda rows, i: statistics.median(r[i] for r in rows)
ms = lambda us: f"{us / 1000:.2f}"
lines = [
    f"Run {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {cpu}, {subprocess.getoutput('nproc')} cores; "
    f"wrk (1 thread) on the same machine; {duration} s per run, medians of {reps} alternating run(s).",
    "",
    "| connections | body | forklift req/s | p50 ms | p99 ms | p99.9 ms | Flask+Gunicorn req/s | p50 ms | p99 ms | p99.9 ms | throughput ratio |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for c, body in order:
    f, b = runs[(c, body, "forklift")], runs[(c, body, "flask")]
    label = "one row" if body == "one" else "100 rows"
    lines.append(f"| {c} | {label} | {med(f, 0):,.0f} | {ms(med(f, 1))} | {ms(med(f, 2))} | "
                 f"{ms(med(f, 3))} | {med(b, 0):,.0f} | {ms(med(b, 1))} | {ms(med(b, 2))} | "
                 f"{ms(med(b, 3))} | {med(f, 0) / med(b, 0):.1f}x |")
ceil = collections.defaultdict(list)
for line in open(ceilings):
    name, *nums = line.split()
    ceil[name].append([float(x) for x in nums])
nginx_rps = med(ceil["nginx"], 0)
lines += ["", "Ceilings at 8 connections, same client, alternating, medians:", "",
          "| server | model | req/s | p50 ms | p99 ms | p99.9 ms | of nginx's req/s |",
          "|---|---|---:|---:|---:|---:|---:|"]
labels = {"nginx": ("nginx, fixed 200", "none"), "forklift-noop": ("forklift", "no-op (constant)"),
          "forklift-tree": ("forklift", "eta, native tree runtime"),
          "forklift-tree-1t": ("forklift --threads 1", "eta, native tree runtime"),
          "forklift-noop-1t": ("forklift --threads 1", "no-op (constant)"),
          "forklift-tree-1t-tls": ("forklift --threads 1, HTTPS", "eta, native tree runtime"),
          "forklift-xgboost": ("forklift", "eta, xgboost runtime")}
flask8 = med(runs[("8", "one", "flask")], 0)
lines[-2] = lines[-2].replace("| of nginx's req/s |", "| of nginx's req/s | vs Flask+Gunicorn (8 conns) |")
lines[-1] = lines[-1] + "---:|"
for name in ("nginx", "forklift-noop", "forklift-noop-1t", "forklift-tree", "forklift-tree-1t",
             "forklift-tree-1t-tls", "forklift-xgboost"):
    r = ceil[name]
    if not r:
        continue
    server, model = labels[name]
    lines.append(f"| {server} | {model} | {med(r, 0):,.0f} | {ms(med(r, 1))} | {ms(med(r, 2))} | "
                 f"{ms(med(r, 3))} | {100 * med(r, 0) / nginx_rps:.0f}% | "
                 f"{med(r, 0) / flask8:.1f}x |")
batch = collections.defaultdict(list)
batch_conns = []
for line in open(batching):
    c, name, *nums = line.split()
    if c not in batch_conns:
        batch_conns.append(c)
    batch[(c, name)].append([float(x) for x in nums])
lines += ["", "Dynamic batching: eta through the xgboost runtime, one row per request, same server, "
          "alternating, medians:", "",
          "| connections | batching | req/s | p50 ms | p99 ms | p99.9 ms | gain |",
          "|---:|---|---:|---:|---:|---:|---:|"]
for c in batch_conns:
    plain, batched = batch[(c, "eta_plain")], batch[(c, "eta_batched")]
    for label, r in (("off", plain), ("max_batch_size 64, delay 0", batched)):
        gain = f"{med(r, 0) / med(plain, 0):.2f}x"
        lines.append(f"| {c} | {label} | {med(r, 0):,.0f} | {ms(med(r, 1))} | {ms(med(r, 2))} | "
                     f"{ms(med(r, 3))} | {gain} |")
# Per repetition: the HTTP p50s and the in-process times measured right after them.
inproc_runs = []
for rep in range(1, int(reps) + 1):
    times = {}
    for b in json.load(open(f"{work}/inprocess.{rep}.json"))["benchmarks"]:
        if not b.get("error_occurred"):
            times[b["name"]] = b["real_time"] / 1e3  # µs
    inproc_runs.append(times)
big = collections.defaultdict(dict)
for line in open(large):
    rep, name, *nums = line.split()
    big[name][int(rep)] = [float(x) for x in nums]
inproc = {k: statistics.median(t[k] for t in inproc_runs if k in t)
          for k in {k for t in inproc_runs for k in t}}
parse_us = inproc.get("BM_EtaParseInstances", float("nan"))
lines += ["", "A 1,000-row request on one connection against its cost in process (the same body "
          "parsed, the same rows predicted, measured right after the HTTP runs; medians, and the "
          "median of the per-repetition ratios):", "",
          "| runtime | HTTP p50 ms | in process: parse ms | predict ms | parse + predict ms | "
          "HTTP / in process |", "|---|---:|---:|---:|---:|---:|"]
for name, arg in (("xgboost", 0), ("tree", 1)):
    key = f"BM_EtaPredictBody/{arg}"
    predict_us = inproc.get(key, float("nan"))
    p50 = statistics.median(v[1] for v in big[name].values())
    ratios = [big[name][rep][1] / (t["BM_EtaParseInstances"] + t[key])
              for rep, t in enumerate(inproc_runs, 1) if key in t and rep in big[name]]
    lines.append(f"| {name} | {ms(p50)} | {ms(parse_us)} | {ms(predict_us)} | "
                 f"{ms(parse_us + predict_us)} | {statistics.median(ratios):.2f}x |")
one = inproc.get("BM_EtaPredict/1", float("nan"))
thousand = inproc.get("BM_EtaPredict/1000", float("nan"))
lines += ["", f"XGBoost C API in process (forklift's xgboost runtime, random rows): one row "
          f"{one:.1f} µs ({1e6 / one:,.0f} predictions/s); 1,000 rows {thousand / 1000:.2f} ms "
          f"({1e9 / thousand:,.0f} rows/s)."]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
# Memory and start-up with 1, 10 and 100 loaded versions (bench/memory.py), after the load runs.
memory_args=("$build" --out "$work/memory.md")
[ "$smoke" = 1 ] && memory_args+=(--smoke)
/usr/bin/python3 "$here/memory.py" "${memory_args[@]}" > /dev/null
{ echo; echo "Memory and start-up, one server per count:"; echo; cat "$work/memory.md"; } >> "$out"
cat "$work/memory.md"
/usr/bin/python3 "$here/plot.py" "$raw" "$ceilings" "${out%.md}.png"
echo "bench: table written to $out (raw runs in $raw)"
