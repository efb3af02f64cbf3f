"""errorkit's two pure ASGI layers, placed by `ErrorKit.install()`.

```
ServerErrorMiddleware (Starlette's)
  RequestIdMiddleware     outermost user middleware: assigns the request id, adds X-Request-ID
                          to every response, formats crashes of the middleware inside it
    ...your middleware (CORS, ...)...
      GatewayMiddleware   innermost: the stages (authentication, rate limiting, idempotency),
                          then the app; turns refusals and crashes into formatted errors
                          *inside* your middleware, so the headers they add are on them too
        ExceptionMiddleware (Starlette's, with the kit's handlers) -> router
```
Starlette sends handlers keyed `Exception`/500 to `ServerErrorMiddleware`, outside all user
middleware, which loses their headers; the gateway answers before that can happen.

One request's way through the gateway: authentication puts the principal in
`scope["user"]`/`scope["auth"]` or refuses; rate limiting always runs (a failed
authentication is counted by client address), adds its headers to the response and may
refuse (its refusal wins: "slow down" comes before "bad key"); idempotency, only for a
request nobody refused, replays, refuses, or runs the app once, through the inner stages
(concurrency limits, then quotas), which hold a slot or a unit around the app itself and
refuse by raising `Refused` (so a refused first run is released, never stored). A refusal becomes the
app's registry error here and nowhere else; any exception a stage or the app raises
becomes a formatted 500 with the request id, logged once, and never reaches the server.
With `install(..., handlers=False)` only errorkit's own (`ErrorkitError`: refusals, the
app's `APIError`s, store errors) are answered here; any other passes on, to the app's own
500 handler.

The lifespan start-up runs the start-up checks first (`errorkit._app.startup`); the shutdown
first finishes what the stages still have to give back (`_Finishing`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit._app.handlers import ExceptionHandler
from errorkit._app.startup import Startup
from errorkit._common.background import finish
from errorkit._common.body import keep_body
from errorkit._common.exceptions import ErrorkitError
from errorkit._common.refusal import Refusal
from errorkit._common.request_id import HEADER, assign_request_id
from errorkit._observe.log_context import CURRENT_SCOPE
from errorkit._stages.one_trip import OneTrip

Header = tuple[bytes, bytes]
logger = logging.getLogger("errorkit.store")

#: The longest a shutdown waits for the stages' give-backs and confirmations (seconds).
SHUTDOWN_WAIT = 5.0


class Gate(Protocol):
    """A stage before the app: lets the request through (adding response headers to
    `headers` or state to the scope) or returns the refusal to answer with."""

    async def admit(self, scope: Scope, headers: list[Header]) -> Refusal | None: ...


class Wrapper(Protocol):
    """A stage around the app: runs `app` itself (or answers without it), or returns a refusal; only
    requests of its `methods` are given to it (the others go straight to the app)."""

    methods: frozenset[str]

    async def wrap(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> Refusal | None: ...


class Around(Protocol):
    """An inner stage, right around the app (inside idempotency): runs `app`, or raises `Refused`."""

    async def around(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None: ...


class _Inner:
    """The app as the outer stages see it: wrapped by one inner stage."""

    __slots__ = ("app", "stage")

    def __init__(self, stage: Around, app: ASGIApp) -> None:
        self.stage = stage
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return self.stage.around(scope, receive, send, self.app)


def request_id_layer(app: ASGIApp, handler: ExceptionHandler, handles_errors: bool = True) -> ASGIApp:
    """The outer layer `install()` places: a `RequestIdMiddleware`, unless no middleware
    sits between it and the gateway, which then does the same work in its own pass over
    the response (one layer and one send wrapper fewer per request)."""
    if isinstance(app, GatewayMiddleware):
        app.assigns_request_ids = True
        return app
    return RequestIdMiddleware(app, handler, handles_errors)


class RequestIdMiddleware:
    """Gives each request an id, returns it on every response, formats escaped crashes."""

    def __init__(self, app: ASGIApp, handler: ExceptionHandler, handles_errors: bool = True) -> None:
        self.app = app
        self.handler = handler
        self.handles_errors = handles_errors

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
            if not self.handles_errors and not isinstance(exc, ErrorkitError):
                raise
            await self.handler.answer_crash(exc, started, scope, receive, send_with_id)


class GatewayMiddleware:
    """errorkit's request stages and the catch-all, in one layer.

    The response start is held until the first body message, so a streaming response
    that fails before its first chunk still becomes a proper 500. `one_trip`, built by
    `install()` when the limiter and idempotency share a store that counts and claims in
    one step, takes the requests that will be claimed in their place.
    """

    def __init__(
        self,
        app: ASGIApp,
        handler: ExceptionHandler,
        auth: Gate | None = None,
        limiter: Gate | None = None,
        idempotency: Wrapper | None = None,
        inner: Sequence[Around] = (),
        one_trip: OneTrip | None = None,
        startup: Startup | None = None,
        handles_errors: bool = True,
    ) -> None:
        self.app = app  # lifespan and websockets go straight to it
        self.inner: ASGIApp = app  # what an HTTP request runs: the app within the inner stages
        for stage in reversed(inner):  # the first is the outermost
            self.inner = _Inner(stage, self.inner)

        self.handler = handler
        self.auth = auth
        self.limiter = limiter
        self.idempotency = idempotency
        self.one_trip = one_trip
        self.startup = startup
        self.checked = startup is None  # whether the start-up checks passed (else the first request runs them)
        self.handles_errors = handles_errors
        self.assigns_request_ids = False  # set by request_id_layer() when nothing sits in between

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return

        extra: list[Header] = []
        request_id = assign_request_id(scope).encode("ascii") if self.assigns_request_ids else None
        idempotency = self.idempotency
        if idempotency is None or scope["method"] not in idempotency.methods:
            # the body is kept to tell a client's malformed JSON from a crash (idempotency keeps it itself)
            receive = keep_body(scope, receive)
        gateway_send = _HeldStart(send, extra, request_id)

        current = CURRENT_SCOPE.set(scope)  # what errorkit's log records take their request id and workspace from
        try:
            if not self.checked:  # served without the lifespan protocol: the start-up checks run now
                self._check_late(scope)

            # the stages, in order, in this one coroutine: each step of its own that awaits would be one
            # more frame alive while the request waits (see benchmarks/README.md, issues 21 and 25)
            refusal = None if self.auth is None else await self.auth.admit(scope, extra)
            one_trip = self.one_trip
            key = None
            if one_trip is not None and refusal is None and scope["method"] in one_trip.methods:
                key = one_trip.claimed_key(scope)  # (asked only for guarded methods: 2.1k of a GET's 218k)
            if key is not None and one_trip is not None:
                charge = await one_trip.charge(scope, extra)
                if isinstance(charge, Refusal):
                    refusal = charge
                else:
                    refusal = await one_trip.wrap(scope, receive, gateway_send, self.inner, charge, key)
            else:
                if self.limiter is not None:  # (it counts a refused authentication too, by client address)
                    refusal = await self.limiter.admit(scope, extra) or refusal
                if refusal is None:
                    if idempotency is not None and scope["method"] in idempotency.methods:
                        refusal = await idempotency.wrap(scope, receive, gateway_send, self.inner)
                    else:
                        await self.inner(scope, receive, gateway_send)

            if refusal is not None:
                await self.handler.refusal_response(refusal, scope)(scope, receive, gateway_send)
        except Exception as exc:
            if not self.handles_errors and not isinstance(exc, ErrorkitError):
                raise  # the app's own exception handlers answer it
            await self.handler.answer_crash(exc, gateway_send.started, scope, receive, gateway_send)
            return
        finally:
            CURRENT_SCOPE.reset(current)

        if gateway_send.held is not None:  # a start with no body at all: pass it on as it came
            await send(gateway_send.held)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The start-up checks before the app's own start-up; a failure is the start-up's failure."""
        message = await receive()
        if message["type"] == "lifespan.startup" and self.startup is not None:
            try:
                await self.startup.run(scope.get("app"))
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                raise  # (as Starlette's own lifespan does: a test client raises it, uvicorn has exited)
            self.checked = True

        await self.app(scope, _Finishing(receive, message), send)

    def _check_late(self, scope: Scope) -> None:
        assert self.startup is not None
        self.startup.check_late(scope.get("app"))
        self.checked = True


class _Finishing:
    """The lifespan's receive: when the shutdown arrives, first finish what the stages still have to
    give back or confirm, before the app's own shutdown code runs (which may close the stores).

    A graceful shutdown cancels the requests still running, then sends the lifespan shutdown,
    and the server closes the event loop right after the lifespan ends."""

    __slots__ = ("first", "receive")

    def __init__(self, receive: Receive, first: Message | None = None) -> None:
        self.receive = receive
        self.first = first  # the start-up message, already received by the gateway

    async def __call__(self) -> Message:
        if self.first is not None:
            message, self.first = self.first, None
            return message

        message = await self.receive()
        if message["type"] == "lifespan.shutdown":
            still = await finish(SHUTDOWN_WAIT)
            if still:
                logger.warning(
                    "shutting down with %d give-backs or confirmations unfinished: what they give back frees "
                    "up with its lease; a resource created or deleted without its confirmation leaves quota "
                    "usage off by one (repair with set_usage())",
                    still,
                )
        return message


class _HeldStart:
    """The gateway's `send`: adds the request id and the stages' headers to the response start and
    holds the start until the first body message, so a crash before it can still become a proper 500.

    A callable object rather than a closure: one object per request for the garbage collector
    to find alive while the request waits, instead of a function and four cells.
    """

    __slots__ = ("extra", "held", "request_id", "send", "started")

    def __init__(self, send: Send, extra: list[Header], request_id: bytes | None) -> None:
        self.send = send
        self.extra = extra
        self.request_id = request_id  # (its header is made when the response starts: one object fewer alive)
        self.held: Message | None = None
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and not self.started:
            request_id = self.request_id
            if request_id is not None:
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id), *self.extra]
            elif self.extra:
                message["headers"] = [*message.get("headers", ()), *self.extra]
            self.held = message
            return

        held = self.held
        if held is not None:
            self.held = None
            self.started = True
            await self.send(held)
        await self.send(message)
