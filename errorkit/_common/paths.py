"""Path lists in options (`public_paths=`, `exempt=`, `required=`): exact, or a prefix ending in `*`."""

from collections.abc import Iterable

from errorkit._common.exceptions import ConfigurationError


class PathPatterns:
    """`"/health"` matches that path only; `"/docs*"` every path starting with `/docs`.

    `where` names the option in messages: a text given where a list is expected (`"/health"`,
    which would otherwise be read letter by letter) is a `TypeError`; a pattern that is no
    path a `ConfigurationError`.
    """

    __slots__ = ("exact", "patterns", "prefixes")

    def __init__(self, patterns: Iterable[str], where: str = "paths") -> None:
        if isinstance(patterns, str | bytes):
            raise TypeError(f"{where} takes a list of paths, such as [{patterns!r}], not the text {patterns!r}")
        items = list(patterns)
        for item in items:
            if not isinstance(item, str) or not item.startswith("/"):
                raise ConfigurationError(f"{where}: {item!r} is not a path: paths start with '/' ('/health', '/docs*')")

        self.patterns = tuple(items)
        self.exact = frozenset(p for p in items if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    def matches(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))
