"""One failure policy for every stage: what to do while the store cannot answer."""

from __future__ import annotations

import logging
import time
from typing import Literal

from errorkit._common.exceptions import StoreDataLost
from errorkit._common.refusal import Refusal
from errorkit._observe.log_context import log_extra

FailureMode = Literal["fail_open", "fail_closed"]
logger = logging.getLogger("errorkit.store")


class FailurePolicy:
    """Fail open or closed while a store is unavailable; count failures; log at a bounded rate.

    - `"fail_closed"`: refuse with 503 `service_unavailable` naming the store, with
      `Retry-After: retry_after`;
    - `"fail_open"`: let the request through as each stage defines it (the limiter counts
      nothing, idempotency runs the request unguarded, auth accepts keys it verified in
      the last `stale_for` seconds of its own and refuses the others as closed would).

    At most one log line per `log_interval` seconds per policy (a warning; an error when
    the store lost its data, `StoreDataLost`, logged at once when it follows other kinds), with the failures since
    the last one, however many requests fail. It says what clients get: the stage's `passes`
    when failing open, the 503 when failing closed. Give several stages the same policy object
    to share one counter and one log line.

    The 503 names the store in `details.dependency` and in its message, the one field every
    body shape shows: "Service unavailable: the dependency 'redis' cannot serve requests right
    now; retry after 1 second." The name is the store's `name` ("redis", "memory"), never its
    URL: clients learn which kind of dependency is away, never an address or a password.
    """

    __slots__ = ("_last_logged", "_logged_failures", "_logged_lost", "failures", "log_interval", "mode", "retry_after")

    def __init__(self, mode: FailureMode = "fail_closed", *, retry_after: int = 1, log_interval: float = 5.0) -> None:
        if mode not in ("fail_open", "fail_closed"):
            raise ValueError(f"a failure policy is 'fail_open' or 'fail_closed', not {mode!r}")
        if retry_after < 1:
            raise ValueError(f"retry_after must be at least 1 second, not {retry_after!r}")

        self.mode = mode
        self.retry_after = retry_after
        self.log_interval = log_interval
        self.failures = 0
        self._logged_failures = 0
        self._last_logged = float("-inf")
        self._logged_lost = False

    @classmethod
    def of(cls, policy: FailurePolicy | FailureMode) -> FailurePolicy:
        """A policy from a stage option: an object as is, a mode name as a new policy."""
        return policy if isinstance(policy, FailurePolicy) else cls(policy)

    @property
    def fails_open(self) -> bool:
        return self.mode == "fail_open"

    @property
    def answer(self) -> str:
        """The 503 in words, for log lines: "503 service_unavailable with Retry-After: 1"."""
        return f"503 service_unavailable with Retry-After: {self.retry_after}"

    def outcome(self, passes: str) -> str:
        """What clients get while a stage fails: `passes` (the stage's own words) when failing open."""
        return f"failing open: {passes}" if self.fails_open else f"failing closed: clients get {self.answer}"

    def failed(self, stage: str, store: str, error: Exception, *, passes: str = "requests pass") -> Refusal:
        """Record a store failure; returns the refusal to answer with when failing closed.

        `passes` says what the stage lets through when failing open ("requests pass uncounted,
        without rate-limit headers"), for the log line.
        """
        self.failures += 1

        now = time.monotonic()
        lost = isinstance(error, StoreDataLost)
        if now - self._last_logged >= self.log_interval or (lost and not self._logged_lost):
            self._logged_lost = lost
            code = None if self.fails_open else "service_unavailable"
            logger.log(
                logging.ERROR if lost else logging.WARNING,
                "%s: store %r unavailable (%s); %s; failures: %d since the last report, %d in all",
                stage,
                store,
                error,
                self.outcome(passes),
                self.failures - self._logged_failures,
                self.failures,
                extra={"stage": stage, "store": store, **log_extra(code)},
            )
            self._last_logged, self._logged_failures = now, self.failures

        return self.refusal(store)

    def refusal(self, store: str) -> Refusal:
        """The 503 sent while `store` is unreachable and the stage fails closed."""
        seconds = f"{self.retry_after} second{'' if self.retry_after == 1 else 's'}"
        return Refusal(
            ("service_unavailable",),
            503,
            details={"dependency": store},
            retry_after=self.retry_after,
            fallback="status",
            message=f"Service unavailable: the dependency {store!r} cannot serve requests right now; "
            f"retry after {seconds}.",
        )

    def __repr__(self) -> str:
        return f"FailurePolicy({self.mode!r}, retry_after={self.retry_after})"
