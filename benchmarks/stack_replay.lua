-- POST /objects with the benchmark's API key, replaying one Idempotency-Key
wrk.method = "POST"
wrk.body = '{"name": "widget", "size": 3}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "ek_bench.bench-secret-1"
wrk.headers["Idempotency-Key"] = "replay-me"
