-- POST /objects replaying one Idempotency-Key
wrk.method = "POST"
wrk.body = '{"name": "widget", "size": 3}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = "replay-me"
