-- wrk script: POSTs the body in $BENCH_BODY_FILE with a new X-Request-Id per request ("r1",
-- "r2", ... per wrk thread), so predictions can be labeled later; prints a JSON summary.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "r"))
local body = f:read("*a")
f:close()
local counter = 0

function request()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["X-Request-Id"] = "r" .. counter}, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors))
end
