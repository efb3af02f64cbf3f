from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import APIKeyAuth, ErrorKit, PrometheusMetrics, RateLimiter

store = errorkit.backend_from_env()
metrics = PrometheusMetrics()  # the default registry, or PrometheusMetrics(registry)


async def search(request: Request) -> JSONResponse:
    return JSONResponse({"results": []})


app = Starlette(routes=[Route("/search", search)])
ErrorKit().install(
    app,
    auth=APIKeyAuth(store, public_paths=["/health", "/search", "/metrics"]),
    rate_limit=RateLimiter(store, limits="3/minute", exempt=["/health", "/metrics"]),
    metrics=metrics,
)
app.add_route("/metrics", metrics.app())  # keep it on a port clients cannot reach in production
