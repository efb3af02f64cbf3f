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
from errorkit._stages.ratelimit import declared_limits
from errorkit._stages.routes import AppRoutes
from errorkit._stores.check import check_stores

logger = logging.getLogger("errorkit")


class Checked(Protocol):
    """A stage whose options name routes or paths of the app."""

    def check_routes(self, app: AppRoutes) -> None: ...


class Startup:
    """The gateway's start-up checks (see the module docstring)."""

    __slots__ = ("done", "limited", "stages", "stores")

    def __init__(self, stages: Sequence[Checked], *, limited: bool, stores: Sequence[object] | None) -> None:
        self.stages = stages
        self.limited = limited  # whether a RateLimiter is among the stages
        self.stores = stores  # None: not reached at start-up (check_stores=False)
        self.done = False

    async def run(self, app: object) -> None:
        """All the checks, when the lifespan starts."""
        self.check_routes(app)
        if self.stores is not None:
            await check_stores(self.stores)

    def check_routes(self, app: object) -> None:
        """The checks that need only the app's routes (also run by an app's first request)."""
        routes = AppRoutes(app)
        for stage in self.stages:
            stage.check_routes(routes)

        if not self.limited:
            for served in routes.served:
                for declared in declared_limits(served):
                    raise ConfigurationError(
                        f"{declared.origin}: no RateLimiter is installed to count it; "
                        "install(app, rate_limit=RateLimiter(store))"
                    )

        routes.report_unseen(logger)
        self.done = True
