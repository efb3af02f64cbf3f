from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import ErrorKit, RateLimiter

store = errorkit.backend_from_env()


async def search(request: Request) -> JSONResponse:
    return JSONResponse({"results": []})


app = Starlette(routes=[Route("/search", search)])
ErrorKit().install(app, rate_limit=RateLimiter(store, limits="2/minute"))  # anonymous clients: by address
