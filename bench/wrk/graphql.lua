-- wrk script for GraphQL POSTs (used by bench/run.mjs).
--   BENCH_BODIES  comma-separated files, each one JSON request body; requests cycle through
--                 them (a mix), each thread starting at a different one
--   BENCH_TOKEN   optional bearer token (orgql)
-- Counts responses that are not HTTP 200 or whose body has "errors", and prints one line
--   BENCH_JSON {...}
-- with throughput and latency percentiles (microseconds) for run.mjs to parse.

local token = os.getenv("BENCH_TOKEN")
local bodies = {}
for path in string.gmatch(os.getenv("BENCH_BODIES") or "", "[^,]+") do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
assert(#bodies > 0, "BENCH_BODIES names no body file")

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local requests = {}
local n = 0
bad = 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", wrk.path, headers, body)
  end
  n = id or 0
end

function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + (thread:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"bad_responses":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, bad_total))
end
