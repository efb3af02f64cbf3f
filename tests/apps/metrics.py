"""An app for the metrics tests: `build()` in process, or `app` under uvicorn (configured by env).

Keys in memory (so a stalled Redis fails only the limiter and idempotency); counters and
idempotency records in `backend`; `/metrics` public and never counted.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    Backend,
    ErrorKit,
    Idempotency,
    Limit,
    MemoryBackend,
    Observer,
    PrometheusMetrics,
    RateLimiter,
    backend_from_env,
    catalogs,
    register_api_key,
)

KEYS = {"ek_one.workspace-one-1": "ws_1", "ek_two.workspace-two-2": "ws_2", "ek_three.workspace-three-3": "ws_3"}


async def work(request: Request) -> Response:
    return JSONResponse({"ok": True, "pid": os.getpid(), "body": (await request.body()).decode()})


async def boom(request: Request) -> Response:
    raise RuntimeError("crash")


def build(backend: Backend, metrics: Observer, *, limit: int = 5, **options: Any) -> Starlette:
    keys = MemoryBackend()
    kit = ErrorKit(catalog=catalogs.DETAIL_API)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.initialize()  # a new Redis: adopt it (idempotency refuses to guess otherwise)
        for token, workspace in KEYS.items():
            await register_api_key(keys, token, workspace_id=workspace)
        yield

    routes = [
        Route("/work", work, methods=["GET", "POST"]),
        Route("/shadowed", work),
        Route("/boom", boom),
    ]
    if isinstance(metrics, PrometheusMetrics):
        routes.append(Route("/metrics", metrics.app()))
    app = Starlette(lifespan=lifespan, routes=routes)
    limiter = RateLimiter(
        backend,
        limits=[Limit(limit, 3600)],
        routes={"POST /work": [Limit(100, 3600)], "/shadowed": [Limit(3, 3600, shadow=True)]},
        exempt=["/metrics"],
        on_failure="fail_open",
        **options,
    )
    kit.install(
        app,
        auth=APIKeyAuth(keys, public_paths=["/metrics"]),
        rate_limit=limiter,
        idempotency=Idempotency(backend),
        metrics=metrics,
    )
    return app


app = (
    build(backend_from_env(), PrometheusMetrics(flush_interval=float(os.environ.get("EK_METRICS_FLUSH", "1"))))
    if os.environ.get("EK_METRICS_APP")
    else None
)
