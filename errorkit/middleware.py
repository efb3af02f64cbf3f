"""errorkit's two pure ASGI layers, placed by `ErrorKit.install()`.

```
ServerErrorMiddleware (Starlette's)
  RequestIdMiddleware    outermost user middleware: assigns the request id, adds X-Request-ID
                         to every response, formats crashes of the middleware inside it
    ...your middleware (CORS, rate-limit headers, ...)...
      CatchAllMiddleware innermost: turns crashes of the app into formatted 500s *inside*
                         your middleware, so the headers they add are on the 500 too
        ExceptionMiddleware (Starlette's, with the kit's handlers) -> router
```
Starlette sends handlers keyed `Exception`/500 to `ServerErrorMiddleware`, outside all user
middleware, which loses their headers; the catch-all answers before that can happen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit.request_id import HEADER, assign_request_id

if TYPE_CHECKING:
    from errorkit.handlers import ExceptionHandler
    from errorkit.kit import ErrorKit


class RequestIdMiddleware:
    """Gives each request an id, returns it on every response, formats escaped crashes."""

    def __init__(self, app: ASGIApp, kit: ErrorKit) -> None:
        self.app = app
        self.handler = kit.handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (HEADER, assign_request_id(scope).encode("ascii"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # a middleware inside this one failed
            await _answer_crash(self.handler, exc, started, scope, receive, send_with_id)


class CatchAllMiddleware:
    """Formats crashes of the app inside the user's middleware, including streaming ones.

    The response start is held until the first body message, so a streaming response
    that fails before its first chunk still becomes a proper 500.
    """

    def __init__(self, app: ASGIApp, kit: ErrorKit) -> None:
        self.app = app
        self.handler = kit.handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        started = False

        async def holding_send(message: Message) -> None:
            nonlocal held, started
            if message["type"] == "http.response.start" and not started:
                held = message
                return
            if held is not None:
                start, held, started = held, None, True
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, holding_send)
        except Exception as exc:
            await _answer_crash(self.handler, exc, started, scope, receive, send)
            return
        if held is not None:  # a start with no body at all: pass it on as it came
            await send(held)


async def _answer_crash(
    handler: ExceptionHandler, exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send
) -> None:
    """Send the formatted error unless a response already began; log a 5xx once.

    A response that already started cannot be replaced: the server then ends the
    connection without completing it, so the client sees a broken body, never a
    truncated one that looks whole.
    """
    error = handler.error_for(exc, scope)
    if not started:
        await handler.response(error, scope)(scope, receive, send)
    if error.status >= 500 or started:
        handler.log_crash(exc, scope)
