"""What errorkit tells about its work as it happens: the one interface metrics and traces listen on.

The stages, the exception handler and the Redis connection call an `Observer` at each
decision; none is called when no observer is installed (`install(metrics=...)`, and the
trace annotator when `opentelemetry-api` is importable), so an app without them pays one
`is None` test per decision. Labels are low-cardinality by construction: a policy name, a
code, a node address; never a workspace, a key or a path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Literal

from errorkit._observe.log_context import log_extra

logger = logging.getLogger("errorkit.observer")

#: How the rate limiter decided one request.
RateLimitResult = Literal["allowed", "limited", "shadow_limited", "failed_open", "failed_closed"]
#: How plan quotas decided one creation: a unit held for it, refused (402), or the store failed.
QuotaResult = Literal["held", "exceeded", "failed_open", "failed_closed"]
#: How a concurrency limit decided one request: a slot taken, refused (429), or the store failed.
ConcurrencyResult = Literal["admitted", "limited", "failed_open", "failed_closed"]
#: What idempotency did with one request that carried a valid key.
IdempotencyOutcome = Literal["first_run", "replayed", "in_flight", "mismatch", "unreplayable", "store_failure"]
#: Why Redis commands failed: no reply in time, the connection went (or was declared dead),
#: connecting failed, connecting is backing off, or Redis answered "not now" (OOM, READONLY, ...).
RedisFailure = Literal["timeout", "connection_lost", "connect", "backoff", "unavailable"]


class Observer:
    """Hooks called as errorkit works; each does nothing here: override the ones you need.

    They run on the request's path, inside the event loop: keep them short. An observer
    that may raise is wrapped in `Guarded` by `install()` (its failures are logged, never
    reach a request); errorkit's own observers, which cannot, set `guarded = False`.
    """

    guarded = True

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        """An error response left in the app's format; `exc` is the unhandled exception of a crash
        (None for an error raised or refused on purpose)."""

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        """The limiter decided a request; `near_limit`: admitted with 80 % or more of a limit used."""

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        """Idempotency handled a request that carried a valid key."""

    def quota_decided(self, group: str, result: QuotaResult) -> None:
        """Plan quotas decided a creation of a resource of `group` (for `exceeded`, the group that ran
        out, which the 402's body names only when the catalog declares a `resource` detail)."""

    def concurrency_decided(self, policy: str, result: ConcurrencyResult) -> None:
        """A concurrency limit decided a request (`policy`: its route entry, or `default`)."""

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        """`commands` sent in one write to `node` were all answered `seconds` after the write."""

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        """`commands` to `node` failed (`StoreUnavailable`) for `reason`."""

    def redis_connection(self, node: str, connected: bool) -> None:
        """A connection to `node` opened (its handshake answered) or closed."""


class Observers(Observer):
    """Several observers heard as one (metrics and the trace annotator, say), each guarded already."""

    __slots__ = ("observers",)
    guarded = False

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        for observer in self.observers:
            observer.error_sent(code, status, exc)

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        for observer in self.observers:
            observer.rate_limit_decided(policy, result, near_limit)

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        for observer in self.observers:
            observer.idempotency_outcome(outcome)

    def quota_decided(self, group: str, result: QuotaResult) -> None:
        for observer in self.observers:
            observer.quota_decided(group, result)

    def concurrency_decided(self, policy: str, result: ConcurrencyResult) -> None:
        for observer in self.observers:
            observer.concurrency_decided(policy, result)

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        for observer in self.observers:
            observer.redis_replied(node, seconds, commands)

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        for observer in self.observers:
            observer.redis_failed(node, reason, commands)

    def redis_connection(self, node: str, connected: bool) -> None:
        for observer in self.observers:
            observer.redis_connection(node, connected)


class Guarded(Observer):
    """An observer whose failures never reach a request: each is caught and logged (at most once a minute)."""

    __slots__ = ("_logged_at", "observer")
    guarded = False

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self._logged_at = float("-inf")

    def _failed(self, hook: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged_at >= 60:
            self._logged_at = now
            logger.error("observer %r failed in %s: %r", self.observer, hook, exc, extra=log_extra())

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        try:
            self.observer.error_sent(code, status, exc)
        except Exception as failure:
            self._failed("error_sent", failure)

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        try:
            self.observer.rate_limit_decided(policy, result, near_limit)
        except Exception as failure:
            self._failed("rate_limit_decided", failure)

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        try:
            self.observer.idempotency_outcome(outcome)
        except Exception as failure:
            self._failed("idempotency_outcome", failure)

    def quota_decided(self, group: str, result: QuotaResult) -> None:
        try:
            self.observer.quota_decided(group, result)
        except Exception as failure:
            self._failed("quota_decided", failure)

    def concurrency_decided(self, policy: str, result: ConcurrencyResult) -> None:
        try:
            self.observer.concurrency_decided(policy, result)
        except Exception as failure:
            self._failed("concurrency_decided", failure)

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        try:
            self.observer.redis_replied(node, seconds, commands)
        except Exception as failure:
            self._failed("redis_replied", failure)

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        try:
            self.observer.redis_failed(node, reason, commands)
        except Exception as failure:
            self._failed("redis_failed", failure)

    def redis_connection(self, node: str, connected: bool) -> None:
        try:
            self.observer.redis_connection(node, connected)
        except Exception as failure:
            self._failed("redis_connection", failure)

    def __getattr__(self, name: str) -> Any:  # the wrapped observer's own attributes (`app()`, `flush()`)
        return getattr(self.observer, name)


def combine(*observers: Observer | None) -> Observer | None:
    """One guarded observer for those given (None: there is none, and nothing is called)."""
    present = [guard(observer) for observer in observers if observer is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Observers(present)


def guard(observer: Observer) -> Observer:
    """`observer` behind a `Guarded`, unless it is one of errorkit's own (which cannot raise).

    Only a class that says `guarded = False` itself goes unguarded: a subclass overriding a hook is guarded."""
    return observer if vars(type(observer)).get("guarded", True) is False else Guarded(observer)
