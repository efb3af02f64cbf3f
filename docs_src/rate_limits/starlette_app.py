from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import APIKeyAuth, ErrorKit, RateLimiter


@errorkit.limit("5/minute")  # marks the endpoint; the limiter reads the mark when the app starts
async def start(request: Request) -> JSONResponse:
    return JSONResponse({"campaign_id": request.path_params["campaign_id"], "state": "starting"})


async def list_campaigns(request: Request) -> JSONResponse:
    return JSONResponse(["c_1", "c_2"])


store = errorkit.backend_from_env()
app = Starlette(
    routes=[
        Route("/campaigns", list_campaigns),
        Route("/campaigns/{campaign_id}/start", start, methods=["POST"]),
    ]
)
ErrorKit(format="envelope").install(
    app,
    auth=APIKeyAuth(store),
    rate_limit=RateLimiter(store, limits="10/second; 1000/hour"),
)
