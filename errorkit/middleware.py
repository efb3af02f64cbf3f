"""errorkit's two pure ASGI layers, placed by `ErrorKit.install()`.

```
ServerErrorMiddleware (Starlette's)
  RequestIdMiddleware     outermost user middleware: assigns the request id, adds X-Request-ID
                          to every response, formats crashes of the middleware inside it
    ...your middleware (CORS, ...)...
      GatewayMiddleware   innermost: authentication, rate limiting, idempotency, then the app;
                          turns the app's crashes into formatted 500s *inside* your
                          middleware, so the headers they add are on the 500 too
        ExceptionMiddleware (Starlette's, with the kit's handlers) -> router
```
Starlette sends handlers keyed `Exception`/500 to `ServerErrorMiddleware`, outside all user
middleware, which loses their headers; the gateway answers before that can happen. Its
stages share one layer to keep per-request overhead small, and so that an authentication
failure is rate-limited (by client address) and carries rate-limit headers like any response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit.request_id import HEADER, assign_request_id

if TYPE_CHECKING:
    from errorkit.auth import APIKeyAuth
    from errorkit.idempotency import Idempotency
    from errorkit.kit import ErrorKit
    from errorkit.ratelimit import RateLimiter


def request_id_layer(app: ASGIApp, kit: ErrorKit) -> ASGIApp:
    """The outer layer `install()` places: a `RequestIdMiddleware`, unless no middleware
    sits between it and the gateway, which then does the same work in its own pass over
    the response (one layer and one send wrapper fewer per request)."""
    if isinstance(app, GatewayMiddleware):
        app.assigns_request_ids = True
        return app
    return RequestIdMiddleware(app, kit)


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
            await self.handler.answer_crash(exc, started, scope, receive, send_with_id)


class GatewayMiddleware:
    """errorkit's request stages and the catch-all, in one layer.

    The response start is held until the first body message, so a streaming response
    that fails before its first chunk still becomes a proper 500.
    """

    def __init__(
        self,
        app: ASGIApp,
        kit: ErrorKit,
        auth: APIKeyAuth | None = None,
        limiter: RateLimiter | None = None,
        idempotency: Idempotency | None = None,
    ) -> None:
        self.app = app
        self.handler = kit.handler
        self.auth = auth
        self.limiter = limiter
        self.idempotency = idempotency
        self.assigns_request_ids = False  # set by request_id_layer() when nothing sits in between

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra: list[tuple[bytes, bytes]] = []
        if self.assigns_request_ids:
            extra.append((HEADER, assign_request_id(scope).encode("ascii")))
        principal, error = (None, None) if self.auth is None else await self.auth.resolve(scope)
        if self.limiter is not None:
            verdict = await self.limiter.check(scope, principal)
            if verdict is not None:
                extra += verdict.headers
                error = verdict.error or error  # over the limit: say so before anything else
        held: Message | None = None
        started = False

        async def gateway_send(message: Message) -> None:
            nonlocal held, started
            if message["type"] == "http.response.start" and not started:
                if extra:
                    message["headers"] = [*message.get("headers", ()), *extra]
                held = message
                return
            if held is not None:
                start, held, started = held, None, True
                await send(start)
            await send(message)

        try:
            if error is not None:
                await self.handler.response(error, scope)(scope, receive, gateway_send)
            elif self.idempotency is not None:
                await self.idempotency(scope, receive, gateway_send, self.app, principal)
            else:
                await self.app(scope, receive, gateway_send)
        except Exception as exc:
            await self.handler.answer_crash(exc, started, scope, receive, gateway_send)
            return
        if held is not None:  # a start with no body at all: pass it on as it came
            await send(held)
