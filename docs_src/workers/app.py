import asyncio
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import APIKeyAuth, ConcurrencyLimit, ErrorKit, RateLimiter, StoreError

store = errorkit.backend_from_env()
logger = logging.getLogger("myapp")


async def health(request: Request) -> JSONResponse:
    """Liveness: the process answers. Never asks Redis: a Redis outage must not restart every pod."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: Redis answers and runs errorkit's scripts, within the store's own timeouts."""
    try:
        await store.check(marker=False)
    except StoreError as exc:
        logger.warning("not ready: %s", exc)  # the reason names the URL (redacted): keep it in the log
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def create_export(request: Request) -> JSONResponse:
    await asyncio.sleep(5)  # a long export
    return JSONResponse({"id": "exp_1"}, status_code=201)


app = Starlette(
    routes=[Route("/health", health), Route("/ready", ready), Route("/exports", create_export, methods=["POST"])]
)
ErrorKit(format="envelope").install(
    app,
    auth=APIKeyAuth(store, public_paths=["/health", "/ready"]),
    rate_limit=RateLimiter(store, exempt=["/health", "/ready"]),
    concurrency=ConcurrencyLimit(store, routes={"POST /exports": 2}),
    check_stores=True,
)
