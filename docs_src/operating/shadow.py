from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import ErrorKit, Limit, RateLimiter

store = errorkit.backend_from_env()


async def search(request: Request) -> JSONResponse:
    return JSONResponse({"results": []})


app = Starlette(routes=[Route("/search", search)])
limiter = RateLimiter(
    store,
    limits=[Limit(100, 60), Limit(3, 60, shadow=True)],  # 100/minute enforced; 3/minute only counted
    shadow_headers=True,  # the shadow limit shows in X-RateLimit-*, so clients see it coming
)
ErrorKit().install(app, rate_limit=limiter)
