"""errorkit's metrics for Prometheus, fed by the observer hooks (`pip install 'errorkit[metrics]'`).

- `errorkit_errors_total{code, status}`: error responses sent in the app's format;
- `errorkit_rate_limit_decisions_total{policy, result}`: `allowed`, `limited`,
  `shadow_limited`, `failed_open`, `failed_closed`;
- `errorkit_rate_limit_near_limit_total{policy}`: admitted requests that left a limit 80 %
  used or more;
- `errorkit_idempotency_requests_total{outcome}`: `first_run`, `replayed`, `in_flight`,
  `mismatch`, `unreplayable`, `store_failure`;
- `errorkit_quota_decisions_total{group, result}`: creations `held` (a unit reserved),
  `exceeded` (402), `failed_open`, `failed_closed`;
- `errorkit_concurrency_decisions_total{policy, result}`: requests `admitted` (a slot taken),
  `limited` (429), `failed_open`, `failed_closed`;
- `errorkit_redis_command_duration_seconds{node}`: a histogram of each command, from its
  write to the last reply of that write;
- `errorkit_redis_failures_total{node, reason}`: commands failed: `timeout`,
  `connection_lost`, `connect`, `backoff`, `unavailable`;
- `errorkit_redis_connections{node}`: open connections (summed over live workers).

Under several worker processes, prometheus-client's multiprocess mode does the adding up:
`PROMETHEUS_MULTIPROC_DIR` names an empty directory, set before the server starts, and
`app()` then serves every worker's values whichever worker is scraped.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import weakref
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from errorkit._observe.log_context import log_extra
from errorkit._observe.observer import (
    ConcurrencyResult,
    IdempotencyOutcome,
    Observer,
    QuotaResult,
    RateLimitResult,
    RedisFailure,
)

logger = logging.getLogger("errorkit.metrics")

#: Seconds; Redis on a LAN answers in 0.1-1 ms, errorkit's default deadline is 50 ms.
DEFAULT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def _lost(exc: Exception) -> None:
    logger.error("could not record errorkit's metrics (%s); these counts are lost", exc, extra=log_extra())


class PrometheusMetrics(Observer):
    """errorkit's metrics in a prometheus-client registry (the default registry unless given).

    ```
    metrics = PrometheusMetrics()
    kit.install(app, rate_limit=..., idempotency=..., metrics=metrics)
    app.add_route("/metrics", metrics.app())  # or Route("/metrics", metrics.app())
    ```
    The per-request counts (errors, decisions, outcomes, command timings) are added up in
    plain Python and handed to prometheus-client at most every `flush_interval` seconds
    and before each scrape this process answers (`flush()`), so a request pays a dict
    update instead of a metric update (a locked write to a memory-mapped file in
    multiprocess mode); another worker's counts reach a scrape within `flush_interval`.
    Failures and connection changes are written at once. Several `PrometheusMetrics` on one
    registry share its metrics. Labels never carry a workspace, key or path.
    """

    def __init__(
        self, registry: Any = None, *, buckets: tuple[float, ...] = DEFAULT_BUCKETS, flush_interval: float = 1.0
    ) -> None:
        try:
            import prometheus_client
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError("PrometheusMetrics needs prometheus-client: pip install 'errorkit[metrics]'") from None
        if not (isinstance(flush_interval, int | float) and flush_interval > 0):
            raise ValueError(f"flush_interval is a number of seconds above 0, not {flush_interval!r}")

        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        metrics = _metrics_of(self.registry, buckets)
        self._errors = metrics["errors"]
        self._decisions = metrics["decisions"]
        self._near = metrics["near"]
        self._idempotency = metrics["idempotency"]
        self._latency = metrics["latency"]
        self._quotas = metrics["quotas"]
        self._concurrency = metrics["concurrency"]
        self._failures = metrics["failures"]
        self._connections = metrics["connections"]
        self._bounds: tuple[float, ...] = tuple(self._latency._upper_bounds)  # ends with +Inf

        self.flush_interval = flush_interval
        # label children by their values: a dict read instead of prometheus-client's label checks
        self._children: dict[tuple[Any, ...], Any] = {}
        self._counts: dict[tuple[Any, ...], int] = {}  # (metric, *labels) -> not yet flushed
        self._timings: dict[str, list[float]] = {}  # node -> per bucket, then the sum: not yet flushed
        self._timer: asyncio.TimerHandle | None = None

    guarded = False  # a failing write is caught and logged here: nothing to guard

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _count(self, key: tuple[Any, ...], amount: int = 1) -> None:
        counts = self._counts
        counts[key] = counts.get(key, 0) + amount
        if self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        try:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)
        except RuntimeError:  # no event loop (a direct call): nothing to wait for
            self.flush()

    def flush(self) -> None:
        """Hand the counts gathered so far to prometheus-client (a scrape of this process does it first).

        A failure (a full or missing multiprocess directory) is logged, and those counts are lost."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

        counts, self._counts = self._counts, {}
        timings, self._timings = self._timings, {}
        try:
            for (metric, *labels), amount in counts.items():
                self._child(metric, *labels).inc(amount)

            for node, pending in timings.items():
                histogram = self._child(self._latency, node)
                for bucket, count in zip(histogram._buckets, pending, strict=False):  # prometheus-client's values
                    if count:
                        bucket.inc(count)
                histogram._sum.inc(pending[-1])
        except Exception as exc:
            _lost(exc)

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        self._count((self._errors, code, str(status)))

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        self._count((self._decisions, policy, result))
        if near_limit:
            self._count((self._near, policy))

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        self._count((self._idempotency, outcome))

    def quota_decided(self, group: str, result: QuotaResult) -> None:
        self._count((self._quotas, group, result))

    def concurrency_decided(self, policy: str, result: ConcurrencyResult) -> None:
        self._count((self._concurrency, policy, result))

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        pending = self._timings.get(node)
        if pending is None:
            pending = self._timings[node] = [0.0] * (len(self._bounds) + 1)
        bucket = bisect.bisect_left(self._bounds, seconds)
        pending[bucket] += commands
        pending[-1] += seconds * commands

        if self._timer is None:
            self._schedule()

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        try:
            self._child(self._failures, node, reason).inc(commands)
        except Exception as exc:
            _lost(exc)

    def redis_connection(self, node: str, connected: bool) -> None:
        try:
            self._child(self._connections, node).inc(1 if connected else -1)
        except Exception as exc:
            _lost(exc)

    def app(self) -> MetricsApp:
        """An ASGI app answering GET (and HEAD) with the metrics, as text or OpenMetrics (by `Accept`)."""
        return MetricsApp(self.registry, self.flush)


class MetricsApp:
    """Serves a registry's metrics; in multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`), every worker's.

    `flush` is called first (this process's pending counts). In multiprocess mode every
    worker's files are read, whatever registry was given, on the event loop: one file per
    worker process that ever ran (restarted workers add files until the directory is wiped).
    """

    def __init__(self, registry: Any, flush: Callable[[], None] | None = None) -> None:
        self.registry = registry
        self.flush = flush

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from prometheus_client import CollectorRegistry, exposition, multiprocess

        if scope["type"] != "http":  # served as an app of its own: it has nothing to start or stop
            await _not_http(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        if self.flush is not None:
            self.flush()

        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # a fresh registry reading every worker's files
            registry = CollectorRegistry()
            # (typing needs it: prometheus-client leaves MultiProcessCollector's __init__ unannotated)
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]

        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), "")
        encoder, content_type = exposition.choose_encoder(accept)
        body = encoder(registry)
        headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]

        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


_REGISTERED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _metrics_of(registry: Any, buckets: tuple[float, ...]) -> dict[str, Any]:
    """errorkit's metrics in `registry`, registered on first use."""
    metrics = _REGISTERED.get(registry)
    if metrics is None:
        from prometheus_client import Counter, Gauge, Histogram

        metrics = _REGISTERED[registry] = {
            "errors": Counter(
                "errorkit_errors", "Error responses sent, by code and status.", ["code", "status"], registry=registry
            ),
            "decisions": Counter(
                "errorkit_rate_limit_decisions",
                "Rate-limit decisions, by policy and result.",
                ["policy", "result"],
                registry=registry,
            ),
            "near": Counter(
                "errorkit_rate_limit_near_limit",
                "Admitted requests that left a limit 80 % used or more, by policy.",
                ["policy"],
                registry=registry,
            ),
            "idempotency": Counter(
                "errorkit_idempotency_requests",
                "Requests with a valid Idempotency-Key, by outcome.",
                ["outcome"],
                registry=registry,
            ),
            "quotas": Counter(
                "errorkit_quota_decisions",
                "Plan-quota decisions on creations, by quota group and result.",
                ["group", "result"],
                registry=registry,
            ),
            "concurrency": Counter(
                "errorkit_concurrency_decisions",
                "Concurrency-limit decisions, by policy and result.",
                ["policy", "result"],
                registry=registry,
            ),
            "latency": Histogram(
                "errorkit_redis_command_duration_seconds",
                "Redis commands, from their write to the last reply of that write, by node.",
                ["node"],
                buckets=buckets,
                registry=registry,
            ),
            "failures": Counter(
                "errorkit_redis_failures",
                "Redis commands failed (StoreUnavailable), by node and reason.",
                ["node", "reason"],
                registry=registry,
            ),
            "connections": Gauge(
                "errorkit_redis_connections",
                "Open connections to Redis, by node (summed over live worker processes).",
                ["node"],
                registry=registry,
                multiprocess_mode="livesum",
            ),
        }
    return metrics


async def _not_http(scope: Scope, receive: Receive, send: Send) -> None:
    """A lifespan is acknowledged (start-up and shutdown complete); a websocket is closed."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "lifespan":
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
