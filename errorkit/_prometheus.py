"""errorkit's metrics for Prometheus, fed by the observer hooks (`pip install 'errorkit[metrics]'`).

- `errorkit_errors_total{code, status}`: error responses sent in the app's format;
- `errorkit_rate_limit_decisions_total{policy, result}`: `allowed`, `limited`,
  `shadow_limited`, `failed_open`, `failed_closed`;
- `errorkit_rate_limit_near_limit_total{policy}`: admitted requests that left a limit 80 %
  used or more;
- `errorkit_idempotency_requests_total{outcome}`: `first_run`, `replayed`, `in_flight`,
  `mismatch`, `unreplayable`, `store_failure`;
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

import os
import weakref
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from errorkit._observer import IdempotencyOutcome, Observer, RateLimitResult, RedisFailure

#: Seconds; Redis on a LAN answers in 0.1-1 ms, errorkit's default deadline is 50 ms.
DEFAULT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class PrometheusMetrics(Observer):
    """errorkit's metrics in a prometheus-client registry (the default registry unless given).

    ```
    metrics = PrometheusMetrics()
    kit.install(app, rate_limit=..., idempotency=..., metrics=metrics)
    app.add_route("/metrics", metrics.app())  # or Route("/metrics", metrics.app())
    ```
    Several `PrometheusMetrics` on one registry share its metrics. Labels never carry a
    workspace, key or path: only codes, statuses, policy names, outcomes and node addresses.
    """

    def __init__(self, registry: Any = None, *, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        try:
            import prometheus_client
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError("PrometheusMetrics needs prometheus-client: pip install 'errorkit[metrics]'") from None
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        metrics = _metrics_of(self.registry, buckets)
        self._errors, self._decisions, self._near = metrics["errors"], metrics["decisions"], metrics["near"]
        self._idempotency, self._latency = metrics["idempotency"], metrics["latency"]
        self._failures, self._connections = metrics["failures"], metrics["connections"]
        # label children by their values: a dict read instead of prometheus-client's label checks per event
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
        child = self._children.get((code, status))
        if child is None:
            child = self._children[code, status] = self._errors.labels(code, str(status))
        child.inc()

    def rate_limit_decided(self, policy: str, result: RateLimitResult, near_limit: bool) -> None:
        self._child(self._decisions, policy, result).inc()
        if near_limit:
            self._child(self._near, policy).inc()

    def idempotency_outcome(self, outcome: IdempotencyOutcome) -> None:
        self._child(self._idempotency, outcome).inc()

    def redis_replied(self, node: str, seconds: float, commands: int) -> None:
        histogram = self._child(self._latency, node)
        for _ in range(commands):
            histogram.observe(seconds)

    def redis_failed(self, node: str, reason: RedisFailure, commands: int) -> None:
        self._child(self._failures, node, reason).inc(commands)

    def redis_connection(self, node: str, connected: bool) -> None:
        gauge = self._child(self._connections, node)
        if connected:
            gauge.inc()
        else:
            gauge.dec()

    def app(self) -> MetricsApp:
        """An ASGI app answering GET (and HEAD) with the metrics, as text or OpenMetrics (by `Accept`)."""
        return MetricsApp(self.registry)


class MetricsApp:
    """Serves a registry's metrics; in multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`), every worker's."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from prometheus_client import CollectorRegistry, exposition, multiprocess

        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # a fresh registry reading every worker's files
            registry = CollectorRegistry()
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
