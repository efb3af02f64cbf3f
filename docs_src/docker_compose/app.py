from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import APIKeyAuth, ErrorKit, Idempotency, RateLimiter

store = errorkit.backend_from_env()  # REDIS_URL=redis://redis:6379/0, set by compose.yaml


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def create_order(request: Request) -> JSONResponse:
    return JSONResponse({"id": "o_1"}, status_code=201)


app = Starlette(routes=[Route("/health", health), Route("/orders", create_order, methods=["POST"])])
ErrorKit(format="envelope").install(
    app,
    auth=APIKeyAuth(store),  # /health stays public
    rate_limit=RateLimiter(store, limits="100/minute"),
    idempotency=Idempotency(store),
    check_stores=True,
)
