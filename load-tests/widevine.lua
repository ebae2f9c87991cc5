-- wrk script: POST /widevine/license with pre-made challenges (binary SignedMessage bodies)
-- and a DIFFERENT entitlement token on every request.
-- Environment: TOKENS (file, one JWT per line), CHALLENGES (directory), COUNT (files in it).

local tokens = {}
local bodies = {}
local n, m, i = 0, 0, 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    n = n + 1
    tokens[n] = line
  end
  local dir = os.getenv("CHALLENGES")
  for k = 0, tonumber(os.getenv("COUNT")) - 1 do
    local f = assert(io.open(dir .. "/challenge-" .. k .. ".bin", "rb"))
    m = m + 1
    bodies[m] = f:read("*a")
    f:close()
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  wrk.headers["Authorization"] = "Bearer " .. tokens[i]
  return wrk.format(nil, nil, nil, bodies[(i % m) + 1])
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
