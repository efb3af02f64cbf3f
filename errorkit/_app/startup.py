"""What the gateway checks when the app starts, so a configuration mistake fails the start-up
instead of silently switching protection off.

When the server sends the lifespan start-up, before the app's own start-up code runs:

1. every route entry and path the stages name (`RateLimiter(routes=..., exempt=...)`,
   `ConcurrencyLimit`, `Quotas(creates=..., deletes=...)`, `Idempotency(exempt=..., required=...,
   methods=...)`, `APIKeyAuth(public_paths=...)`) is checked against the app's routes: a
   mistake is a `ConfigurationError` naming the option, the entry and the nearest route;
2. the limits declared with `errorkit.limit(...)` on the app's routes join the rate limiter's
   (and fail the start-up when no `RateLimiter` is installed to count them);
3. every code a route declares with `raises()` (on its endpoint or a FastAPI dependency) is one of
   the kit's: a typo would otherwise break the app's reference page and OpenAPI document;
4. with `install(..., check_stores=True)`, every store is reached (`errorkit._stores.check`).

A failure is sent to the server as `lifespan.startup.failed` with its message (uvicorn prints
it and exits) and raised, as Starlette's own lifespan does. An app served without the lifespan
protocol (`--lifespan off`, a test client outside `with`) is checked on its first request
instead: a mistake then answers 500 and is logged, on every request, until it is fixed. An
app's reference page or OpenAPI document made before the app started (`errorkit docs`,
`kit.reference(app=...)`, `app.openapi()`) runs the route checks first too: what they read is on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from errorkit._common.exceptions import ConfigurationError, UnknownCode
from errorkit._errors.declared import declared
from errorkit._errors.errors import APIError
from errorkit._errors.registry import Registry
from errorkit._stages.limits import LIMITS_MARK, declared_limits
from errorkit._stages.permissions import ENDPOINT_METHODS, route_calls
from errorkit._stages.routes import AppRoutes, Served
from errorkit._stores.check import check_stores

logger = logging.getLogger("errorkit")


class Checked(Protocol):
    """A stage whose options name routes or paths of the app."""

    def check_routes(self, app: AppRoutes) -> None: ...


class Startup:
    """The gateway's start-up checks (see the module docstring)."""

    __slots__ = ("checked", "limited", "registry", "stages", "stores")

    def __init__(
        self,
        stages: Sequence[Checked],
        *,
        limited: bool,
        stores: tuple[Sequence[object], Sequence[object]] | None,
        registry: Registry | None = None,
    ) -> None:
        self.stages = stages
        self.limited = limited  # whether a RateLimiter is among the stages
        self.stores = stores  # (marked, only reached), as check_stores takes them; None: not checked
        self.registry = registry  # the kit's codes, which `raises()` must name; None: not checked
        self.checked = False  # whether the route checks passed

    async def run(self, app: object) -> None:
        """All the checks, when the lifespan starts."""
        self.check_routes(app)
        if self.stores is not None:
            marked, reached = self.stores
            await check_stores(marked, reached=reached)

    def check_routes(self, app: object) -> None:
        """The checks that need only the app's routes (also run by an app's first request)."""
        routes = AppRoutes(app)
        for stage in self.stages:
            stage.check_routes(routes)

        for route in routes.uncounted:
            endpoint = getattr(route, "endpoint", None)
            if hasattr(endpoint, LIMITS_MARK):
                raise ConfigurationError(
                    f"errorkit.limit(...) on {getattr(endpoint, '__qualname__', endpoint)}: errorkit counts HTTP "
                    "routes of the app's router, not websocket routes nor routes under a Host"
                )

        declared = [] if self.limited else [mark for served in routes.served for mark in declared_limits(served)]
        if declared:  # (with a RateLimiter, its own check read them)
            raise ConfigurationError(
                f"{declared[0].origin}: no RateLimiter is installed to count it; "
                "install(app, rate_limit=RateLimiter(store))"
            )

        if self.registry is not None:  # (a mounted app with a kit of its own declares that kit's codes)
            for served in AppRoutes(app, enters=same_kit(self.registry)).served:
                _check_declared(served, self.registry)

        routes.report_unseen(logger)
        self.checked = True

    def check_late(self, app: object) -> None:
        """The route checks, once, for an app served without the lifespan (on its first request); the
        stores are not reached then, and a warning says so."""
        if self.checked:
            return
        self.check_routes(app)
        if self.stores is not None:
            logger.warning(
                "install(check_stores=True): the app is served without the lifespan protocol (--lifespan off, "
                "a mounted sub-app, a test client outside `with`), so its stores were not reached at start-up"
            )

    def check_routes_once(self, app: object) -> None:
        """The route checks, once, for an app's reference page or OpenAPI document made outside a request
        (`errorkit docs`, `kit.reference(app=...)`, `app.openapi()`): the `errorkit.limit(...)` marks they
        read are on it. No warning about the stores: the app is not being served."""
        if not self.checked:
            self.check_routes(app)


def same_kit(registry: Registry) -> Callable[[object], bool]:
    """Whether the kit of `registry` answers for a mounted app: the app has no kit of its own, or this one
    (a kit's `install()` registers its handler for `APIError` on the app)."""

    def answered(mounted: object) -> bool:
        handler = getattr(mounted, "exception_handlers", {}).get(APIError)
        return handler is None or getattr(handler, "registry", None) is registry

    return answered


def _check_declared(served: Served, registry: Registry) -> None:
    """Raise `ConfigurationError` for a code `raises()` declares on the route that the kit does not have,
    naming the function that declares it and the kit's nearest code."""
    methods = served.methods or ENDPOINT_METHODS  # (an HTTPEndpoint class: each method's function declares its own)
    calls = {id(call): call for method in sorted(methods) for call in route_calls(served.route, method)}
    for call in calls.values():
        for error in declared(call):
            if not isinstance(error, str):
                continue  # (an APIError class is its own definition)
            try:
                registry[error]
            except UnknownCode as exc:  # (its message names the nearest codes)
                name = getattr(call, "__qualname__", repr(call))
                raise ConfigurationError(
                    f"errorkit.raises({error!r}) on {name} ({served.template}): {exc} "
                    "(kit.define() it, or name a code the kit has)"
                ) from None
