"""Path lists in options (`public_paths=`, `exempt=`, `required=`): exact, or a prefix ending in `*`."""

from collections.abc import Iterable


class PathPatterns:
    """`"/health"` matches that path only; `"/docs*"` every path starting with `/docs`."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        items = list(patterns)
        self.exact = frozenset(p for p in items if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    def matches(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))
