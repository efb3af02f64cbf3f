"""What errorkit tells about its work as it happens: the one interface metrics and traces listen on.

The stages, the exception handler and the Redis connection call an `Observer` at each
decision; none is called when no observer is installed (`install(metrics=...)`, and the
trace annotator when `opentelemetry-api` is importable), so an app without them pays one
`is None` test per decision. Labels are low-cardinality by construction: a policy name, a
code, a node address; never a workspace, a key or a path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

#: How the rate limiter decided one request.
RateLimitResult = Literal["allowed", "limited", "shadow_limited", "failed_open", "failed_closed"]
#: What idempotency did with one request that carried a valid key.
IdempotencyOutcome = Literal["first_run", "replayed", "in_flight", "mismatch", "unreplayable", "store_failure"]
#: Why Redis commands failed: no reply in time, the connection went (or was declared dead),
#: connecting failed, connecting is backing off, or Redis answered "not now" (OOM, READONLY, ...).
RedisFailure = Literal["timeout", "connection_lost", "connect", "backoff", "unavailable"]


class Observer:
    """Hooks called as errorkit works; each does nothing here: override the ones you need.

    They run on the request's path, inside the event loop: keep them short and never let
    them raise.
    """

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        """An error response left in the app's format; `exc` is the unhandled exception of a crash
        (None for an error raised or refused on purpose)."""

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        """The limiter decided a request; `near_limit`: admitted with 80 % or more of a limit used."""

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        """Idempotency handled a request that carried a valid key."""

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        """`commands` sent in one write to `node` were all answered `seconds` after the write."""

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        """`commands` to `node` failed (`StoreUnavailable`) for `reason`."""

    def redis_connection(self, node: str, connected: bool) -> None:
        """A connection to `node` opened (its handshake answered) or closed."""


class Observers(Observer):
    """Several observers heard as one (metrics and the trace annotator, say)."""

    __slots__ = ("observers",)

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

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        for observer in self.observers:
            observer.redis_replied(node, seconds, commands)

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        for observer in self.observers:
            observer.redis_failed(node, reason, commands)

    def redis_connection(self, node: str, connected: bool) -> None:
        for observer in self.observers:
            observer.redis_connection(node, connected)


def combine(*observers: Observer | None) -> Observer | None:
    """One observer for those given (None: there is none, and nothing is called)."""
    present = [observer for observer in observers if observer is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Observers(present)
