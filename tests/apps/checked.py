"""An app installed with `check_stores=True` on the Redis named by `CHECKED_URL` (for uvicorn): rate
limiting and idempotency, or with `CHECKED_STAGES=counters` rate and concurrency limits only."""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import ConcurrencyLimit, ErrorKit, Idempotency, RateLimiter, RedisBackend


async def create(request: Request) -> Response:
    return JSONResponse({"ok": True}, status_code=201)


store = RedisBackend(os.environ["CHECKED_URL"])
app = Starlette(routes=[Route("/widgets", create, methods=["POST"])])
if os.environ.get("CHECKED_STAGES") == "counters":
    ErrorKit().install(
        app, rate_limit=RateLimiter(store), concurrency=ConcurrencyLimit(store, limit=5), check_stores=True
    )
else:
    ErrorKit().install(app, rate_limit=RateLimiter(store), idempotency=Idempotency(store), check_stores=True)
