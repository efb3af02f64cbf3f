"""Concurrency limits: at most N requests of one workspace in flight at once, each slot leased.

A rate limit bounds requests per period; a few slow, expensive requests can still exhaust a
service, so Stripe runs a concurrent-requests limiter beside its rate limiter. Each request
to a limited route takes a slot (one atomic store step), holds it with a lease renewed while
it runs (a third of the lease at a time), and gives it back before its response's last
message leaves, so a client that waits for its response always finds its slot free again. A
worker killed mid-request stops renewing: its slots lapse after the lease and come back.

Over the limit: 429 `too_many_concurrent_requests` (details `limit` and `in_flight`,
`Retry-After: 1`). It is deliberately not the rate limiter's code: waiting out a rate window
is the wrong advice, since the request may go again as soon as one of the workspace's own
requests finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit._common.background import Background
from errorkit._common.exceptions import ConfigurationError, Refused, StoreUnavailable
from errorkit._common.paths import PathPatterns
from errorkit._common.refusal import Refusal
from errorkit._common.unique import unique_token
from errorkit._observe.observer import ConcurrencyResult, Observer
from errorkit._stages.auth import get_principal
from errorkit._stages.failure import FailureMode, FailurePolicy
from errorkit._stages.identity import IdentityRule, TrustedProxies, identity_of
from errorkit._stages.lease import GIVE_BACK_WITHIN, renew_while_held, settle, taken
from errorkit._stages.permissions import refuse_unpermitted
from errorkit._stages.routes import HEALTH, AppRoutes, route_keys, route_of
from errorkit._stores.protocols import ConcurrencyStore, Slot


class ConcurrencyLimit:
    """At most `limit` requests of one workspace in flight (anonymous traffic: per client address).

    - `limit`: for every route (None: only the routes named in `routes`);
    - `routes`: route (`"POST /exports"` or `"/exports"`) -> its own limit, counted apart from
      the rest (None: not limited);
    - `lease`: seconds a slot lives without renewal (a killed worker's slots come back after it);
    - `retry_after`: seconds in the 429's `Retry-After`;
    - `exempt`, `identity`, `trusted_proxies`: as `RateLimiter` takes them;
    - `on_failure`: while the store cannot answer (default fail open: the request runs
      without a slot).
    """

    def __init__(
        self,
        slots: ConcurrencyStore,
        *,
        limit: int | None = None,
        routes: Mapping[str, int | None] | None = None,
        lease: float = 30.0,
        retry_after: int = 1,
        exempt: Iterable[str] = HEALTH,
        identity: IdentityRule | None = None,
        trusted_proxies: Iterable[str] = (),
        on_failure: FailurePolicy | FailureMode = "fail_open",
    ) -> None:
        keyed = route_keys(routes, "ConcurrencyLimit(routes=...)")
        for name, value in [("limit", limit), *keyed.items()]:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigurationError(
                    f"ConcurrencyLimit: a limit is a whole number, at least 1, not {value!r} ({name})"
                )
        if lease < 0.01 or retry_after < 1:
            raise ValueError(f"lease must be at least 10 ms and retry_after 1 s, not {lease!r}, {retry_after!r}")

        self.slots = slots
        self.limit = limit
        self.routes = keyed
        self.lease_ms = round(lease * 1000)
        self.give_back_within = max(GIVE_BACK_WITHIN, lease)  # (after that, the slot has lapsed anyway)
        self.retry_after = retry_after
        self.exempt = PathPatterns(exempt, "ConcurrencyLimit(exempt=...)")
        self.identity = identity
        self.proxies = TrustedProxies(trusted_proxies)
        self.on_failure = FailurePolicy.of(on_failure)
        self.observer: Observer | None = None  # set by install(): metrics, traces
        self._background = Background()

    def check_routes(self, app: AppRoutes) -> None:
        """When the app starts: every `routes=` entry and `exempt=` path names a route of the app."""
        for key in self.routes:
            app.check_key(key, "ConcurrencyLimit(routes=...)")
        app.check_paths(self.exempt.patterns, "ConcurrencyLimit(exempt=...)")

    def bucket_for(self, method: str, template: str) -> tuple[str, int] | None:
        """The bucket and limit a route's requests count against (None: not limited); a HEAD
        without an entry of its own counts as its GET (Starlette runs the GET handler for it)."""
        names = [f"{method} {template}", template]
        if method == "HEAD":
            names.insert(1, f"GET {template}")

        for name in names:
            if name in self.routes:
                limit = self.routes[name]
                return None if limit is None else (name, limit)
        return None if self.limit is None else ("*", self.limit)

    def route_refusals(self, method: str, path: str) -> list[Refusal]:
        """What this stage may refuse on a route, for its documentation."""
        if self.exempt.matches(path) or self.bucket_for(method, path) is None:
            return []

        refusals = [self._refusal(1, 1)]
        if not self.on_failure.fails_open:
            refusals.append(self.on_failure.refusal(self.slots.name))
        return refusals

    def _refusal(self, limit: int, in_flight: int) -> Refusal:
        return Refusal(
            ("too_many_concurrent_requests",),
            429,
            details={"limit": limit, "in_flight": in_flight},
            retry_after=self.retry_after,
            fallback="defaults",
        )

    async def around(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """The gateway's inner stage: take a slot, run the app, give the slot back."""
        if self.exempt.matches_request(scope):
            await app(scope, receive, send)
            return

        route = route_of(scope)
        template = "<unmatched>" if route is None else route[0]
        found = self.bucket_for(scope["method"], template)
        if found is None:
            await app(scope, receive, send)
            return

        principal = get_principal(scope)
        if principal is not None and route is not None:
            refuse_unpermitted(principal, route[1])

        bucket, limit = found
        who = identity_of(scope, principal, self.identity, self.proxies)
        token = unique_token()

        try:
            slot = await taken(
                self.slots.acquire(who, bucket, limit, token, self.lease_ms),
                _acquired,
                self._background,
                "releasing a concurrency slot",
                self.slots.release_slot,
                who,
                bucket,
                token,
            )
        except StoreUnavailable as exc:
            passes = "requests run without a slot"
            refusal = self.on_failure.failed("concurrency limiting", self.slots.name, exc, passes=passes)
            fails_open = self.on_failure.fails_open
            self._observed(bucket, "failed_open" if fails_open else "failed_closed")
            if not fails_open:
                raise Refused(refusal) from None
            await app(scope, receive, send)
            return

        if not slot.acquired:
            self._observed(bucket, "limited")
            raise Refused(self._refusal(limit, slot.in_flight))
        self._observed(bucket, "admitted")

        held = _Held(self, who, bucket, token, send)
        timer = asyncio.get_running_loop().call_later(self.lease_ms / 3000, held.renew)
        try:
            await app(scope, receive, held)
        finally:
            timer.cancel()
            if held.renewal is not None:
                held.renewal.cancel()
            await held.release()  # no whole response (an exception, a cancellation); nothing once released

    def _observed(self, bucket: str, result: ConcurrencyResult) -> None:
        if self.observer is not None:
            self.observer.concurrency_decided("default" if bucket == "*" else bucket, result)

    async def _renew(self, who: str, bucket: str, token: str) -> None:
        await renew_while_held(lambda: self.slots.renew_slot(who, bucket, token, self.lease_ms), self.lease_ms / 3000)


def _acquired(slot: Slot) -> bool:
    return slot.acquired


class _Held:
    """A request holding a slot, called as the app's send: gives the slot back before the last message."""

    __slots__ = ("bucket", "released", "renewal", "send", "stage", "token", "who")

    def __init__(self, stage: ConcurrencyLimit, who: str, bucket: str, token: str, send: Send) -> None:
        self.stage = stage
        self.who = who
        self.bucket, self.token = bucket, token
        self.send = send
        self.released = False
        self.renewal: asyncio.Task[None] | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            await self.release()
        await self.send(message)

    async def release(self) -> None:
        """Give the slot back (once; a store failure is tried again in the background, else it lapses)."""
        if self.released:
            return
        self.released = True

        stage = self.stage
        what = "releasing a concurrency slot"
        await settle(
            stage._background, stage.give_back_within, what, stage.slots.release_slot, self.who, self.bucket, self.token
        )

    def renew(self) -> None:
        """The lease timer's callback: renew the lease until the request ends."""
        self.renewal = asyncio.get_running_loop().create_task(self.stage._renew(self.who, self.bucket, self.token))
