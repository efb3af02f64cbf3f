"""Rate-limit benchmark: bare Starlette vs errorkit (Redis, memory) vs the naive one-EVALSHA design.

    python -m benchmarks.ratelimit [--rounds 5] [--seconds 10]

Writes its table into benchmarks/README.md.
"""

from benchmarks.harness import Case, main

CASES = {
    "bare Starlette": Case("bare"),
    "errorkit rate limiting, Redis": Case("errorkit_redis"),
    "errorkit rate limiting, Redis Cluster (3 primaries)": Case("errorkit_redis", cluster=True),
    "errorkit rate limiting, in-memory": Case("errorkit_memory"),
    "naive: one redis-py EVALSHA per request": Case("naive_redis"),
}

if __name__ == "__main__":
    main(CASES, "ratelimit", "benchmarks.ratelimit", "`GET /` returning a small JSON body, every request admitted")
