"""An app for the rate-limit tests: `build()` in process, or `app` under uvicorn (configured by env)."""

import os
from collections.abc import AsyncIterator, Sequence
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
    Limit,
    MemoryBackend,
    RateLimiter,
    backend_from_env,
    catalogs,
    register_api_key,
)

KEYS = {
    "ek_one.workspace-one-1": "ws_1",
    "ek_two.workspace-two-2": "ws_2",
    "ek_three.workspace-three-3": "ws_3",
}


async def work(request: Request) -> Response:
    return JSONResponse({"ok": True, "workspace": request.user.workspace_id, "pid": os.getpid()})


async def campaign(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["campaign_id"]})


async def boom(request: Request) -> Response:
    raise RuntimeError("crash")


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True, "pid": os.getpid()})


def build(
    backend: Backend,
    *,
    document: str = "detail_api",
    limits: Sequence[Limit] = (Limit(5, 3600),),
    limiter_backend: Backend | None = None,
    **options: Any,
) -> Starlette:
    """Keys live in `backend`; counters in `limiter_backend` (default: the same one)."""
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API if document == "envelope_api" else catalogs.DETAIL_API)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for token, workspace in KEYS.items():
            await register_api_key(
                backend, token, workspace_id=workspace, plan="growth" if workspace == "ws_3" else None
            )
        yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/work", work, methods=["GET", "POST"]),
            Route("/campaigns/{campaign_id}", campaign),
            Route("/boom", boom),
            Route("/health", health),
        ],
    )
    auth = APIKeyAuth(backend, public_paths=["/health"])
    limiter = RateLimiter(limiter_backend or backend, limits=limits, **options)
    kit.install(app, auth=auth, rate_limit=limiter)
    return app


def _from_env() -> Starlette:
    limit, period = int(os.environ.get("EK_LIMIT", "50")), float(os.environ.get("EK_PERIOD", "3600"))
    counters = backend_from_env()
    keys = MemoryBackend() if os.environ.get("EK_KEY_STORE") == "memory" else counters
    return build(
        keys,
        limiter_backend=counters,
        document=os.environ.get("EK_DOCUMENT", "detail_api"),
        limits=[Limit(limit, period)],
        algorithm=os.environ.get("EK_ALGORITHM", "gcra"),  # type: ignore[arg-type]
        on_failure=os.environ.get("EK_ON_FAILURE", "fail_open"),  # type: ignore[arg-type]
    )


app = _from_env() if os.environ.get("EK_RATELIMIT_APP") else None
