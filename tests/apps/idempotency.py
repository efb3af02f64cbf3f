"""An app for the idempotency tests: `build()` in process, or `app` under uvicorn (REDIS_URL)."""

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    Backend,
    ErrorKit,
    Idempotency,
    MemoryBackend,
    RedisBackend,
    backend_from_env,
    catalogs,
    register_api_key,
)

KEYS = {"ek_one.workspace-one-1": "ws_1", "ek_two.workspace-two-2": "ws_2"}


def build(backend: Backend, *, document: str = "envelope_api", **options: Any) -> tuple[Starlette, Counter[str]]:
    """The app, and the count of side effects per order reference (when not on Redis)."""
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API if document == "envelope_api" else catalogs.DETAIL_API)
    effects: Counter[str] = Counter()

    async def side_effect(ref: str) -> int:
        if isinstance(backend, RedisBackend):
            return int(await backend.redis.execute("INCR", f"effects:{ref}"))
        effects[ref] += 1
        return effects[ref]

    async def orders(request: Request) -> Response:
        body = await request.json()
        await asyncio.sleep(body.get("sleep", 0))
        if body.get("fail") == "crash":
            raise RuntimeError("handler crashed")
        if body.get("fail") == "500":
            return JSONResponse({"error": "try later"}, status_code=500)
        if body.get("fail") == "429":
            return JSONResponse({"error": "slow down"}, status_code=429)
        n = await side_effect(body["ref"])
        if body.get("big"):
            return JSONResponse({"blob": "x" * 5000, "n": n}, status_code=201)
        if body.get("stream"):
            return StreamingResponse(iter([b'{"part": 1, ', b'"n": %d}' % n]), media_type="application/json")
        status = 400 if body.get("fail") == "400" else 201
        response = JSONResponse({"order": n, "ref": body["ref"], "pid": os.getpid()}, status_code=status)
        response.headers["Location"] = f"/orders/{body['ref']}-{n}"
        response.headers["X-Order-Trace"] = f"trace-{n}"
        response.set_cookie("session", f"s{n}")
        return response

    async def effects_of(request: Request) -> Response:
        ref = request.path_params["ref"]
        if isinstance(backend, RedisBackend):
            return JSONResponse({"count": int(await backend.redis.execute("GET", f"effects:{ref}") or 0)})
        return JSONResponse({"count": effects[ref]})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for token, workspace in KEYS.items():
            await register_api_key(backend, token, workspace_id=workspace)
        yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/orders", orders, methods=["POST", "PATCH"]),
            Route("/payments", orders, methods=["POST"]),
            Route("/search", orders, methods=["POST"]),
            Route("/effects/{ref}", effects_of),
        ],
    )
    idempotency = Idempotency(backend, **options)
    kit.install(app, auth=APIKeyAuth(backend, public_paths=["/effects/*"]), idempotency=idempotency)
    return app, effects


def _from_env() -> Starlette:
    app, _ = build(backend_from_env(), lease=float(os.environ.get("EK_LEASE", "30")))
    return app


app = _from_env() if os.environ.get("EK_IDEMPOTENCY_APP") else None
__all__ = ["KEYS", "MemoryBackend", "app", "build"]
