"""The whole stack: auth + rate limiting (GET) and + idempotency (POST) on one Redis, beside each part.

    python -m benchmarks.stack [--rounds 5] [--seconds 10]

GET rows are ratios to bare Starlette's GET, POST rows to its POST, all in the same rounds;
the `gc.freeze()` rows run every server (bare Starlette too) with the objects of start-up frozen
out of the garbage collector's scans; the `1 connection` rows (wrk -c1) give the unloaded latency. Writes its table into
benchmarks/README.md.
"""

from pathlib import Path

from benchmarks.harness import Case, main

HERE = Path(__file__).parent
GET, POST = "bare Starlette GET", "bare Starlette POST"
CASES = {
    GET: Case("bare"),
    "errorkit, no stages, GET": Case("plain"),
    "rate limiting alone, Redis, GET": Case("errorkit_redis"),
    "auth + rate limit, Redis, GET": Case("stack_redis", "/", HERE / "stack_get.lua"),
    "auth + rate limit, Redis Cluster, GET": Case("stack_redis", "/", HERE / "stack_get.lua", cluster=True),
    POST: Case("bare", "/objects", HERE / "post.lua", baseline=POST),
    "auth + rate limit + idempotency, first-time POST": Case(
        "stack_redis", "/objects", HERE / "stack_first.lua", baseline=POST
    ),
    "auth + rate limit + idempotency, replay": Case(
        "stack_redis", "/objects", HERE / "stack_replay.lua", baseline=POST
    ),
    "auth + rate limit + idempotency, first-time POST, Cluster": Case(
        "stack_redis", "/objects", HERE / "stack_first.lua", cluster=True, baseline=POST
    ),
    "bare Starlette GET, gc.freeze()": Case("bare", gc_freeze=True, baseline="bare Starlette GET, gc.freeze()"),
    "auth + rate limit, Redis, GET, gc.freeze()": Case(
        "stack_redis", "/", HERE / "stack_get.lua", gc_freeze=True, baseline="bare Starlette GET, gc.freeze()"
    ),
    "bare Starlette POST, gc.freeze()": Case(
        "bare", "/objects", HERE / "post.lua", gc_freeze=True, baseline="bare Starlette POST, gc.freeze()"
    ),
    "auth + rate limit + idempotency, first-time POST, gc.freeze()": Case(
        "stack_redis", "/objects", HERE / "stack_first.lua", gc_freeze=True, baseline="bare Starlette POST, gc.freeze()"
    ),
    "bare Starlette GET, 1 connection": Case("bare", connections=1, baseline="bare Starlette GET, 1 connection"),
    "auth + rate limit, Redis, GET, 1 connection": Case(
        "stack_redis", "/", HERE / "stack_get.lua", connections=1, baseline="bare Starlette GET, 1 connection"
    ),
}

if __name__ == "__main__":
    main(
        CASES,
        "stack",
        "benchmarks.stack",
        "`GET /` (small JSON) and `POST /objects` (201 + `Location`) with an API key, every request admitted",
    )
