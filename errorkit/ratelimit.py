"""Per-workspace rate limiting: policies, identity, headers and failure policy.

The counting itself is one atomic backend step (`Backend.rate_limit`: a Lua script on
Redis, its Python twin in memory); everything around it lives here, once.

Algorithms (`algorithm=`):
- `"gcra"` (default): the generic cell rate algorithm. A limit of L per P seconds
  allows a burst of L, then one request every P/L seconds; state is one timestamp per
  limit, decisions are exact. `X-RateLimit-Remaining` is what may be sent right now,
  `X-RateLimit-Reset` when the full quota is back.
- `"fixed"`: at most L per calendar window of P seconds (windows aligned to the Unix
  epoch). `X-RateLimit-Reset` is the end of the current window; bursts of 2L can
  straddle a window edge.
On a 429, `Retry-After` is the whole seconds until a request will be accepted (at least
1) and `X-RateLimit-Reset` that same moment, so a client honouring either is let in.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from errorkit.auth.keys import Principal
from errorkit.backends.base import Backend, BackendUnavailable
from errorkit.errors import APIError
from errorkit.paths import PathPatterns
from errorkit.registry import Registry

if TYPE_CHECKING:
    from errorkit.kit import ErrorKit

logger = logging.getLogger("errorkit.ratelimit")
Header = tuple[bytes, bytes]
Algorithm = Literal["gcra", "fixed"]

RATE_LIMIT_CODES = Registry("ratelimit")
RATE_LIMIT_CODES.define(
    "rate_limit_exceeded",
    status=429,
    message="Requests are being sent faster than the workspace's allowed rate.",
    when="The workspace sent more requests than its limit allows. "
    "The error details include retry_after_seconds and limit.",
    fix="Wait at least retry_after_seconds before retrying.",
    group="rate_limiting",
    details={"retry_after_seconds": int, "limit": (int | None, None)},
)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `limit` requests (cost units) per `period` seconds."""

    limit: int
    period: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ValueError(f"a limit needs limit >= 1 and period > 0, not {self.limit}/{self.period}s")
        if not self.name:
            object.__setattr__(self, "name", f"{self.limit}-per-{self.period:g}s")

    @property
    def period_us(self) -> int:
        return round(self.period * 1_000_000)


@dataclass(slots=True)
class Verdict:
    """What the gateway does with a request: headers to add, and an error if it is refused."""

    headers: list[Header]
    error: APIError | None = None


class RateLimiter:
    """Counts requests per identity (the key's workspace by default) against limits.

    - `limits`: the default limits, all enforced at once (e.g. per second and per hour);
    - `limits_for`: `async (principal) -> limits | None` for per-workspace limits (plans),
      cached `limits_ttl` seconds per workspace;
    - `routes`: per route template (`"/campaigns/{id}"` or `"POST /campaigns/{id}/start"`),
      limits counted separately for that route, or None to exempt it; `exempt`: paths
      never counted (health checks);
    - `cost`: `(scope) -> int` weight of a request (default 1);
    - `identity`: `(scope, principal) -> str | None` to count by something else;
      anonymous traffic is counted by client address, taken from `X-Forwarded-For` only
      when the peer is one of `trusted_proxies`;
    - `on_failure`: `"fail_open"` (let traffic through, log, count in `failures`) or
      `"fail_closed"` (503 `service_unavailable` naming the backend) when the backend
      cannot answer within its timeout;
    - `shield`: remember refused identities in this process until their retry time and
      refuse them again without a backend call;
    - `ietf_headers`: also send draft-10 `RateLimit` / `RateLimit-Policy` fields.
    """

    def __init__(
        self,
        kit: ErrorKit,
        backend: Backend,
        *,
        limits: Sequence[Limit] = (Limit(100, 60),),
        limits_for: Callable[[Principal], Awaitable[Sequence[Limit] | None]] | None = None,
        limits_ttl: float = 60.0,
        routes: Mapping[str, Sequence[Limit] | None] | None = None,
        exempt: Iterable[str] = ("/health",),
        cost: Callable[[Scope], int] | None = None,
        identity: Callable[[Scope, Principal | None], str | None] | None = None,
        trusted_proxies: Iterable[str] = (),
        algorithm: Algorithm = "gcra",
        on_failure: Literal["fail_open", "fail_closed"] = "fail_open",
        shield: bool = False,
        ietf_headers: bool = False,
        prefix: str = "errorkit:rl",
    ) -> None:
        if algorithm not in ("gcra", "fixed"):
            raise ValueError(f"algorithm must be 'gcra' or 'fixed', not {algorithm!r}")
        if on_failure not in ("fail_open", "fail_closed"):
            raise ValueError(f"on_failure must be 'fail_open' or 'fail_closed', not {on_failure!r}")
        self.kit = kit
        self.backend = backend
        self.default = _Policy(limits)
        self.limits_for = limits_for
        self.limits_ttl = limits_ttl
        self.routes = {
            template: (_Policy(lim) if lim is not None else None) for template, lim in (routes or {}).items()
        }
        self.exempt = PathPatterns(exempt)
        self.cost = cost
        self.identity = identity
        self.trusted_proxies = [ipaddress.ip_network(p) for p in trusted_proxies]
        self.algorithm = algorithm
        self.on_failure = on_failure
        self.shield = shield
        self.ietf_headers = ietf_headers
        self.prefix = prefix
        self.failures = 0
        self._plans: dict[str, tuple[float, _Policy]] = {}
        self._blocked: dict[str, tuple[float, Verdict]] = {}
        self._app_routes: Sequence[BaseRoute] = ()
        self._last_failure_log = 0.0

    def bind_routes(self, routes: Sequence[BaseRoute]) -> None:
        """Give the limiter the app's routes, to key per-route limits by template."""
        self._app_routes = routes

    async def check(self, scope: Scope, principal: Principal | None) -> Verdict | None:
        """Count the request; None when it is exempt (no headers, nothing counted)."""
        path: str = scope["path"]
        if self.exempt.matches(path):
            return None
        bucket = "*"
        policy: _Policy | None = None
        if self.routes:
            template = self._route_template(scope)
            for name in (f"{scope['method']} {template}", template):
                if name in self.routes:
                    policy = self.routes[name]
                    if policy is None:
                        return None
                    bucket = name
                    break
        if policy is None:
            policy = self.default if self.limits_for is None or principal is None else await self._policy_for(principal)
        who = self._identity(scope, principal)
        key = f"{self.prefix}:{{{who}}}:{bucket}"
        if self.shield:
            blocked = self._blocked.get(key)
            if blocked is not None:
                if blocked[0] > time.monotonic():
                    return blocked[1]
                del self._blocked[key]
        cost = self.cost(scope) if self.cost is not None else 1
        try:
            reply = await self.backend.rate_limit(self.algorithm, policy.keys(key), policy.args, cost)
        except BackendUnavailable as exc:
            return self._unavailable(exc)
        verdict = self._verdict(policy, reply, cost)
        if self.shield and verdict.error is not None and verdict.error.retry_after:
            self._blocked[key] = (time.monotonic() + verdict.error.retry_after, verdict)
        return verdict

    def _verdict(self, policy: _Policy, reply: list[int], cost: int) -> Verdict:
        now, admitted, values = reply[0], reply[1] == 1, reply[2:]
        if admitted and len(policy.limits) == 1:
            remaining, reset_us = self._remaining(policy.limits[0], values[0], now)
            return Verdict(self._headers(policy, policy.limits[0], remaining, reset_us, now))
        if admitted:  # report the limit closest to exhaustion
            best = None
            for limit, value in zip(policy.limits, values, strict=True):
                remaining, reset_us = self._remaining(limit, value, now)
                rank = remaining / limit.limit
                if best is None or rank < best[0]:
                    best = (rank, limit, remaining, reset_us)
            assert best is not None
            _, limit, remaining, reset_us = best
            return Verdict(self._headers(policy, limit, remaining, reset_us, now))
        # refused: report the limit that makes the client wait longest
        wait_us, limit = max(
            (self._wait(limit, value, now, cost), limit) for limit, value in zip(policy.limits, values, strict=True)
        )
        retry_after = max(1, math.ceil(wait_us / 1_000_000))
        reset_us = now + wait_us
        headers = self._headers(policy, limit, 0, reset_us, now)
        error = self.kit.component_error(
            "rate_limited" if "rate_limited" in self.kit.registry else "rate_limit_exceeded",
            RATE_LIMIT_CODES,
            retry_after_seconds=retry_after,
            limit=limit.limit,
        )
        error.retry_after = retry_after
        return Verdict(headers, error)

    def _remaining(self, limit: Limit, value: int, now_us: int) -> tuple[int, int]:
        """(requests left now, when the quota is whole again) after an admitted request."""
        if self.algorithm == "gcra":
            interval = limit.period_us / limit.limit
            # the step rounds each arrival time up to the microsecond: allow for that drift
            used = math.ceil((value - now_us) / interval - 0.01)
            return max(0, limit.limit - used), value
        window_end = (now_us // limit.period_us + 1) * limit.period_us
        return max(0, limit.limit - value), window_end

    def _wait(self, limit: Limit, value: int, now_us: int, cost: int) -> int:
        """Microseconds until `cost` more units fit in this limit (0 if they fit now)."""
        if self.algorithm == "gcra":
            interval = limit.period_us / limit.limit
            return max(0, math.ceil(value + cost * interval - limit.period_us - now_us))
        if value + cost <= limit.limit:
            return 0
        return (now_us // limit.period_us + 1) * limit.period_us - now_us

    def _headers(self, policy: _Policy, limit: Limit, remaining: int, reset_us: int, now_us: int) -> list[Header]:
        headers = [
            (b"x-ratelimit-limit", b"%d" % limit.limit),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % -(-reset_us // 1_000_000)),
        ]
        if self.ietf_headers:
            seconds = max(0, math.ceil((reset_us - now_us) / 1_000_000))
            headers.append((b"ratelimit-policy", policy.ietf_policy))
            headers.append((b"ratelimit", f'"{limit.name}";r={remaining};t={seconds}'.encode()))
        return headers

    async def _policy_for(self, principal: Principal) -> _Policy:
        assert self.limits_for is not None
        now = time.monotonic()
        cached = self._plans.get(principal.workspace_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        limits = await self.limits_for(principal)
        policy = _Policy(limits) if limits else self.default
        self._plans[principal.workspace_id] = (now + self.limits_ttl, policy)
        return policy

    def _identity(self, scope: Scope, principal: Principal | None) -> str:
        if self.identity is not None:
            custom = self.identity(scope, principal)
            if custom is not None:
                return _tag_safe(custom)
        if principal is not None:
            return "ws:" + _tag_safe(principal.workspace_id)
        return "ip:" + self.client_address(scope)

    def client_address(self, scope: Scope) -> str:
        """The client's address: the peer, or behind trusted proxies the last untrusted `X-Forwarded-For` hop."""
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.trusted_proxies or not self._trusted(peer):
            return peer
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops: list[str] = [h.strip() for h in value.decode("latin-1").split(",")]
                for hop in reversed(hops):
                    if not self._trusted(hop):
                        return hop
        return peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)

    def _route_template(self, scope: Scope) -> str:
        return _match(self._app_routes, scope) or "<unmatched>"

    def _unavailable(self, exc: Exception) -> Verdict | None:
        self.failures += 1
        now = time.monotonic()
        if now - self._last_failure_log > 5:  # one line per 5 s, not one per request
            self._last_failure_log = now
            logger.warning(
                "rate limiting unavailable (%s): %s, %d failures so far", exc, self.on_failure, self.failures
            )
        if self.on_failure == "fail_open":
            return None
        error = self.kit.component_error("service_unavailable", None, dependency=self.backend.name)
        error.retry_after = 1
        return Verdict([], error)


class _Policy:
    """Limits with everything per-request work needs precomputed."""

    __slots__ = ("args", "ietf_policy", "limits", "suffixes")

    def __init__(self, limits: Sequence[Limit]) -> None:
        if not limits:
            raise ValueError("a rate-limit policy needs at least one Limit")
        self.limits = tuple(limits)
        self.args: tuple[int, ...] = tuple(v for lim in self.limits for v in (lim.period_us, lim.limit))
        self.suffixes = tuple(f":{lim.limit}/{lim.period:g}" for lim in self.limits)
        self.ietf_policy = ", ".join(
            f'"{lim.name}";q={lim.limit};w={math.ceil(lim.period)}' for lim in self.limits
        ).encode()

    def keys(self, base: str) -> list[str]:
        if len(self.suffixes) == 1:
            return [base + self.suffixes[0]]
        return [base + suffix for suffix in self.suffixes]


def _tag_safe(value: str) -> str:
    """Braces would move the Redis Cluster hash tag: keep them out of identities."""
    return value.replace("{", "(").replace("}", ")")


def _match(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The template of the route that serves this request (`/campaigns/{id}`), if any."""
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
