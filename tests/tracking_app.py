"""An app for the key-tracking tests under uvicorn: auth on Redis (REDIS_URL); every response names its worker."""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit import APIKeyAuth, ErrorKit, RedisBackend, catalogs


class WorkerHeader:
    """Outermost: `X-Worker-Pid` on every response, refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-worker-pid", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, stamped)


async def whoami(request: Request) -> Response:
    return JSONResponse({"key_id": request.user.key_id})


def build() -> Starlette:
    app = Starlette(routes=[Route("/whoami", whoami)])
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(app, auth=APIKeyAuth(RedisBackend(os.environ["REDIS_URL"])))
    app.add_middleware(WorkerHeader)
    return app


app = build() if os.environ.get("REDIS_URL") else None
