"""Per-route permissions: what a route asks for (`APIKeyAuth.require()` / `requires()` leave a
mark on the endpoint or dependency), and the 403 for a key that lacks one.

The inner stages that take something for a request (a quota unit, a concurrency slot) refuse
such a key before taking anything, with the same 403 the route's own check would answer: a
read-only key never holds a workspace's quota, and never learns its usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import BaseRoute

from errorkit._common.exceptions import Refused
from errorkit._common.principal import Principal
from errorkit._common.refusal import Refusal

#: The attribute `require()` and `requires()` leave on what they return: the permissions asked.
PERMISSIONS_MARK = "__errorkit_permissions__"


#: The methods an `HTTPEndpoint` class can handle, one function each (as Starlette's schema generator reads them).
ENDPOINT_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY")


def route_permissions(route: BaseRoute, method: str | None = None) -> tuple[str, ...] | None:
    """The permissions a route asks for with `require()` / `requires()` (on its endpoint, on the
    handler of `method` of an `HTTPEndpoint` class, or in FastAPI any of its dependencies); None when
    it asks for none."""
    asked = [getattr(call, PERMISSIONS_MARK) for call in route_calls(route, method) if hasattr(call, PERMISSIONS_MARK)]
    return tuple(p for group in asked for p in group) if asked else None


def route_calls(route: object, method: str | None = None) -> list[Any]:
    """What serves a route, where `raises()`, `errorkit.limit()` and `require()` leave their marks: its
    endpoint; for an `HTTPEndpoint` class, its function for `method` too; in FastAPI, its dependencies."""
    endpoint = getattr(route, "endpoint", None)
    calls = [endpoint]
    if isinstance(endpoint, type) and method is not None and hasattr(endpoint, method.lower()):
        calls.append(getattr(endpoint, method.lower()))
    return [*calls, *dependency_calls(getattr(route, "dependant", None))]


def dependency_calls(dependant: Any) -> Iterator[Any]:
    """Every dependency of a FastAPI route's dependency tree, at any depth."""
    for dependency in getattr(dependant, "dependencies", ()):
        yield dependency.call
        yield from dependency_calls(dependency)


def missing_permission(principal: Principal, permissions: Iterable[str]) -> Refusal | None:
    """The 403 `insufficient_scope` for the first permission the key lacks (None: it has them all)."""
    for permission in permissions:
        if permission not in principal.scopes:
            details = {"required_permission": permission, "key_scope": principal.key_scope}
            return Refusal(("insufficient_scope",), 403, details=details)
    return None


def refuse_unpermitted(principal: Principal, route: BaseRoute) -> None:
    """Raise the route's 403 before a stage takes anything (a quota unit, a slot) for a key that
    lacks a permission the route asks for: such a key never holds a workspace's quota and never
    learns its usage. (The app's own check then refuses the same way, for stages not installed.)"""
    permissions = _route_permissions.get(id(route))
    if permissions is None:
        permissions = _route_permissions[id(route)] = (route, route_permissions(route) or ())
    refusal = missing_permission(principal, permissions[1])
    if refusal is not None:
        raise Refused(refusal)


#: Per route (by id, kept alive with it: routes compare by value and are not hashable): its permissions.
_route_permissions: dict[int, tuple[BaseRoute, tuple[str, ...]]] = {}
