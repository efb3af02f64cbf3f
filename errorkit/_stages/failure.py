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
    the last one, however many requests fail. Give several stages the same policy object
    to share one counter and one log line.
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

    def failed(self, stage: str, store: str, error: Exception) -> Refusal:
        """Record a store failure; returns the refusal to answer with when failing closed."""
        self.failures += 1

        now = time.monotonic()
        lost = isinstance(error, StoreDataLost)
        if now - self._last_logged >= self.log_interval or (lost and not self._logged_lost):
            self._logged_lost = lost
            code = None if self.fails_open else "service_unavailable"
            logger.log(
                logging.ERROR if lost else logging.WARNING,
                "%s: store %r unavailable (%s); %s; %d failures since the last report, %d in all",
                stage,
                store,
                error,
                "letting requests through" if self.fails_open else "answering 503",
                self.failures - self._logged_failures,
                self.failures,
                extra={"stage": stage, "store": store, **log_extra(code)},
            )
            self._last_logged, self._logged_failures = now, self.failures

        return self.refusal(store)

    def refusal(self, store: str) -> Refusal:
        """The 503 sent while `store` is unreachable and the stage fails closed."""
        return Refusal(
            ("service_unavailable",),
            503,
            details={"dependency": store},
            retry_after=self.retry_after,
            fallback="status",
        )

    def __repr__(self) -> str:
        return f"FailurePolicy({self.mode!r}, retry_after={self.retry_after})"
