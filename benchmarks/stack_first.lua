-- POST /objects with the benchmark's API key and a fresh Idempotency-Key every request
wrk.method = "POST"
wrk.body = '{"name": "widget", "size": 3}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "ek_bench.bench-secret-1"
local f = io.open("/dev/urandom", "rb")  -- a fresh key space per wrk run (warm-up and run may share a second)
local b = f:read(4)
f:close()
local run = b:byte(1) * 16777216 + b:byte(2) * 65536 + b:byte(3) * 256 + b:byte(4)
local n = 0
request = function()
  n = n + 1
  wrk.headers["Idempotency-Key"] = "first-" .. run .. "-" .. n
  return wrk.format()
end
