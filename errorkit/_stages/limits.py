"""Rate limits as users write them: `Limit(5, 60)`, `Limit.parse("5/minute; 100/2 hours")`, and
`errorkit.limit(...)` beside the route it limits.

The text form is the grammar of the `limits` library (slowapi's): `<count>/<unit>`,
`<count> per <unit>`, `<count>/<n> <units>`, several joined by `;`, `,` or `|`, units
`second`, `minute`, `hour`, `day`, `month` (30 days) and `year` (360 days, as `limits` counts
it), singular or plural, any case. `"5/minute"`, `"10 per second"`, `"100/2 hours"`.

`errorkit.limit(...)` leaves its limits on the endpoint (or, as `.dependency`, on a FastAPI
dependency); the rate limiter reads them from the app's router when the app starts, and
counts them exactly as a `RateLimiter(routes=...)` entry for the same route.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from starlette.types import Scope

from errorkit._common.exceptions import ConfigurationError
from errorkit._stages.permissions import route_calls
from errorkit._stages.routes import Served

#: The seconds in each unit the text form names (`month` and `year` as the `limits` library counts them).
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "month": 30 * 86_400, "year": 360 * 86_400}
_ONE = re.compile(r"\s*([0-9]+)\s*(?:/|per)\s*([0-9]+)?\s*([a-z]+?)s?\s*", re.IGNORECASE)
_SEPARATOR = re.compile(r"[;,|]")
_GRAMMAR = "'<count>/<unit>' or '<count> per <n> <units>' (unit: second, minute, hour, day, month or year)"

#: The longest period: the stores count in microseconds, exact in a double (2**53) only while the
#: time plus a period stays below it (now + 10 years, with room to spare). A limit allows at most
#: one request per microsecond (its count at most its period in microseconds): GCRA spaces them so.
MAX_PERIOD = 10 * 365 * 86_400

#: The attribute `errorkit.limit(...)` leaves on an endpoint or dependency: its `RouteLimit`s.
LIMITS_MARK = "__errorkit_limits__"

Endpoint = TypeVar("Endpoint")
#: A request's weight: a number of units, or `(scope) -> units`.
Cost = int | Callable[[Scope], int]


@dataclass(frozen=True, slots=True, init=False)
class Limit:
    """At most `limit` requests (cost units) per `period` seconds; `shadow`: counted, never refusing.

    `Limit(5, 60)` is five a minute; `Limit.parse("5/minute")` says the same in text.
    """

    limit: int
    period: float
    name: str = field(compare=False)  # a label (headers, metrics): limits of one count and period are equal
    shadow: bool = False

    def __init__(self, limit: int, period: float | None = None, name: str = "", shadow: bool = False) -> None:
        if isinstance(limit, str):
            raise TypeError(f"Limit({limit!r}): a Limit takes a count and seconds, Limit(5, 60); {_text_hint(limit)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"Limit({limit!r}, ...): the count is a whole number of requests, at least 1")
        if period is None:
            raise TypeError(f"Limit({limit}): give the period in seconds too, e.g. Limit({limit}, 60) for a minute")
        if isinstance(period, str):
            raise TypeError(
                f"Limit({limit}, {period!r}): the period is a number of seconds, Limit({limit}, 60); "
                f"{_text_hint(f'{limit}/{period}')}"
            )
        if isinstance(period, bool) or not isinstance(period, int | float) or not 0 < period <= MAX_PERIOD:
            raise ConfigurationError(f"Limit({limit}, {period!r}): the period is seconds above 0, at most 10 years")
        if limit > period * 1_000_000:
            raise ConfigurationError(f"Limit({limit}, {period!r}): at most one request per microsecond")

        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "period", period)
        object.__setattr__(self, "name", name or f"{limit}-per-{period:g}s")
        object.__setattr__(self, "shadow", shadow)

    @property
    def period_us(self) -> int:
        return round(self.period * 1_000_000)

    @classmethod
    def parse(cls, text: str, *, shadow: bool = False) -> tuple[Limit, ...]:
        """The limits `text` writes, in order: `Limit.parse("5/minute; 100/2 hours")`.

        `ConfigurationError` naming the part that is not a limit, and the nearest that is."""
        if not isinstance(text, str):
            raise TypeError(f"Limit.parse takes a text such as '5/minute', not {type(text).__name__}")

        limits = []
        for part in _SEPARATOR.split(text):
            if not part.strip():
                raise ConfigurationError(f"{text!r} has an empty limit: nothing before, between or after a ';'")
            match = _ONE.fullmatch(part)
            unit = match.group(3).lower() if match else ""
            if match is None or unit not in UNITS:
                raise ConfigurationError(f"{part.strip()!r} is not a rate limit: write {_GRAMMAR}{_nearest(part)}")

            count, every = int(match.group(1)), int(match.group(2) or 1)
            if count < 1 or every < 1:
                raise ConfigurationError(f"{part.strip()!r}: a rate limit's count and period are at least 1")
            if every * UNITS[unit] > MAX_PERIOD or count > every * UNITS[unit] * 1_000_000:
                raise ConfigurationError(f"{part.strip()!r}: at most 10 years, and one request per microsecond")
            name = f"{count}-per-{unit}" if every == 1 else f"{count}-per-{every}-{unit}s"  # (as written, in headers)
            limits.append(cls(count, every * UNITS[unit], name, shadow))
        return tuple(limits)


def limits_of(value: str | Limit | Iterable[str | Limit], where: str, *, route: bool = False) -> tuple[Limit, ...]:
    """The limits an option gives: a text (`"5/minute; 100/hour"`), a `Limit`, or several of either.

    `where` names the option in the messages (`"RateLimiter(limits=...)"`); `route`: a route's
    entry, which None exempts."""
    if isinstance(value, str | Limit):
        items: list[object] = [value]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
    else:
        raise TypeError(f"{where}: limits are a text such as '5/minute', a Limit, or a list of them, not {value!r}")

    limits: list[Limit] = []
    for item in items:
        if isinstance(item, Limit):
            limits.append(item)
        elif isinstance(item, str):
            try:
                limits.extend(Limit.parse(item))
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
        else:
            raise TypeError(f"{where}: a limit is a text such as '5/minute' or a Limit, not {item!r}")

    if not limits:
        exempting = ", or None for a route without limits" if route else ""
        raise ConfigurationError(f"{where}: no limits given (write '100/minute'{exempting})")
    return tuple(limits)


class RouteLimit:
    """Limits declared beside a route by `errorkit.limit(...)`: a decorator for the endpoint, or
    `.dependency` for FastAPI's `Depends()`."""

    __slots__ = ("cost", "dependency", "limits", "methods", "written")

    def __init__(
        self, limits: tuple[Limit, ...], cost: Cost | None, methods: frozenset[str] | None, written: str = ""
    ) -> None:
        self.limits = limits
        self.written = written  # the arguments as the decorator was given them, for messages
        self.cost = cost
        self.methods = methods

        async def dependency() -> None:
            """Marks a FastAPI route as limited; the gateway counted the request before the app ran."""

        setattr(dependency, LIMITS_MARK, (self,))
        self.dependency: Callable[[], Awaitable[None]] = dependency

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        """Mark `endpoint` (a function, or an `HTTPEndpoint` class) and return it unchanged."""
        if not callable(endpoint):
            raise TypeError(f"errorkit.limit(...) decorates an endpoint, not {endpoint!r}")
        marks: tuple[RouteLimit, ...] = getattr(endpoint, LIMITS_MARK, ())
        setattr(endpoint, LIMITS_MARK, (*marks, self))
        return endpoint

    def __repr__(self) -> str:
        return f"errorkit.limit({self.written})"


def limit(*limits: str | Limit, cost: Cost | None = None, methods: Iterable[str] | None = None) -> RouteLimit:
    """Limit a route where it is declared, counted per identity like every rate limit:

        @app.post("/widgets")
        @errorkit.limit("5/minute", "100/hour")
        async def create_widget(): ...

    Put it under the route decorator (it marks the endpoint and returns it unchanged). For
    FastAPI's dependency form: `dependencies=[Depends(errorkit.limit("5/minute").dependency)]`.

    - `limits`: texts (`"5/minute"`, `"10 per second; 1000/day"`) or `Limit`s, all enforced;
    - `cost`: units one request of this route takes (a number, or `(scope) -> int`; default the
      limiter's `cost`, else 1);
    - `methods`: which of the route's methods are limited (default all of them), upper-case
      names; the others take the limiter's default limits.

    The route's requests count in their own bucket, named like a `routes=` entry
    (`"POST /widgets"`), never in the default limits' bucket. The `RateLimiter` installed reads
    the marks when the app starts; a mark with no `RateLimiter` installed fails the start-up.
    """
    where = "errorkit.limit(...)"
    if not limits:
        raise ConfigurationError(f"{where}: give at least one limit, e.g. errorkit.limit('5/minute')")
    parsed = limits_of(limits, where)

    if cost is not None and not callable(cost) and (isinstance(cost, bool) or not isinstance(cost, int) or cost < 1):
        raise ConfigurationError(f"{where}: cost is a number of units (at least 1) or (scope) -> int, not {cost!r}")
    if isinstance(cost, int) and cost > min(lim.limit for lim in parsed):  # (it could never pass)
        smallest = min(parsed, key=lambda lim: lim.limit)
        raise ConfigurationError(f"{where}: cost={cost} is more than the {smallest.name} limit allows at once")
    named = None if methods is None else frozenset(method_names(methods, f"{where}, methods="))
    if named is not None and not named:
        raise ConfigurationError(f"{where}: methods= names no method; leave it out to limit all the route's methods")
    written = ", ".join(repr(item) for item in limits)
    return RouteLimit(parsed, cost, named, written)


class Declared(NamedTuple):
    """An `errorkit.limit(...)` on one route: the route entries it makes, named like `routes=` ones."""

    keys: tuple[str, ...]
    bucket: str
    limits: tuple[Limit, ...]
    cost: Cost | None
    origin: str  # the decorator and the route, for messages


def declared_limits(served: Served) -> list[Declared]:
    """The `errorkit.limit(...)` marks on a route's endpoint and (FastAPI) its dependencies.

    One mark is one policy, whose methods (by default the route's) share one bucket, named as
    the `routes=` entry for them would be: `"POST /widgets"`; `"GET /items"` for a route of GET
    and the HEAD Starlette adds to it; the template alone for a route's every method.
    """
    route = served.route
    endpoint = getattr(route, "endpoint", None)
    calls = route_calls(route)
    marks: list[RouteLimit] = [mark for call in calls for mark in getattr(call, LIMITS_MARK, ())]
    origin = f"errorkit.limit(...) on {getattr(endpoint, '__qualname__', endpoint)} ({served.template})"
    for call in calls:
        if isinstance(call, RouteLimit):
            raise ConfigurationError(f"{origin}: write Depends({call!r}.dependency): the limit itself is no dependency")

    declared = []
    for mark in marks:
        if mark.methods is not None and served.methods is not None and not mark.methods <= served.methods:
            others = ", ".join(sorted(mark.methods - served.methods))
            serves = ", ".join(sorted(served.methods))
            raise ConfigurationError(f"{origin}: methods= names {others}, which the route does not serve ({serves})")

        methods = mark.methods if mark.methods is not None else served.methods
        keys = tuple(f"{m} {served.template}" for m in sorted(methods)) if methods else (served.template,)
        named = sorted(methods - {"HEAD"} if methods and "GET" in methods else methods or ())  # (HEAD is GET's)
        every = mark.methods is None and len(named) != 1  # the route's every method: named by its template
        bucket = served.template if every else f"{','.join(named)} {served.template}"
        declared.append(Declared(keys, bucket, mark.limits, mark.cost, origin))
    return declared


def method_names(methods: Iterable[str], where: str) -> list[str]:
    """HTTP method names, upper-cased (`"post"` is `"POST"`); a text where a list is expected, or a
    name that is not a token, is refused."""
    if isinstance(methods, str):
        raise TypeError(f"{where} takes a list of methods, such as [{methods.upper()!r}], not the text {methods!r}")
    names = []
    for method in methods:
        if not isinstance(method, str) or not method.isalpha():
            raise ConfigurationError(f"{where}: {method!r} is not an HTTP method name such as 'POST'")
        names.append(method.upper())
    return names


def _text_hint(text: str) -> str:
    """The `Limit.parse` spelling of what a user wrote, when it is one."""
    try:
        parsed = Limit.parse(text)
    except ConfigurationError:
        return "texts such as '5/minute' are read by Limit.parse('5/minute')"
    spelled = ", ".join(f"Limit({p.limit}, {p.period:g})" for p in parsed)
    return f"for {text!r} write Limit.parse({text!r}), which is {spelled}"


def _nearest(part: str) -> str:
    """`; did you mean '5/minute'?` when a unit is misspelled, else nothing."""
    words = re.findall(r"[A-Za-z]+", part)
    unit = words[-1].lower() if words else ""
    if not unit or unit.removesuffix("s") in UNITS:  # the unit is right: the rest of the grammar is not
        return ""
    close = difflib.get_close_matches(unit.removesuffix("s"), list(UNITS), n=1, cutoff=0.6)
    if not close:
        return ""
    start = part.lower().rindex(unit)
    return f"; did you mean {(part[:start] + close[0] + part[start + len(unit) :]).strip()!r}?"


__all__ = [
    "LIMITS_MARK",
    "Cost",
    "Declared",
    "Limit",
    "RouteLimit",
    "declared_limits",
    "limit",
    "limits_of",
    "method_names",
]
