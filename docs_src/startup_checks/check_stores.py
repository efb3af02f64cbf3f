from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from errorkit import ErrorKit, Idempotency, RateLimiter, backend_from_env


async def create_widget(request: Request) -> JSONResponse:
    return JSONResponse({"id": "w_1"}, status_code=201)


store = backend_from_env()  # REDIS_URL
app = Starlette(routes=[Route("/widgets", create_widget, methods=["POST"])])
ErrorKit().install(app, rate_limit=RateLimiter(store), idempotency=Idempotency(store), check_stores=True)
