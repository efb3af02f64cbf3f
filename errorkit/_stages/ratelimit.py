"""Per-workspace rate limiting: policies, identity, headers; counting is one atomic store step.

On a 429, `Retry-After` is the whole seconds until a request will be accepted (at least
1) and `X-RateLimit-Reset` that same moment, so a client honouring either is let in.
With several limits the headers report the one closest to exhaustion (on a 429, the one
that makes the client wait longest). See `errorkit._stages.algorithms` for GCRA and the
fixed window.

A shadow limit (`Limit(..., shadow=True)`, or every limit of `RateLimiter(shadow=True)`) is
counted as if enforced but never refuses: a request it would have refused is admitted,
reported to the observer as `shadow_limited` and not charged to it (so it measures what
enforcing it would do). Its headers are sent only with `shadow_headers=True`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from starlette.types import Scope

from errorkit._common.exceptions import ConfigurationError, StoreUnavailable
from errorkit._common.expiring import Expiring
from errorkit._common.paths import PathPatterns
from errorkit._common.principal import Principal
from errorkit._common.refusal import Refusal
from errorkit._observe.observer import Observer, RateLimitResult
from errorkit._stages.algorithms import ALGORITHMS, Algorithm
from errorkit._stages.auth import get_principal
from errorkit._stages.failure import FailureMode, FailurePolicy
from errorkit._stages.identity import TrustedProxies, identity_of
from errorkit._stages.limits import Cost, Declared, Limit, declared_limits, limits_of
from errorkit._stages.routes import HEALTH, AppRoutes, Served, route_keys, route_template
from errorkit._stores.protocols import (
    Claim,
    ClaimRequest,
    Counted,
    CounterAlgorithm,
    CountsAndClaims,
    RateLimitStore,
)

Header = tuple[bytes, bytes]
#: What an option of limits takes: `"5/minute; 100/hour"`, a `Limit`, or several of either.
Limits = str | Limit | Sequence[str | Limit]
#: The codes a refusal names: the first document's, else the second's (or errorkit's default).
_LIMITED = ("rate_limited", "rate_limit_exceeded")


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """Limits per workspace: `resolve(principal)` returns its limits (None: the defaults), as
    `Limit`s or texts (`"1000/hour"`).

    Answers are kept `ttl` seconds per workspace, for at most `size` workspaces.
    """

    resolve: Callable[[Principal], Awaitable[str | Sequence[str | Limit] | None]]
    ttl: float = 60.0
    size: int = 10_000


class RateLimiter:
    """Counts requests per identity (the key's workspace by default) against limits.

    - `limits`: the default limits, all enforced at once (e.g. per second and per hour);
    - `plans`: `PlanLimits` for per-workspace limits;
    - `routes`: per route template (`"/campaigns/{id}"` or `"POST /campaigns/{id}/start"`),
      limits counted separately for that route, or None to exempt it; `exempt`: paths
      never counted (health checks);
    - `cost`: `(scope) -> int` weight of a request (default 1);
    - `identity`: `(scope, principal) -> str | None` to count by something else;
      anonymous traffic is counted by client address (`trusted_proxies`: see `TrustedProxies`);
    - `algorithm`: `"gcra"` (default) or `"fixed"`;
    - `on_failure`: `FailurePolicy` while the store cannot answer (default fail open: the
      request passes uncounted, without rate-limit headers);
    - `shield`: remember refused identities in this process (at most `shield_size`) until
      their retry time and refuse them again without a store call;
    - `ietf_headers`: also send draft-10 `RateLimit` / `RateLimit-Policy` fields;
    - `shadow`: every limit is a shadow limit (counted and observed, nothing refused);
      `shadow_headers`: shadow limits take part in the rate-limit headers too (a request
      one would have refused shows `X-RateLimit-Remaining: 0`), so clients see them coming.

    Policies are named in metrics by their route entry (`"POST /exports"`), `"default"` or
    `"plan"`.
    """

    def __init__(
        self,
        counters: RateLimitStore,
        *,
        limits: Limits = "100/minute",
        plans: PlanLimits | None = None,
        routes: Mapping[str, Limits | None] | None = None,
        exempt: Iterable[str] = HEALTH,
        cost: Callable[[Scope], int] | None = None,
        identity: Callable[[Scope, Principal | None], str | None] | None = None,
        trusted_proxies: Iterable[str] = (),
        algorithm: str = "gcra",
        on_failure: FailurePolicy | FailureMode = "fail_open",
        shield: bool = False,
        shield_size: int = 10_000,
        ietf_headers: bool = False,
        shadow: bool = False,
        shadow_headers: bool = False,
    ) -> None:
        if cost is not None and not callable(cost):
            raise TypeError(f"RateLimiter(cost=...) is (scope) -> int, a request's weight, not {cost!r}")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, not {algorithm!r}")

        self.counters = counters
        self.algorithm: Algorithm = ALGORITHMS[algorithm]
        self.shadow = shadow
        self.shadow_headers = shadow_headers
        self.default = self._policy(limits_of(limits, "RateLimiter(limits=...)"), "*", "default")
        self.plans = plans
        self.given_routes: dict[str, _Policy | None] = {}
        for key, lim in route_keys(routes, "RateLimiter(routes=...)").items():
            where = f"RateLimiter(routes=...)[{key!r}]"
            self.given_routes[key] = None if lim is None else self._policy(limits_of(lim, where, route=True), key, key)
        self.routes = dict(self.given_routes)  # and, once the app starts, the routes limited where they are declared
        self.app: object | None = None  # the app whose routes were read

        self.exempt = PathPatterns(exempt, "RateLimiter(exempt=...)")
        self.cost = cost
        self.identity = identity
        self.proxies = TrustedProxies(trusted_proxies)
        self.on_failure = FailurePolicy.of(on_failure)
        self.shield = shield
        self.ietf_headers = ietf_headers

        self._plans: Expiring[_Policy] = Expiring(plans.size if plans else 1)
        self._refused: Expiring[tuple[Refusal, list[Header], str]] = Expiring(shield_size)
        self.observer: Observer | None = None  # set by install(): metrics, traces

    def _policy(self, limits: Sequence[Limit], bucket: str, label: str, cost: Cost | None = None) -> _Policy:
        # a fixed window's state is another shape than GCRA's: its own keys, so switching `algorithm` on a
        # live store starts each limit afresh instead of reading the other's state (WRONGTYPE, a 500)
        key = bucket if self.algorithm.name == "gcra" else f"{bucket}:{self.algorithm.name}"
        return _Policy(limits, key, label, shadow=self.shadow, report_shadow=self.shadow_headers, cost=cost)

    def check_routes(self, app: AppRoutes) -> None:
        """When the app starts: every `routes=` entry and `exempt=` path must name a route of the app
        (`ConfigurationError` naming the nearest); the limits declared by `errorkit.limit(...)` on
        the app's routes join the route entries."""
        if self.app is not None and self.app is not app.app:  # (the marks read are one app's)
            raise ConfigurationError("RateLimiter: installed on two apps; build one RateLimiter per app")
        self.app = app.app

        for key in self.given_routes:
            app.check_key(key, "RateLimiter(routes=...)")
        app.check_paths(self.exempt.patterns, "RateLimiter(exempt=...)")

        routes = dict(self.given_routes)
        for served in app.served:
            for declared in declared_limits(served):
                self._check_declared(declared, served, routes)
                policy = self._policy(declared.limits, declared.bucket, declared.bucket, declared.cost)
                routes.update(dict.fromkeys(declared.keys, policy))
        self.routes = routes

    async def admit(self, scope: Scope, headers: list[Header]) -> Refusal | None:
        """The gateway's stage: count the request, add its rate-limit headers, refuse it when over."""
        policy = self._policy_of(scope)  # (steps that need not wait are plain calls: no coroutine per request)
        if policy is None:
            return None
        if policy is _BY_PLAN:
            policy = await self._plan_policy(scope)

        who = self._identity_of(scope, policy, headers)
        if isinstance(who, Refusal):  # the shield's
            return who
        cost = self._cost_of(scope, policy)

        try:
            counted = await self.counters.count(self.algorithm, who, policy.buckets, policy.args, cost)
        except StoreUnavailable as exc:
            return self._failed(exc, policy)

        return self._decide(policy, counted, cost, who, headers)

    def _documented_policy(self, method: str, path: str) -> _Policy | None:
        if self.exempt.matches(path):
            return None
        policy = self._route_policy(method, path)
        return self.default if policy is _DEFAULT else policy  # (plans are not known here: the defaults stand in)

    def route_refusals(self, method: str, path: str) -> list[Refusal]:
        """What this stage may refuse on a route, for its documentation (a shadow limit refuses nothing)."""
        policy = self._documented_policy(method, path)
        if policy is None:
            return []

        limited = Refusal(_LIMITED, 429, details={"retry_after_seconds": 1}, retry_after=1)
        refusals = [limited] if policy.enforces else []
        if not self.on_failure.fails_open:
            refusals.append(self.on_failure.refusal(self.counters.name))
        return refusals

    def route_headers(self, method: str, path: str) -> dict[str, str]:
        """The headers this stage adds to every response of a route, with what each means."""
        policy = self._documented_policy(method, path)
        if policy is None or not (self.shadow_headers or policy.enforces):
            return {}

        headers = {
            "X-RateLimit-Limit": "Requests allowed in the current window.",
            "X-RateLimit-Remaining": "Requests left in the current window.",
            "X-RateLimit-Reset": "Unix time (seconds) when the window resets.",
        }
        if self.ietf_headers:
            headers["RateLimit-Policy"] = "The limits that apply (IETF draft)."
            headers["RateLimit"] = "The limit closest to exhaustion: remaining and seconds to reset (IETF draft)."
        return headers

    def _failed(self, error: StoreUnavailable, policy: _Policy) -> Refusal | None:
        passes = "requests pass uncounted, without rate-limit headers"
        refusal = self.on_failure.failed("rate limiting", self.counters.name, error, passes=passes)
        fails_open = self.on_failure.fails_open
        if self.observer is not None:
            self.observer.rate_limit_decided(policy.label, "failed_open" if fails_open else "failed_closed", False)
        return None if fails_open else refusal

    async def defer(
        self, store: CountsAndClaims, scope: Scope, headers: list[Header]
    ) -> PendingCharge | Refusal | None:
        """What `admit` would count, to be counted by `store` with a claim: None when exempt, the
        shield's refusal, else a charge."""
        policy = self._policy_of(scope)
        if policy is None:
            return None
        if policy is _BY_PLAN:
            policy = await self._plan_policy(scope)

        who = self._identity_of(scope, policy, headers)
        if isinstance(who, Refusal):
            return who
        return PendingCharge(self, store, policy, who, self._cost_of(scope, policy), headers)

    def _policy_of(self, scope: Scope) -> _Policy | None:
        """The request's policy; None when it is exempt; `_BY_PLAN` when the plan resolver must be
        asked (it is asked only when neither an exemption nor a route decides)."""
        if self.exempt.matches_request(scope):
            return None

        if self.routes:
            found = self._route_policy(scope["method"], route_template(scope) or "<unmatched>")
            if found is not _DEFAULT:
                return found  # (None: a route without limits)
        if self.plans is None or get_principal(scope) is None:
            return self.default
        return _BY_PLAN

    async def _plan_policy(self, scope: Scope) -> _Policy:
        principal = get_principal(scope)
        assert principal is not None  # (`_policy_of` asks the plans only for a principal)
        return await self._policy_for(principal)

    def _identity_of(self, scope: Scope, policy: _Policy, headers: list[Header]) -> str | Refusal:
        """Who the request is counted as; or the shield's refusal, when it refused them lately."""
        who = identity_of(scope, get_principal(scope), self.identity, self.proxies)
        if self.shield:
            refused = self._refused.get((who, policy.bucket))
            if refused is not None:
                headers += refused[1]
                if self.observer is not None:
                    self.observer.rate_limit_decided(refused[2], "limited", False)
                return refused[0]
        return who

    def _cost_of(self, scope: Scope, policy: _Policy) -> int:
        weight = self.cost if policy.cost is None else policy.cost  # (a route's own cost first)
        return 1 if weight is None else weight if isinstance(weight, int) else _weighed(weight, scope)

    def _check_declared(self, declared: Declared, served: Served, routes: Mapping[str, _Policy | None]) -> None:
        """A route limited by `errorkit.limit(...)` must not be limited, exempted or exempt otherwise."""
        for key in (*declared.keys, served.template):
            if key in self.given_routes:
                raise ConfigurationError(
                    f"{declared.origin}: RateLimiter(routes=...)[{key!r}] names the route too; "
                    "keep the decorator or the entry"
                )
        if self.exempt.matches(served.template):
            raise ConfigurationError(f"{declared.origin}: the route is exempt by RateLimiter(exempt=...)")
        if any(key in routes for key in declared.keys):
            raise ConfigurationError(f"{declared.origin}: the route is limited by two errorkit.limit(...); use one")

    def _route_policy(self, method: str, template: str) -> _Policy | None:
        """The route's own policy (`METHOD template` before `template`), None for a route without
        limits, `_DEFAULT` when no route entry names it."""
        for name in (f"{method} {template}", template):
            if name in self.routes:
                return self.routes[name]
        return _DEFAULT

    def _decide(self, policy: _Policy, counted: Counted, cost: int, who: str, headers: list[Header]) -> Refusal | None:
        now, values = counted.now_us, counted.values
        algorithm = self.algorithm

        if counted.admitted:
            if policy.single is not None:  # one enforced limit: the common case
                limit = policy.single
                remaining, reset_us = algorithm.remaining(limit.limit, limit.period_us, values[0], now)
                self._headers(headers, policy, limit, remaining, reset_us, now)
                if self.observer is not None:
                    self.observer.rate_limit_decided(policy.label, "allowed", remaining * 5 <= limit.limit)
            else:
                self._admitted(policy, counted, cost, headers)
            return None

        # refused (only enforced limits refuse): report the one that makes the client wait longest
        waits = [
            (algorithm.wait(limit.limit, limit.period_us, value, now, cost), limit)
            for limit, value in zip(policy.limits, values, strict=True)
            if not limit.shadow
        ]
        if not waits:  # a store that does not know shadow limits refused: none of them may refuse
            self._admitted(policy, counted._replace(admitted=True), cost, headers)
            return None

        wait_us, limit = max(waits, key=_first)
        retry_after = max(1, math.ceil(wait_us / 1_000_000))
        own: list[Header] = []
        self._headers(own, policy, limit, 0, now + wait_us, now)
        headers += own

        refusal = Refusal(
            _LIMITED,
            429,
            details={"retry_after_seconds": retry_after, "limit": limit.limit},
            headers={"retry-after-ms": str(max(1, -(-wait_us // 1000)))},  # the exact wait (Retry-After rounds up)
            retry_after=retry_after,
        )
        if self.shield:
            self._refused.put((who, policy.bucket), (refusal, own, policy.label), time.monotonic() + retry_after)
        if self.observer is not None:
            self.observer.rate_limit_decided(policy.label, "limited", False)
        return refusal

    def _admitted(self, policy: _Policy, counted: Counted, cost: int, headers: list[Header]) -> None:
        """Headers for the reported limit closest to exhaustion; near-limit when any limit is 80 % used."""
        now, shadowed = counted.now_us, counted.shadowed
        algorithm = self.algorithm
        best: tuple[float, _Limit, int, int] | None = None
        near = False
        for index, (limit, value) in enumerate(zip(policy.limits, counted.values, strict=True)):
            if shadowed >> index & 1:  # a shadow limit that would have refused: not charged
                remaining = 0
                reset_us = now + algorithm.wait(limit.limit, limit.period_us, value, now, cost)
            else:
                remaining, reset_us = algorithm.remaining(limit.limit, limit.period_us, value, now)
                near = near or remaining * 5 <= limit.limit

            if limit.shadow and not self.shadow_headers:
                continue
            rank = remaining / limit.limit
            if best is None or rank < best[0]:
                best = (rank, limit, remaining, reset_us)

        if best is not None:
            self._headers(headers, policy, best[1], best[2], best[3], now)
        if self.observer is not None:
            result: RateLimitResult = "shadow_limited" if shadowed else "allowed"
            self.observer.rate_limit_decided(policy.label, result, near)

    def _headers(
        self, headers: list[Header], policy: _Policy, limit: _Limit, remaining: int, reset_us: int, now_us: int
    ) -> None:
        headers += (
            (b"x-ratelimit-limit", limit.header),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % -(-reset_us // 1_000_000)),
        )

        if self.ietf_headers:
            seconds = max(0, math.ceil((reset_us - now_us) / 1_000_000))
            headers.append((b"ratelimit-policy", policy.ietf_policy))
            headers.append((b"ratelimit", f'"{limit.name}";r={remaining};t={seconds}'.encode()))

    async def _policy_for(self, principal: Principal) -> _Policy:
        assert self.plans is not None
        policy = self._plans.get(principal.workspace_id)
        if policy is None:
            limits = await self.plans.resolve(principal)
            policy = self._policy(limits_of(limits, "PlanLimits.resolve()"), "*", "plan") if limits else self.default
            self._plans.put(principal.workspace_id, policy, time.monotonic() + self.plans.ttl)
        return policy


class PendingCharge:
    """One request's charge, not yet counted (see `errorkit._stages.charge.Charge`)."""

    __slots__ = ("algorithm", "args", "buckets", "cost", "headers", "identity", "limiter", "policy", "store")

    def __init__(
        self,
        limiter: RateLimiter,
        store: CountsAndClaims,
        policy: _Policy,
        identity: str,
        cost: int,
        headers: list[Header],
    ) -> None:
        self.limiter = limiter
        self.store = store
        self.policy = policy
        self.identity = identity
        self.cost = cost
        self.headers = headers
        self.algorithm: CounterAlgorithm = limiter.algorithm
        self.buckets: Sequence[str] = policy.buckets
        self.args: Sequence[int] = policy.args

    def count_and_claim(self, claim: ClaimRequest) -> Awaitable[tuple[Counted, Claim | None]]:
        return self.store.count_and_claim(self.algorithm, self.identity, self.buckets, self.args, self.cost, claim)

    def settle(self, counted: Counted) -> Refusal | None:
        return self.limiter._decide(self.policy, counted, self.cost, self.identity, self.headers)

    def failed(self, error: StoreUnavailable) -> Refusal | None:
        return self.limiter._failed(error, self.policy)

    async def count(self) -> Refusal | None:
        limiter = self.limiter
        try:
            counted = await limiter.counters.count(self.algorithm, self.identity, self.buckets, self.args, self.cost)
        except StoreUnavailable as exc:
            return self.failed(exc)
        return self.settle(counted)


class _Policy:
    """Limits with everything per-request work needs precomputed; `label` names it in metrics."""

    __slots__ = ("args", "bucket", "buckets", "cost", "enforces", "ietf_policy", "label", "limits", "single")

    def __init__(
        self,
        limits: Sequence[Limit],
        bucket: str,
        label: str = "",
        *,
        shadow: bool = False,
        report_shadow: bool = False,
        cost: Cost | None = None,
    ) -> None:
        if not limits:
            raise ValueError("a rate-limit policy needs at least one Limit")

        self.limits = tuple(_Limit(lim, shadow=shadow or lim.shadow) for lim in limits)
        self.bucket = bucket
        self.label = label or bucket
        self.cost = cost  # None: the limiter's

        # the store's arguments: a shadow limit is sent as its negative (see errorkit._stages.algorithms)
        self.args: tuple[int, ...] = tuple(
            v for lim in self.limits for v in (lim.period_us, -lim.limit if lim.shadow else lim.limit)
        )
        # (a shadow limit keeps its enforced twin's key: enforcing it later starts from what it counted)
        self.buckets = tuple(f"{bucket}:{lim.limit}/{lim.period:g}" for lim in self.limits)

        reported = [lim for lim in self.limits if report_shadow or not lim.shadow]
        self.ietf_policy = ", ".join(
            f'"{lim.name}";q={lim.limit};w={math.ceil(lim.period)}' for lim in reported
        ).encode()
        self.single = self.limits[0] if len(self.limits) == 1 and not self.limits[0].shadow else None
        self.enforces = any(not lim.shadow for lim in self.limits)  # (a policy of shadow limits refuses nothing)


class _Limit:
    """A `Limit` with its header value and period in microseconds computed once."""

    __slots__ = ("header", "limit", "name", "period", "period_us", "shadow")

    def __init__(self, limit: Limit, *, shadow: bool) -> None:
        self.limit, self.period = limit.limit, limit.period
        self.name = limit.name
        self.shadow = shadow
        self.period_us = limit.period_us
        self.header = b"%d" % limit.limit


def _weighed(weigh: Callable[[Scope], int], scope: Scope) -> int:
    """What a `cost=` function weighs a request at, refused (a 500, logged) unless a whole number of at
    least 1: a cost of 0 would count nothing, a negative one would give units back."""
    cost = weigh(scope)
    if type(cost) is not int or cost < 1:
        raise ConfigurationError(f"a rate-limit cost= function returned {cost!r}: a cost is a whole number, at least 1")
    return cost


def _first(pair: tuple[int, _Limit]) -> int:
    return pair[0]


#: `_route_policy`'s answer when no route entry names the route: the default (or plan) policy applies.
_DEFAULT = _Policy([Limit(1, 1)], "<no route entry>")
#: `_policy_of`'s answer when the workspace's plan decides: the plan resolver is asked.
_BY_PLAN = _Policy([Limit(1, 1)], "<by plan>")
