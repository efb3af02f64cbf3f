"""Path lists in options (`public_paths=`, `exempt=`, `required=`): exact, or a prefix ending in `*`,
matched against the request's path inside the app (`route_path`), as its routes are."""

from collections.abc import Iterable

from starlette.types import Scope

from errorkit._common.exceptions import ConfigurationError


def route_path(scope: Scope) -> str:
    """The request's path as the app's routes see it, which path lists are matched against: without
    the root path (`uvicorn --root-path /api`, or the mount a sub-app is served under)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :] or "/"
    return path


class PathPatterns:
    """`"/health"` matches that path only; `"/docs*"` every path starting with `/docs`.

    `where` names the option in messages: a text given where a list is expected (`"/health"`,
    which would otherwise be read letter by letter) is a `TypeError`; a pattern that is no
    path, or a route template (`"/orders/{id}"`, which no request's path equals), a
    `ConfigurationError`.
    """

    __slots__ = ("exact", "patterns", "prefixes")

    def __init__(self, patterns: Iterable[str], where: str = "paths") -> None:
        if isinstance(patterns, str | bytes):
            raise TypeError(f"{where} takes a list of paths, such as [{patterns!r}], not the text {patterns!r}")
        items = list(patterns)
        for item in items:
            if not isinstance(item, str) or not item.startswith("/"):
                raise ConfigurationError(f"{where}: {item!r} is not a path: paths start with '/' ('/health', '/docs*')")
            if "{" in item or "}" in item:  # (matched against the request's path, a template never matches)
                raise ConfigurationError(
                    f"{where}: {item!r} is a route template; write a path ('/orders/o_1/pay') or a prefix ('/orders/*')"
                )

        self.patterns = tuple(items)
        self.exact = frozenset(p for p in items if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    def matches(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))

    def matches_request(self, scope: Scope) -> bool:
        """`matches(route_path(scope))` in one call (every request asks: a call fewer is ~300 instructions)."""
        path: str = scope["path"]
        if scope.get("root_path"):
            path = route_path(scope)
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))
