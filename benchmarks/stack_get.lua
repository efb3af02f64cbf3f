-- GET / with the benchmark's API key (the whole stack: auth, rate limit)
wrk.headers["X-API-Key"] = "ek_bench.bench-secret-1"
