from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from errorkit import ErrorKit, RateLimiter, backend_from_env


async def list_widgets(request: Request) -> JSONResponse:
    return JSONResponse([])


app = Starlette(
    routes=[
        Route("/widgets", list_widgets),
        Mount("/static", StaticFiles(directory="static", check_dir=False)),  # its routes cannot be seen
    ]
)
store = backend_from_env()
ErrorKit().install(app, rate_limit=RateLimiter(store, exempt=["/health", "/static/*"]))
