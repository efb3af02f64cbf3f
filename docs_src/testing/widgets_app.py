from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import errorkit
from errorkit import APIKeyAuth, Backend, ErrorKit, Idempotency, Quotas, RateLimiter

kit = ErrorKit(format="envelope")
WidgetNotFound = kit.define(
    "widget_not_found",
    status=404,
    message="Widget {widget_id} does not exist",
    details={"widget_id": str},
)


async def create_widget(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"id": "w_1", "name": body["name"]}, status_code=201)


async def get_widget(request: Request) -> JSONResponse:
    raise WidgetNotFound(widget_id=request.path_params["widget_id"])


def plan_quotas(store: Backend) -> Quotas:
    return Quotas(store, limits={"widgets": {"free": 3}}, creates={"POST /widgets": "widgets"})


def create_app(store: Backend) -> Starlette:
    """The app on the store given: tests pass a fresh one, production the one REDIS_URL names."""
    app = Starlette(
        routes=[
            Route("/widgets", create_widget, methods=["POST"]),
            Route("/widgets/{widget_id}", get_widget),
        ]
    )
    kit.install(
        app,
        auth=APIKeyAuth(store),
        rate_limit=RateLimiter(store, limits="5/minute"),
        idempotency=Idempotency(store),
        quotas=plan_quotas(store),
        check_stores=True,
    )
    return app


app = create_app(errorkit.backend_from_env())  # uvicorn widgets_app:app
