"""The cost of observing: the whole stack with metrics off, on, and on in multiprocess mode, beside bare Starlette.

    python -m benchmarks.metrics [--rounds 5] [--seconds 10] [--compare REV]

`default` is `install()` as shipped (no metrics; the trace annotator on, since
opentelemetry-api is importable here, with no SDK: spans do not record); `tracing off` is
`install(tracing=False)`; `metrics` adds `PrometheusMetrics()` (one process),
`metrics, multiprocess` the same with `PROMETHEUS_MULTIPROC_DIR` set (the mode several
workers need: each update writes a memory-mapped file). `--compare REV` also serves the
`default` rows from commit REV in the same rounds (what the hooks cost when nothing listens).
Writes its table into benchmarks/README.md.
"""

from pathlib import Path

from benchmarks.harness import Case, main

HERE = Path(__file__).parent
GET, POST = "bare Starlette GET", "bare Starlette POST"
CASES = {
    GET: Case("bare"),
    "auth + rate limit GET, default": Case("stack_redis", "/", HERE / "stack_get.lua"),
    "auth + rate limit GET, tracing off": Case("stack_redis_notrace", "/", HERE / "stack_get.lua", compare=False),
    "auth + rate limit GET, metrics": Case("stack_redis_metrics", "/", HERE / "stack_get.lua", compare=False),
    "auth + rate limit GET, metrics, multiprocess": Case(
        "stack_redis_metrics_mp", "/", HERE / "stack_get.lua", compare=False
    ),
    POST: Case("bare", "/objects", HERE / "post.lua", baseline=POST),
    "first-time POST, default": Case("stack_redis", "/objects", HERE / "stack_first.lua", baseline=POST),
    "first-time POST, metrics, multiprocess": Case(
        "stack_redis_metrics_mp", "/objects", HERE / "stack_first.lua", baseline=POST, compare=False
    ),
}

if __name__ == "__main__":
    main(
        CASES,
        "metrics",
        "benchmarks.metrics",
        "`GET /` and first-time `POST /objects` through auth + rate limiting (+ idempotency) on one Redis",
    )
