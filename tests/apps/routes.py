"""One set of routes built on plain Starlette or on FastAPI, for the handler tests."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Header, Path, Query
from fastapi import HTTPException as FastAPIHTTPException
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit import ErrorKit
from tests.support.samples import sample_error

SECRET = "s3cr3t-do-not-leak"


class TopicIn(BaseModel):
    name: str = Field(min_length=1)
    weight: int = 1


class AddHeader:
    """A header-adding middleware, like a rate limiter's X-RateLimit-* headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-ratelimit-limit", b"100")]
            await send(message)

        await self.app(scope, receive, add)


class CrashingMiddleware:
    """Fails on /middleware-crash, before the app runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/middleware-crash":
            raise RuntimeError(SECRET)
        await self.app(scope, receive, send)


async def _fail_before_first_chunk() -> AsyncIterator[bytes]:
    raise RuntimeError(SECRET)
    yield b""  # pragma: no cover


async def _fail_after_first_chunk() -> AsyncIterator[bytes]:
    yield b'{"partial": '
    raise RuntimeError(SECRET)


def _http_exception(status: int) -> HTTPException:
    headers = {"WWW-Authenticate": 'Bearer realm="api"'} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "7"}
    if status == 405:
        headers = {"Allow": "GET, POST"}
    return HTTPException(status_code=status, headers=headers)


def middleware() -> list[Middleware]:
    return [
        Middleware(CORSMiddleware, allow_origins=["*"]),
        Middleware(AddHeader),
        Middleware(CrashingMiddleware),
    ]


def build_app(framework: str, kit: ErrorKit, *, debug: bool = False) -> Starlette:
    """The same routes on plain Starlette or FastAPI, with CORS and a header-adding middleware."""
    if framework == "fastapi":
        return _fastapi_app(kit, debug)
    return _starlette_app(kit, debug)


def _starlette_app(kit: ErrorKit, debug: bool) -> Starlette:
    async def raise_code(request: Request) -> Response:
        code = request.path_params["code"]
        raise sample_error(kit, code)

    async def http_status(request: Request) -> Response:
        raise _http_exception(request.path_params["status"])

    async def topics(request: Request) -> Response:
        topic = TopicIn.model_validate(await request.json())
        return JSONResponse(topic.model_dump(), status_code=201)

    async def boom(request: Request) -> Response:
        raise RuntimeError(SECRET)

    async def stream_early(request: Request) -> Response:
        return StreamingResponse(_fail_before_first_chunk())

    async def stream_late(request: Request) -> Response:
        return StreamingResponse(_fail_after_first_chunk(), media_type="application/json")

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(
        debug=debug,
        routes=[
            Route("/raise/{code}", raise_code),
            Route("/http/{status:int}", http_status),
            Route("/topics", topics, methods=["POST"]),
            Route("/boom", boom),
            Route("/stream-early", stream_early),
            Route("/stream-late", stream_late),
            Route("/ok", ok),
        ],
        middleware=middleware(),
    )
    kit.install(app)
    return app


def _fastapi_app(kit: ErrorKit, debug: bool) -> FastAPI:
    app = FastAPI(debug=debug, middleware=middleware())

    @app.get("/raise/{code}")
    async def raise_code(code: str) -> None:
        raise sample_error(kit, code)

    @app.get("/http/{status}")
    async def http_status(status: int) -> None:
        exc = _http_exception(status)
        raise FastAPIHTTPException(status_code=exc.status_code, headers=exc.headers)

    @app.post("/topics", status_code=201)
    async def topics(topic: TopicIn) -> TopicIn:
        return topic

    @app.get("/items/{item_id}")
    async def items(
        item_id: int = Path(),
        limit: int = Query(10, le=100),
        x_tenant: str = Header(min_length=3),
    ) -> dict[str, Any]:
        return {"item_id": item_id, "limit": limit}

    @app.get("/manual-validation")
    async def manual_validation() -> None:
        TopicIn.model_validate({"name": ""})

    @app.get("/bad-response")
    async def bad_response() -> TopicIn:
        return {"nonsense": True}  # type: ignore[return-value]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET)

    @app.get("/stream-early")
    async def stream_early() -> StreamingResponse:
        return StreamingResponse(_fail_before_first_chunk())

    @app.get("/stream-late")
    async def stream_late() -> StreamingResponse:
        return StreamingResponse(_fail_after_first_chunk(), media_type="application/json")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    kit.install(app)
    return app
