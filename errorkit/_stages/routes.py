"""The app's routes as the stages see them: the template that serves a request (read from the
app's own router), and, when the app starts, the routes the stages' options name checked
against those the app serves (`AppRoutes`)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, TypeVar

from starlette.routing import BaseRoute, Match, Mount, WebSocketRoute, compile_path
from starlette.types import Scope

from errorkit._common.exceptions import ConfigurationError

V = TypeVar("V")
#: The default `exempt=` / `public_paths=`: health checks (not checked against the app's routes).
HEALTH = ("/health",)
#: The methods RFC 9110 defines (and PATCH): a stage may name one that no route serves yet.
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def route_template(scope: Scope) -> str | None:
    """`/campaigns/{campaign_id}` for `/campaigns/c_1`; None when no route matches.

    Starlette puts the application in `scope["app"]` before any middleware runs.
    """
    found = route_of(scope)
    return None if found is None else found[0]


def route_of(scope: Scope) -> tuple[str, BaseRoute] | None:
    """The template and the route (the innermost, through mounts) that serve a request; a route
    that matches the path but not the method when none matches both; None when no route matches."""
    return _match(routes_of(scope.get("app")), scope)


def routes_of(app: object) -> Sequence[BaseRoute]:
    """An app's (or a router's) routes, with FastAPI's included routers laid out flat.

    FastAPI (0.150 and later) keeps an `include_router()` as one route that resolves its routes
    lazily; laid out, each is a route of its own with its whole path (the prefix included), its
    methods, endpoint and dependencies, as `app.openapi()` sees them. Kept per list of routes and
    laid out again when the list grows (one dictionary look-up a request)."""
    routes: Sequence[BaseRoute] | None = getattr(app, "routes", None)
    if not routes:
        return ()

    kept = _LAID_OUT.get(id(routes))
    if kept is None or kept[0] is not routes or kept[1] != len(routes):
        kept = _LAID_OUT[id(routes)] = (routes, len(routes), tuple(_laid_out(routes)))
    return kept[2]


def _laid_out(routes: Sequence[BaseRoute]) -> Iterable[BaseRoute]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # (FastAPI's included router)
        if contexts is None:
            yield route
            continue
        for context in contexts():  # a Starlette route as it is (prefixed), a FastAPI route as its context
            yield context.starlette_route or context


#: Per list of routes (by id, kept alive with it): the list, its length then, and its routes laid out.
_LAID_OUT: dict[int, tuple[Sequence[BaseRoute], int, Sequence[BaseRoute]]] = {}


def _match(routes: Sequence[BaseRoute], scope: Scope) -> tuple[str, BaseRoute] | None:
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue

        found: tuple[str, BaseRoute] = (str(getattr(route, "path", "")), route)
        if isinstance(route, Mount):
            inner = _match(routes_of(route), {**scope, **child})
            found = (route.path, route) if inner is None else (route.path + inner[0], inner[1])
        if match is Match.FULL:
            return found
        partial = partial or found
    return partial


def serves(scope: Scope) -> bool:
    """Whether a route of the app takes this request as it is (path and method); True without a router."""
    app = scope.get("app")
    return True if getattr(app, "routes", None) is None else _serves(routes_of(app), scope)


def _serves(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            if isinstance(route, Mount) and hasattr(route.app, "routes"):
                return _serves(routes_of(route), {**scope, **child})
            return True  # a route, or a mounted app whose routes cannot be seen (middleware, plain ASGI)
    return False


# -- the route entries of the stages' options, and the app's routes they are checked against ------


def route_key(key: object, where: str, *, method: bool = False) -> str:
    """A route entry as the stages look it up: `"POST /widgets/{widget_id}"`, or `"/widgets"` for
    every method (`method=True`: a method is required). A method is upper-cased (`"post"` can only
    mean `POST`); anything else that is not `METHOD /template` is refused."""
    if not isinstance(key, str):
        raise TypeError(f"{where}: a route is a text such as 'POST /widgets', not {key!r}")

    parts = key.split()
    name, template = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0] if parts else "")
    if len(parts) not in (1, 2) or not template.startswith("/") or (name and not name.isalpha()):
        raise ConfigurationError(
            f"{where}: {key!r} is not a route: write 'METHOD /path/{{param}}', as the app declares it"
        )
    if method and not name:
        raise ConfigurationError(f"{where}: {key!r} names no method: write 'POST {template}' (or the route's method)")
    return f"{name.upper()} {template}" if name else template


def route_keys(entries: Mapping[str, V] | None, where: str, *, method: bool = False) -> dict[str, V]:
    """`route_key` of every entry; two entries naming one route (`"post /x"`, `"POST /x"`) are refused."""
    if entries is None:
        return {}
    if not isinstance(entries, Mapping):
        raise TypeError(f"{where}: routes are a mapping such as {{'POST /widgets': ...}}, not {entries!r}")

    keyed: dict[str, V] = {}
    for key, value in entries.items():
        name = route_key(key, where, method=method)
        if name in keyed:
            raise ConfigurationError(f"{where}: {key!r} names the route {name!r} a second time")
        keyed[name] = value
    return keyed


class Served(NamedTuple):
    """One route of the app: its whole template (mount prefixes included) and methods (None: all)."""

    template: str
    methods: frozenset[str] | None
    route: BaseRoute


class AppRoutes:
    """The routes an app serves, seen when it starts, for checking the stages' options against.

    A mounted application whose routes cannot be seen (static files, an app behind its own
    middleware, plain ASGI) is not an error: entries under it are reported once, as a warning.
    `enters(mounted)`: whether to walk into a mounted application's routes (default: every one).
    """

    def __init__(self, app: object, *, enters: Callable[[object], bool] | None = None) -> None:
        self.app = app
        self.enters = enters
        self.routes: Sequence[BaseRoute] = routes_of(app)
        self.served: list[Served] = []
        self.hidden: list[tuple[str, object]] = []  # (mount path, the mounted app)
        self.mounted: list[tuple[str, object]] = []  # (mount path, the mounted app or router), its routes seen
        self.unseen: dict[str, list[str]] = {}  # mount path -> the entries under it, not checked
        self.uncounted: list[BaseRoute] = []  # routes no stage counts: websockets, and routes under a Host
        self._walk(self.routes, "")

    def _walk(self, routes: Sequence[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                mounted = getattr(route, "_base_app", route.app)  # (inside the Mount's own middleware, if any)
                if getattr(mounted, "routes", None) is None:
                    self.hidden.append((prefix + route.path, mounted))
                elif self.enters is None or self.enters(mounted):
                    self.mounted.append((prefix + route.path, mounted))
                    self._walk(routes_of(mounted), prefix + route.path)
            elif isinstance(route, WebSocketRoute):
                self.uncounted.append(route)
            elif getattr(route, "path_format", None) is None:  # a Host, or a route type of the app's own
                self.hidden.append((prefix, route))
                self.uncounted += _every_route(getattr(route, "routes", ()))
            else:  # a Route, or a FastAPI route of an included router (its context: no Route, same fields)
                methods = getattr(route, "methods", None)
                template = prefix + str(getattr(route, "path", ""))
                self.served.append(Served(template, frozenset(methods) if methods else None, route))

    def check_key(self, key: str, where: str) -> None:
        """Raise `ConfigurationError` unless `key` (`route_key`'s form) names a route of the app."""
        name, _, template = key.rpartition(" ")
        same_path = [s for s in self.served if s.template == template]
        if any(name == "" or s.methods is None or name in s.methods for s in same_path):
            return

        candidates = self._keys() if name else sorted({s.template for s in self.served})
        if self._under_hidden(template, f"{where} {key!r}", near=_close(key, candidates)):
            return

        is_url = not same_path and "{" not in template  # ("GET /projects/p_1", not the route's template)
        serving = [s.template for s in self.served if is_url and _template_serves(s.template, template)]
        if serving:
            written = f"{name} {serving[0]}" if name else serving[0]
            raise ConfigurationError(f"{where}: {key!r} is a URL, not a route: write the route's template, {written!r}")
        serves = ", ".join(sorted(m for s in same_path for m in s.methods or ()))
        raise ConfigurationError(
            f"{where}: {key!r} names no route of the app"
            + (f" ({template} serves {serves})" if serves else "")
            + nearest(key, candidates)
        )

    def check_paths(self, patterns: Iterable[str], where: str) -> None:
        """Raise `ConfigurationError` unless every path pattern (`"/widgets/w_1"`, `"/docs*"`) reaches a
        route; `"/health"` is not checked (the default of several options: an app need not have it)."""
        templates = sorted({s.template for s in self.served})
        for pattern in patterns:
            if pattern in HEALTH:
                continue

            if pattern.endswith("*"):
                prefix = pattern[:-1]
                if any(template.startswith(prefix) for template in templates):
                    continue
                if self._under_hidden(prefix, f"{where} {pattern!r}", prefix=True):
                    continue
                problem = f"no route of the app starts with {prefix!r}"
                raise ConfigurationError(f"{where}: {problem}" + nearest(prefix, templates))

            found = _match(self.routes, {"type": "http", "path": pattern, "root_path": "", "method": "GET"})
            if found is not None and not isinstance(found[1], Mount):
                continue
            if self._under_hidden(pattern, f"{where} {pattern!r}", near=_close(pattern, templates)):
                continue
            problem = f"{pattern!r} is the path of no route of the app"
            raise ConfigurationError(f"{where}: {problem}" + nearest(pattern, templates))

    def report_unseen(self, logger: logging.Logger) -> None:
        """One warning per mounted application whose routes hide entries that could not be checked."""
        for path, entries in self.unseen.items():
            mounted = dict(self.hidden)[path]
            logger.warning(
                "errorkit cannot see the routes of %s mounted at %r; these entries were not checked: %s",
                getattr(mounted, "__qualname__", type(mounted).__name__),
                path or "/",
                "; ".join(entries),
            )

    def _under_hidden(self, path: str, entry: str, *, prefix: bool = False, near: str | None = None) -> bool:
        """Whether `path` may be served by a mounted app whose routes cannot be seen (noting `entry`).

        A mount at the root (`Mount("/", StaticFiles(...))`, a `Host`) could serve any path: an
        entry close to a route the app does serve (`near`) is then a typo of it, not the mount's."""
        for mount, _ in self.hidden:
            if mount == "" and near is not None:
                continue
            if path == mount or path.startswith(mount + "/") or mount == "" or (prefix and mount.startswith(path)):
                self.unseen.setdefault(mount, []).append(entry)
                return True
        return False

    def _keys(self) -> list[str]:
        keys: list[str] = []
        for served in self.served:  # (a route of every method is named by its template alone)
            keys += [f"{m} {served.template}" for m in served.methods] if served.methods else [served.template]
        return sorted(keys)


def _every_route(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes under `routes`, through mounts and hosts."""
    found: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "routes", None)
        found += _every_route(inner) if inner is not None else [route]
    return found


def _template_serves(template: str, path: str) -> bool:
    """Whether the route `template` (`/projects/{project_id}`) serves the URL `path` (`/projects/p_1`)."""
    regex, _, _ = compile_path(template)
    return regex.match(path) is not None


def _close(key: str, candidates: list[str]) -> str | None:
    """A candidate so close to `key` that `key` can only be a typo of it."""
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.8)
    return close[0] if close else None


def nearest(key: str, candidates: list[str]) -> str:
    """`"; the nearest is 'POST /widgets'"`, or the candidates themselves when none is close."""
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    return f"; the nearest is {close[0]!r}" if close else "; the app's routes: " + ", ".join(candidates[:12])
