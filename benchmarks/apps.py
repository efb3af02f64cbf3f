"""The servers the benchmarks compare, chosen by BENCH_APP (run under uvicorn, one worker).

- bare: plain Starlette, the baseline every ratio is taken against;
- errorkit_redis / errorkit_memory: `kit.install()` with rate limiting on that backend
  (the request-id layer, the gateway and the catch-all: the product as used);
- naive_redis: the reference design, one pure ASGI middleware doing one redis-py
  EVALSHA per request (a fixed-window INCR script);
- idem_redis / idem_memory: `kit.install()` with the idempotency cache (POST routes);
- plain: `kit.install()` with no stages (the request-id layer and the catch-all only);
- stack_redis: the whole stack on one Redis: API keys (`TOKEN`), rate limiting and
  idempotency, as a gateway runs it;
- routes_redis / declared_redis: rate limiting with the limit of `GET /` given as a
  `routes=` entry, or declared beside the route by `errorkit.limit(...)` (they must cost
  the same per request);
- raw_evalsha / lean_redis / lean_stack_redis: bare Starlette behind the hand-written
  middlewares of benchmarks/lean.py (one EVALSHA; auth + rate limit; the whole stack), the
  floor errorkit's own work is measured against.

Modifiers after the name: `_metrics` installs `PrometheusMetrics` (`_metrics_mp`: in
prometheus-client's multiprocess mode, as under several workers), `_notrace` installs with
`tracing=False` (the default annotates OpenTelemetry spans when opentelemetry-api is
importable, as it is here); `stack_redis_metrics_mp_notrace` combines them.

BENCH_GC=freeze calls `gc.freeze()` once the app is built (the production setting README.md
recommends), for any of them.
"""

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Idempotency,
    Limit,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
    limit,
    register_api_key,
)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BIG = [Limit(1_000_000_000, 3600)]  # every request is admitted: we measure the decision, not refusals
TOKEN = "ek_bench.bench-secret-1"  # the key the stack_* wrk scripts send


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


async def create(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"id": "obj_1", "size": len(body)}, status_code=201, headers={"Location": "/objects/obj_1"})


def base(lifespan: Lifespan[Starlette] | None = None, *, declared: bool = False) -> Starlette:
    home = limit(*BIG)(declared_hello) if declared else hello
    return Starlette(routes=[Route("/", home), Route("/objects", create, methods=["POST"])], lifespan=lifespan)


async def declared_hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


def marking(backend: MemoryBackend | RedisBackend, *, with_key: bool = False) -> Lifespan[Starlette]:
    """Start-up marks the store as errorkit's (each case starts from a flushed Redis), and registers `TOKEN`."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if hasattr(backend, "initialize"):  # (older trees served by benchmarks.latency have none)
            await backend.initialize()
        if with_key:
            await register_api_key(backend, TOKEN, workspace_id="ws_bench")
        yield

    return lifespan


NAIVE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""


class NaiveRateLimit:
    """One redis-py EVALSHA per request: the reference design."""

    def __init__(self, app: ASGIApp) -> None:
        from redis.asyncio import Redis as RedisPy  # (the `bench` group's: the other variants run without it)

        self.app = app
        self.redis = RedisPy.from_url(REDIS_URL)
        self.sha: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.sha is None:
            self.sha = await self.redis.script_load(NAIVE_SCRIPT)
        count = await self.redis.evalsha(self.sha, 1, f"naive:{{{scope['client'][0]}}}", 1_000_000_000, 3600)
        headers = [
            (b"x-ratelimit-limit", b"1000000000"),
            (b"x-ratelimit-remaining", str(1_000_000_000 - count).encode()),
        ]

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, sender)


def build(variant: str) -> ASGIApp:
    options: dict[str, Any] = {}
    if variant.endswith("_notrace"):
        variant, options["tracing"] = variant.removesuffix("_notrace"), False
    if variant.endswith("_metrics_mp"):  # the directory must be named before prometheus-client is imported
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="errorkit-bench-metrics-")
        variant = variant.removesuffix("_mp")
    if variant.endswith("_metrics"):
        from errorkit import PrometheusMetrics

        variant, options["metrics"] = variant.removesuffix("_metrics"), PrometheusMetrics()
    if variant == "bare":
        return base()
    if variant == "naive_redis":
        app = base()
        app.add_middleware(NaiveRateLimit)
        return app
    if variant == "raw_evalsha":  # (imported here: benchmarks.latency serves this file from trees without lean.py)
        from benchmarks.lean import RawEvalsha

        app = base()
        app.add_middleware(RawEvalsha, url=REDIS_URL, limit=BIG[0].limit, period=BIG[0].period)
        return app
    if variant in ("lean_redis", "lean_stack_redis"):
        from benchmarks.lean import LeanRateLimit, LeanStack

        app = base()
        lean = LeanStack if variant == "lean_stack_redis" else LeanRateLimit
        app.add_middleware(lean, url=REDIS_URL, keys={TOKEN: "ws_bench"}, limit=BIG[0].limit, period=BIG[0].period)
        return app
    kit = ErrorKit()
    if variant == "plain":
        app = base()
        kit.install(app)
        return app
    backend = RedisBackend(REDIS_URL) if variant.endswith("_redis") else MemoryBackend()
    app = base(marking(backend, with_key=variant.startswith("stack_")), declared=variant.startswith("declared_"))
    if variant.startswith("stack_"):
        limiter = RateLimiter(backend, limits=BIG)
        kit.install(app, auth=APIKeyAuth(backend), rate_limit=limiter, idempotency=Idempotency(backend), **options)
    elif variant.startswith("errorkit_"):
        kit.install(app, rate_limit=RateLimiter(backend, limits=BIG), **options)
    elif variant.startswith("idem_"):
        kit.install(app, idempotency=Idempotency(backend))
    elif variant.startswith("routes_"):
        kit.install(app, rate_limit=RateLimiter(backend, routes={"GET /": BIG}), **options)
    elif variant.startswith("declared_"):
        kit.install(app, rate_limit=RateLimiter(backend), **options)
    else:
        raise ValueError(f"unknown BENCH_APP {variant!r}")
    return app


app = build(os.environ.get("BENCH_APP", "bare"))
if os.environ.get("BENCH_GC") == "freeze":  # the objects of start-up are left out of the collector's scans
    import gc

    gc.freeze()
