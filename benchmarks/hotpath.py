"""errorkit's hot path beside its floor: each errorkit case next to a hand-written lean equivalent (issue 25).

    python -m benchmarks.hotpath [--rounds 5] [--seconds 10]

The lean rows are the pure ASGI middlewares of benchmarks/lean.py, as short as the job allows,
with the same wire behaviour and the same Redis commands per request as the errorkit row below
them: bare Starlette plus one raw EVALSHA (the floor of any Redis-backed limiter), auth + rate
limit on a GET, and the whole stack's first-time and replayed POSTs. GET rows are ratios to bare
Starlette's GET, POST rows to its POST, all in the same rounds. Writes its table into
benchmarks/README.md.
"""

from pathlib import Path

from benchmarks.harness import Case, main

HERE = Path(__file__).parent
GET, POST = "bare Starlette GET", "bare Starlette POST"
CASES = {
    GET: Case("bare"),
    "bare + one raw EVALSHA (floor), GET": Case("raw_evalsha", baseline=GET),
    "lean middleware: auth + rate limit, GET": Case("lean_redis", "/", HERE / "stack_get.lua", baseline=GET),
    "errorkit, no stages, GET": Case("plain"),
    "errorkit rate limiting alone, GET": Case("errorkit_redis"),
    "errorkit auth + rate limit, GET": Case("stack_redis", "/", HERE / "stack_get.lua"),
    POST: Case("bare", "/objects", HERE / "post.lua", baseline=POST),
    "lean stack: first-time POST": Case("lean_stack_redis", "/objects", HERE / "stack_first.lua", baseline=POST),
    "errorkit stack: first-time POST": Case("stack_redis", "/objects", HERE / "stack_first.lua", baseline=POST),
    "lean stack: replay": Case("lean_stack_redis", "/objects", HERE / "stack_replay.lua", baseline=POST),
    "errorkit stack: replay": Case("stack_redis", "/objects", HERE / "stack_replay.lua", baseline=POST),
}

if __name__ == "__main__":
    main(
        CASES,
        "hotpath",
        "benchmarks.hotpath",
        "`GET /` (small JSON) and `POST /objects` (201 + `Location`) with an API key, every request admitted; "
        "lean rows: benchmarks/lean.py",
    )
