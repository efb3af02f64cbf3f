from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import ErrorKit, FailurePolicy, Idempotency, RateLimiter

store = errorkit.backend_from_env()
closed = FailurePolicy("fail_closed", retry_after=2, log_interval=10.0)  # one counter, one log line


async def create_payment(request: Request) -> JSONResponse:
    return JSONResponse({"id": "pay_1"}, status_code=201)


app = Starlette(routes=[Route("/payments", create_payment, methods=["POST"])])
ErrorKit(format="envelope").install(
    app,
    rate_limit=RateLimiter(store, on_failure="fail_open"),  # Redis away: requests pass uncounted
    idempotency=Idempotency(store, on_failure=closed),  # Redis away: 503, a retry must not run twice
)
