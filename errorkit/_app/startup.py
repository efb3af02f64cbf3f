"""What the gateway checks when the app starts, so a configuration mistake fails the start-up
instead of silently switching protection off.

When the server sends the lifespan start-up, before the app's own start-up code runs:

1. every route entry and path the stages name (`RateLimiter(routes=..., exempt=...)`,
   `ConcurrencyLimit`, `Quotas(creates=..., deletes=...)`, `Idempotency(exempt=..., required=...,
   methods=...)`, `APIKeyAuth(public_paths=...)`) is checked against the app's routes: a
   mistake is a `ConfigurationError` naming the option, the entry and the nearest route;
2. the limits declared with `errorkit.limit(...)` on the app's routes join the rate limiter's
   (and fail the start-up when no `RateLimiter` is installed to count them);
3. with `install(..., check_stores=True)`, every store is reached (`errorkit._stores.check`).

A failure is sent to the server as `lifespan.startup.failed` with its message (uvicorn prints
it and exits) and raised, as Starlette's own lifespan does. An app served without the lifespan
protocol (`--lifespan off`, a test client outside `with`) is checked on its first request
instead: a mistake then answers 500 and is logged, on every request, until it is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from errorkit._common.exceptions import ConfigurationError
from errorkit._stages.limits import LIMITS_MARK, declared_limits
from errorkit._stages.routes import AppRoutes
from errorkit._stores.check import check_stores

logger = logging.getLogger("errorkit")


class Checked(Protocol):
    """A stage whose options name routes or paths of the app."""

    def check_routes(self, app: AppRoutes) -> None: ...


class Startup:
    """The gateway's start-up checks (see the module docstring)."""

    __slots__ = ("checked", "limited", "stages", "stores")

    def __init__(
        self,
        stages: Sequence[Checked],
        *,
        limited: bool,
        stores: tuple[Sequence[object], Sequence[object]] | None,
    ) -> None:
        self.stages = stages
        self.limited = limited  # whether a RateLimiter is among the stages
        self.stores = stores  # (marked, only reached), as check_stores takes them; None: not checked
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

        routes.report_unseen(logger)
        self.checked = True

    def check_late(self, app: object) -> None:
        """The route checks, once, for an app served without the lifespan (its first request, or its
        OpenAPI document asked for first); the stores are not reached then, and a warning says so."""
        if self.checked:
            return
        self.check_routes(app)
        if self.stores is not None:
            logger.warning(
                "install(check_stores=True): the app is served without the lifespan protocol (--lifespan off, "
                "a mounted sub-app, a test client outside `with`), so its stores were not reached at start-up"
            )
