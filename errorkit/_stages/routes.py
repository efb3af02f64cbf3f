"""The route template that serves a request, read from the app's own router."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope


def route_template(scope: Scope) -> str | None:
    """`/campaigns/{campaign_id}` for `/campaigns/c_1`; None when no route matches.

    Starlette puts the application in `scope["app"]` before any middleware runs.
    """
    routes: Sequence[BaseRoute] = getattr(scope.get("app"), "routes", ())
    return _match(routes, scope)


def _match(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = _match(route.routes, {**scope, **child})
            template = route.path + (inner or "")
        else:
            template = str(getattr(route, "path", ""))
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial
