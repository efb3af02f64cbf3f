"""Annotating the current OpenTelemetry server span, when `opentelemetry-api` is installed.

errorkit never depends on OpenTelemetry and starts no span: the server's instrumentation
(`opentelemetry-instrumentation-asgi`, FastAPI's or Starlette's) owns the span, errorkit
adds what it decided, as the HTTP semantic conventions ask:

- every error: `errorkit.error.code` (the code sent);
- a 5xx: `error.type` (the exception's qualified class for a crash, else the code), an
  `exception` event with the stack for a crash, and the span's status set to ERROR;
- the rate limiter: `errorkit.rate_limit.result` and `errorkit.rate_limit.policy`;
- idempotency: `errorkit.idempotency.outcome` (`replayed` for a replay).

Nothing is done for a span that is not recording (no SDK, or sampled out).
"""

from __future__ import annotations

import contextlib
from typing import Any

from errorkit._observe.observer import IdempotencyOutcome, Observer, RateLimitResult


class SpanAnnotator(Observer):
    """Adds errorkit's decisions to the current span (see the module's documentation)."""

    guarded = False  # OpenTelemetry's API never raises on a span

    def __init__(self) -> None:
        from opentelemetry import context, trace

        self._context = context.get_current
        self._current_span = trace.get_current_span
        self._error = trace.Status(trace.StatusCode.ERROR)

    def _recording(self) -> Any:
        """The current span if it records, else None."""
        current = self._context()
        if not current:  # no instrumentation set a span in this context: two calls instead of five
            return None
        span = self._current_span(current)
        return span if span.is_recording() else None

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        span = self._recording()
        if span is None:
            return

        span.set_attribute("errorkit.error.code", code)
        if status >= 500:
            span.set_attribute("error.type", _qualified_name(exc) if exc is not None else code)
            if exc is not None:
                with contextlib.suppress(Exception):  # a failing __str__: the event is left out, the 500 goes out
                    span.record_exception(exc)
            span.set_status(self._error)

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        if self._context():  # (on every request: the empty context's test inlined, a call fewer)
            span = self._recording()
            if span is not None:
                span.set_attributes({"errorkit.rate_limit.result": result, "errorkit.rate_limit.policy": policy})

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        if self._context():
            span = self._recording()
            if span is not None:
                span.set_attribute("errorkit.idempotency.outcome", outcome)


def span_annotator() -> SpanAnnotator | None:
    """A `SpanAnnotator` when `opentelemetry-api` can be imported, else None."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return None
    return SpanAnnotator()


def _qualified_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
