-- POST /objects with a fresh Idempotency-Key every request
wrk.method = "POST"
wrk.body = '{"name": "widget", "size": 3}'
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time())
local run = math.random(1, 1000000000)
local n = 0
request = function()
  n = n + 1
  wrk.headers["Idempotency-Key"] = "first-" .. run .. "-" .. n
  return wrk.format()
end
