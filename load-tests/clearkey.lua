-- wrk script: POST /clearkey/license with a DIFFERENT token on every request, as real viewers
-- send them (each token is a distinct JWT: its own jti, hence its own signature).
-- Environment: TOKENS (file, one JWT per line), KIDS (JSON array of base64url KIDs).

local tokens = {}
local n = 0
local i = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    n = n + 1
    tokens[n] = line
  end
  wrk.method = "POST"
  wrk.body = '{"kids":' .. os.getenv("KIDS") .. ',"type":"temporary"}'
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  i = i + 1
  if i > n then
    i = 1 -- the runner mints more tokens than a run sends, and reports it if not
  end
  wrk.headers["Authorization"] = "Bearer " .. tokens[i]
  return wrk.format(nil, nil)
end

-- No response() hook: it would make wrk hand every body to Lua and slow the generator.
-- Non-2xx answers are counted by wrk itself (summary.errors.status).

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
