"""errorkit's request stages in one pure ASGI layer: authenticate, rate-limit, then the app.

One layer instead of one per stage keeps per-request overhead small, and lets an
authentication failure be rate-limited (by client address) and carry rate-limit
headers like every other response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from errorkit.auth import APIKeyAuth
    from errorkit.kit import ErrorKit
    from errorkit.ratelimit import RateLimiter


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, kit: ErrorKit, auth: APIKeyAuth | None, limiter: RateLimiter | None) -> None:
        self.app = app
        self.handler = kit.handler
        self.auth = auth
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal, error = (None, None) if self.auth is None else await self.auth.resolve(scope)
        if self.limiter is not None:
            verdict = await self.limiter.check(scope, principal)
            if verdict is not None:
                error = verdict.error or error  # over the limit: say so before anything else
                send = _with_headers(send, verdict.headers)
        if error is not None:
            await self.handler.response(error, scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """`send` that adds `headers` to the response start."""
    if not headers:
        return send

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *headers]
        await send(message)

    return sender
