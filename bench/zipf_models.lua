-- wrk script for bench/many_models.py: each request goes to one of N models, chosen with a Zipf
-- distribution (model k with weight 1/k^s), and asks for Server-Timing. Each thread writes one
-- line per answer to BENCH_OUT.<thread>: "<status> <queue ms> <total ms>"; a
-- queue time above zero means the request waited for its version to load (a cold start).
--   BENCH_BODIES  file with one JSON body per line, the most popular model first
--   BENCH_ZIPF_S  the exponent (default 1.1)
--   BENCH_OUT     prefix of the per-thread output files
local bodies = {}
local cdf = {}
local out = nil
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    bodies[#bodies + 1] = line
  end
  local s = tonumber(os.getenv("BENCH_ZIPF_S") or "1.1")
  local total = 0
  for k = 1, #bodies do
    total = total + 1 / (k ^ s)
    cdf[k] = total
  end
  for k = 1, #bodies do cdf[k] = cdf[k] / total end
  math.randomseed(1234 + id)
  out = io.open(os.getenv("BENCH_OUT") .. "." .. id, "w")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["x-forklift-server-timing"] = "1"
end

local function pick()
  local u = math.random()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  return wrk.format(nil, "/infer", nil, bodies[pick()])
end

function response(status, headers, body)
  local timing = headers["Server-Timing"] or headers["server-timing"] or ""
  local queue = tonumber(string.match(timing, "queue;dur=([%d%.]+)") or "0")
  local total = tonumber(string.match(timing, "total;dur=([%d%.]+)") or "0")
  out:write(status, " ", queue, " ", total, "\n")
end

function done(summary, latency, requests)
end
