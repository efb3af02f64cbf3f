"""An app for the quota and concurrency tests: `build()` in process, or `app` under uvicorn (configured by env).

Plan-limited resources (agents; knowledge bases and memory stores sharing one limit), a
creation that fails (or sleeps) on request, a deletion, and slow routes under a concurrency
limit. Creating an agent or an export asks for a permission the read-only key lacks.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    Backend,
    ConcurrencyLimit,
    ErrorKit,
    Idempotency,
    MemoryBackend,
    Observer,
    Quotas,
    StoreError,
    backend_from_env,
    catalogs,
    register_api_key,
)

KEYS = {  # token -> (workspace, plan)
    "ek_dev.developer-secret-1": ("ws_dev", "Developer"),
    "ek_dev2.developer-secret-2": ("ws_dev2", "Developer"),
    "ek_growth.growth-secret-1": ("ws_growth", "Growth"),
}
READ_ONLY = "ek_ro.read-only-secret-1"  # ws_dev's public key: may read, may not create
WRITE = frozenset({"agents:write", "exports:write"})
LIMITS = {
    "Agents": {"Developer": 3, "Growth": None},
    "Knowledge Bases + Memory Stores": {"Developer": 2, "Growth": None},
}
RESOURCES = {
    "agents": "Agents",
    "knowledge_bases": "Knowledge Bases + Memory Stores",
    "memory_stores": "Knowledge Bases + Memory Stores",
}


async def create(request: Request) -> Response:
    body = await request.body()
    if body == b"fail":
        raise HTTPException(400, "the handler refused this one")
    if body == b"crash":
        raise RuntimeError("the handler crashed")
    if body.startswith(b"sleep:"):  # a long creation, whose clean-up awaits too (a rollback, say)
        try:
            await asyncio.sleep(float(body[6:]))
        finally:
            await asyncio.sleep(0.05)
    if body == b"redirect":  # created, and the client sent on to it
        return RedirectResponse("/agents/a_new", status_code=303)
    if body == b"half":  # created, then the body fails half-way: the resource exists

        async def half() -> AsyncIterator[bytes]:
            yield b'{"created": '
            raise RuntimeError("the stream broke")

        return StreamingResponse(half(), status_code=201, media_type="application/json")
    return JSONResponse({"created": request.url.path, "pid": os.getpid()}, status_code=201)


async def delete(request: Request) -> Response:
    return Response(status_code=204)


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("sleep", "1")))
    return JSONResponse({"pid": os.getpid()})


async def health(request: Request) -> Response:
    return JSONResponse({"pid": os.getpid()})


def build(
    backend: Backend,
    *,
    concurrency: int = 3,
    lease: float = 30.0,
    idempotency_lease: float = 30.0,
    quota_lease: float = 30.0,
    metrics: Observer | None = None,
    **quota_options: Any,
) -> Starlette:
    keys = MemoryBackend()
    auth = APIKeyAuth(keys, public_paths=["/health"])
    quotas = Quotas(
        backend,
        limits=LIMITS,
        resources=RESOURCES,
        creates={
            "POST /agents": "agents",
            "POST /knowledge-bases": "knowledge_bases",
            "POST /memory-stores": "memory_stores",
        },
        deletes={"DELETE /agents/{agent_id}": "agents", "DELETE /knowledge-bases/{kb_id}": "knowledge_bases"},
        lease=quota_lease,
        **quota_options,
    )

    async def usage(request: Request) -> Response:
        workspace = request.user.workspace_id
        return JSONResponse({resource: await quotas.usage(workspace, resource) for resource in RESOURCES})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with contextlib.suppress(StoreError):  # (the tests of an unreachable store start it too)
            await backend.initialize()
        for token, (workspace, plan) in KEYS.items():
            await register_api_key(keys, token, workspace_id=workspace, plan=plan, scopes=WRITE)
        await register_api_key(keys, READ_ONLY, workspace_id="ws_dev", plan="Developer", key_scope="PUBLIC")
        yield

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/agents", auth.requires("agents:write")(create), methods=["POST"]),
            Route("/exports", auth.requires("exports:write")(slow), methods=["POST"]),
            Route("/agents/{agent_id}", delete, methods=["DELETE"]),
            Route("/knowledge-bases", create, methods=["POST"]),
            Route("/knowledge-bases/{kb_id}", delete, methods=["DELETE"]),
            Route("/memory-stores", create, methods=["POST"]),
            Route("/usage", usage),
            Route("/slow", slow),
            Route("/quick", slow),
            Route("/health", health),
        ],
    )
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(
        app,
        auth=auth,
        idempotency=Idempotency(backend, lease=idempotency_lease),
        concurrency=ConcurrencyLimit(
            backend, routes={"/slow": concurrency, "/quick": concurrency, "/exports": concurrency}, lease=lease
        ),
        quotas=quotas,
        metrics=metrics,
    )
    return app


app = (
    build(
        backend_from_env(),
        concurrency=int(os.environ.get("EK_CONCURRENCY", "3")),
        lease=float(os.environ.get("EK_LEASE", "30")),
        idempotency_lease=float(os.environ.get("EK_IDEMPOTENCY_LEASE", "30")),
        quota_lease=float(os.environ.get("EK_QUOTA_LEASE", "30")),
    )
    if os.environ.get("EK_QUOTA_APP")
    else None
)
