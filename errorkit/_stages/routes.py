"""The route template that serves a request, read from the app's own router."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope


def route_template(scope: Scope) -> str | None:
    """`/campaigns/{campaign_id}` for `/campaigns/c_1`; None when no route matches.

    Starlette puts the application in `scope["app"]` before any middleware runs.
    """
    found = route_of(scope)
    return None if found is None else found[0]


def route_of(scope: Scope) -> tuple[str, BaseRoute] | None:
    """The template and the route (the innermost, through mounts) that serve a request; a route
    that matches the path but not the method when none matches both; None when no route matches."""
    routes: Sequence[BaseRoute] = getattr(scope.get("app"), "routes", ())
    return _match(routes, scope)


def _match(routes: Sequence[BaseRoute], scope: Scope) -> tuple[str, BaseRoute] | None:
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue

        found: tuple[str, BaseRoute] = (str(getattr(route, "path", "")), route)
        if isinstance(route, Mount):
            inner = _match(route.routes, {**scope, **child})
            found = (route.path, route) if inner is None else (route.path + inner[0], inner[1])
        if match is Match.FULL:
            return found
        partial = partial or found
    return partial


def serves(scope: Scope) -> bool:
    """Whether a route of the app takes this request as it is (path and method); True without a router."""
    routes: Sequence[BaseRoute] | None = getattr(scope.get("app"), "routes", None)
    return True if routes is None else _serves(routes, scope)


def _serves(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            if isinstance(route, Mount) and hasattr(route.app, "routes"):
                return _serves(route.routes, {**scope, **child})
            return True  # a route, or a mounted app whose routes cannot be seen (middleware, plain ASGI)
    return False
