"""Metrics in process: each hook's exact counts, shadow limits, Redis timings and failures on a real server."""

import asyncio
import logging
import os
import signal
import time
from typing import Any, Literal

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    Backend,
    ErrorKit,
    Idempotency,
    Limit,
    MemoryBackend,
    Observer,
    PrometheusMetrics,
    RateLimiter,
    RedisBackend,
    StoredResponses,
    StoreUnavailable,
    catalogs,
    register_api_key,
)
from errorkit._observe.observer import Guarded
from errorkit._observe.tracing import SpanAnnotator
from errorkit._stores.redis.connection import Redis as Connection
from errorkit._stores.redis.connection import Timeouts
from tests.apps.quotas import build as build_quotas
from tests.support.servers import Redis, free_port

ONE = {"X-API-Key": "ek_one.workspace-one-1"}


class Metrics:
    """A `PrometheusMetrics` on a registry of its own, read back sample by sample."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.observer = PrometheusMetrics(self.registry)

    def __call__(self, name: str, **labels: str) -> float:
        self.observer.flush()
        return self.registry.get_sample_value(name, labels) or 0.0

    def samples(self, name: str) -> dict[tuple[str, ...], float]:
        """Every sample of `name`, by its label values (sorted by label name)."""
        self.observer.flush()
        return {
            tuple(v for _, v in sorted(s.labels.items())): s.value
            for family in self.registry.collect()
            for s in family.samples
            if s.name == name
        }


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("sleep", "0")))
    return JSONResponse({"size": "x" * int(request.query_params.get("size", "0"))})


async def boom(request: Request) -> Response:
    raise RuntimeError("crash")


def app(backend: Backend, metrics: Metrics | None, *, limits: list[Limit] | None = None, **limiter: Any) -> Starlette:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    app = Starlette(routes=[Route("/work", slow, methods=["GET", "POST"]), Route("/boom", boom)])
    kit.install(
        app,
        auth=APIKeyAuth(backend),
        rate_limit=RateLimiter(backend, limits=limits or [Limit(100, 3600)], **limiter),
        idempotency=Idempotency(backend, responses=StoredResponses(max_bytes=1000)),
        metrics=metrics.observer if metrics is not None else None,
    )
    return app


def keyed(backend: Backend) -> Backend:
    asyncio.run(register_api_key(backend, ONE["X-API-Key"], workspace_id="ws_1"))
    return backend


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


# -- errors and rate-limit decisions -----------------------------------------------------------


def test_errors_are_counted_by_code_and_status(metrics: Metrics) -> None:
    with TestClient(app(keyed(MemoryBackend()), metrics), raise_server_exceptions=False) as client:
        assert client.get("/work", headers={"X-API-Key": "ek_nope.wrong-secret-1"}).status_code == 401
        assert client.get("/nowhere", headers=ONE).status_code == 404
        assert client.get("/boom", headers=ONE).status_code == 500
        assert client.get("/boom", headers=ONE).status_code == 500
        assert client.get("/work", headers=ONE).status_code == 200
    assert metrics.samples("errorkit_errors_total") == {
        ("invalid_api_key", "401"): 1,
        ("not_found", "404"): 1,
        ("internal_error", "500"): 2,
    }


def test_decisions_and_near_limit_are_counted_by_policy(metrics: Metrics) -> None:
    backend = keyed(MemoryBackend())
    limiter = {"routes": {"POST /work": [Limit(10, 3600)]}}
    with TestClient(app(backend, metrics, limits=[Limit(5, 3600)], **limiter)) as client:
        remaining = [client.get("/work", headers=ONE).headers["x-ratelimit-remaining"] for _ in range(7)]
        assert remaining == ["4", "3", "2", "1", "0", "0", "0"]
        assert client.post("/work", headers=ONE).status_code == 200
    assert metrics.samples("errorkit_rate_limit_decisions_total") == {
        ("default", "allowed"): 5,
        ("default", "limited"): 2,
        ("POST /work", "allowed"): 1,
    }
    # 80 % used: the admissions that left 1 and 0 of 5
    assert metrics.samples("errorkit_rate_limit_near_limit_total") == {("default",): 2}


def test_failed_open_and_failed_closed_are_counted(metrics: Metrics) -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    modes: tuple[tuple[Literal["fail_open", "fail_closed"], int], ...] = (("fail_open", 200), ("fail_closed", 503))
    for on_failure, status in modes:
        kit = ErrorKit()
        plain = Starlette(routes=[Route("/work", slow)])
        kit.install(plain, rate_limit=RateLimiter(dead, on_failure=on_failure), metrics=metrics.observer)
        with TestClient(plain) as client:
            assert [client.get("/work").status_code for _ in range(2)] == [status] * 2
    assert metrics.samples("errorkit_rate_limit_decisions_total") == {
        ("default", "failed_open"): 2,
        ("default", "failed_closed"): 2,
    }
    assert metrics("errorkit_errors_total", code="service_unavailable", status="503") == 2


# -- shadow limits -------------------------------------------------------------------------------


def test_a_shadow_limiter_admits_everything_and_counts_the_would_be_refusals(metrics: Metrics) -> None:
    with TestClient(app(keyed(MemoryBackend()), metrics, limits=[Limit(2, 3600)], shadow=True)) as client:
        responses = [client.get("/work", headers=ONE) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert [k for r in responses for k in r.headers if k.startswith("x-ratelimit")] == []  # nothing shown
    assert metrics.samples("errorkit_rate_limit_decisions_total") == {
        ("default", "allowed"): 2,
        ("default", "shadow_limited"): 3,
    }
    assert metrics.samples("errorkit_rate_limit_near_limit_total") == {("default",): 1}  # the 2nd left 0 of 2


def test_shadow_headers_show_a_shadow_limit_as_if_enforced(metrics: Metrics) -> None:
    limited = app(keyed(MemoryBackend()), metrics, limits=[Limit(2, 3600)], shadow=True, shadow_headers=True)
    with TestClient(limited) as client:
        responses = [client.get("/work", headers=ONE) for _ in range(4)]
    assert [r.status_code for r in responses] == [200] * 4
    assert [(r.headers["x-ratelimit-limit"], r.headers["x-ratelimit-remaining"]) for r in responses] == [
        ("2", "1"),
        ("2", "0"),
        ("2", "0"),
        ("2", "0"),
    ]
    # a would-be refusal resets when one request would fit again: 1800 s after the first arrival
    first_reset = int(responses[0].headers["x-ratelimit-reset"])
    assert [int(r.headers["x-ratelimit-reset"]) - first_reset for r in responses[2:]] == [0, 0]


def test_a_shadow_limit_beside_an_enforced_one(metrics: Metrics) -> None:
    limits = [Limit(5, 3600), Limit(2, 3600, shadow=True)]
    with TestClient(app(keyed(MemoryBackend()), metrics, limits=limits)) as client:
        responses = [client.get("/work", headers=ONE) for _ in range(7)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 2
    # the headers report the enforced limit only
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["4", "3", "2", "1", "0", "0", "0"]
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {"5"}
    assert metrics.samples("errorkit_rate_limit_decisions_total") == {
        ("default", "allowed"): 2,
        ("default", "shadow_limited"): 3,
        ("default", "limited"): 2,
    }


def test_ietf_policy_lists_shadow_limits_only_with_shadow_headers() -> None:
    limits = [Limit(5, 60, name="minute"), Limit(2, 3600, name="hour", shadow=True)]
    for shadow_headers, policy in ((False, '"minute";q=5;w=60'), (True, '"minute";q=5;w=60, "hour";q=2;w=3600')):
        limited = app(keyed(MemoryBackend()), None, limits=limits, ietf_headers=True, shadow_headers=shadow_headers)
        with TestClient(limited) as client:
            assert client.get("/work", headers=ONE).headers["ratelimit-policy"] == policy


# -- idempotency -------------------------------------------------------------------------------


def test_idempotency_outcomes_are_counted(metrics: Metrics) -> None:
    backend = keyed(MemoryBackend())
    served = app(backend, metrics)

    async def traffic() -> list[int]:
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def post(key: str, body: bytes = b"{}", query: str = "") -> int:
                headers = {**ONE, "Idempotency-Key": key}
                return (await client.post(f"/work{query}", headers=headers, content=body)).status_code

            statuses = [await post("a"), await post("a"), await post("a"), await post("a", b"[]")]
            statuses.append(await post("big", query="?size=2000"))  # done, too big to keep
            statuses.append(await post("big", query="?size=2000"))
            running = asyncio.create_task(post("slow", query="?sleep=0.3"))
            await asyncio.sleep(0.1)
            statuses.append(await post("slow", query="?sleep=0.3"))  # the first still runs
            statuses.append(await running)
            return statuses

    assert asyncio.run(traffic()) == [200, 200, 200, 422, 200, 409, 409, 200]
    assert metrics.samples("errorkit_idempotency_requests_total") == {
        ("first_run",): 3,
        ("replayed",): 2,
        ("mismatch",): 1,
        ("unreplayable",): 1,
        ("in_flight",): 1,
    }


def test_an_idempotency_store_failure_is_counted(metrics: Metrics) -> None:
    kit = ErrorKit()
    plain = Starlette(routes=[Route("/work", slow, methods=["POST"])])
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    kit.install(plain, idempotency=Idempotency(dead), metrics=metrics.observer)
    with TestClient(plain) as client:
        assert client.post("/work", headers={"Idempotency-Key": "k"}).status_code == 503
    assert metrics.samples("errorkit_idempotency_requests_total") == {("store_failure",): 1}


# -- Redis: timings, failures, connections --------------------------------------------------------


def test_every_redis_command_is_timed_and_connections_are_counted(redis: Redis, metrics: Metrics) -> None:
    node = f"127.0.0.1:{redis.port}"
    connection = Connection(redis.url, observer=metrics.observer)

    async def main() -> None:
        await asyncio.gather(*(connection.execute("INCR", "n") for _ in range(10)))  # one write of 10
        for _ in range(5):
            await connection.execute("GET", "n")
        assert metrics("errorkit_redis_connections", node=node) == 1
        await connection.close()

    asyncio.run(main())
    # the handshake (a PING) is not one of the commands: every command sent was timed once
    assert connection.commands_sent == 15
    assert metrics("errorkit_redis_command_duration_seconds_count", node=node) == 15
    assert metrics("errorkit_redis_command_duration_seconds_bucket", node=node, le="1.0") == 15
    assert 0 < metrics("errorkit_redis_command_duration_seconds_sum", node=node) < 15 * 0.05
    assert metrics("errorkit_redis_connections", node=node) == 0
    assert metrics.samples("errorkit_redis_failures_total") == {}


def test_redis_failures_are_counted_by_reason(redis: Redis, metrics: Metrics) -> None:
    node = f"127.0.0.1:{redis.port}"

    async def fails(connection: Connection, *command: str) -> None:
        with pytest.raises(StoreUnavailable):
            await connection.execute(*command)

    async def main() -> None:
        # unavailable: Redis answers "not now" (out of memory)
        connection = Connection(redis.url, observer=metrics.observer)
        await connection.execute("CONFIG", "SET", "maxmemory", "1")
        await fails(connection, "SET", "k", "v")
        await connection.execute("CONFIG", "SET", "maxmemory", "0")
        # timeout: Redis stalls past the command deadline, the connection is kept
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            await fails(connection, "GET", "k")
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        assert await connection.execute("GET", "k") is None
        assert metrics("errorkit_redis_connections", node=node) == 1
        # connection_lost: the server dies with a command pending
        patient = Connection(redis.url, timeout=Timeouts(command=5.0), observer=metrics.observer)
        assert await patient.execute("PING") == b"PONG"
        assert metrics("errorkit_redis_connections", node=node) == 2
        os.kill(redis.process.pid, signal.SIGSTOP)
        pending = asyncio.ensure_future(patient.execute("GET", "k"))
        await asyncio.sleep(0.2)
        os.kill(redis.process.pid, signal.SIGKILL)
        redis.process.wait()
        with pytest.raises(StoreUnavailable, match="connection to Redis lost"):
            await pending
        # connect, then backoff: nothing listens any more
        await fails(patient, "GET", "k")
        await fails(patient, "GET", "k")
        await connection.close()
        await patient.close()

    asyncio.run(main())
    assert metrics.samples("errorkit_redis_failures_total") == {
        (node, "unavailable"): 1,
        (node, "timeout"): 1,
        (node, "connection_lost"): 1,
        (node, "connect"): 1,
        (node, "backoff"): 1,
    }
    assert metrics("errorkit_redis_connections", node=node) == 0


def test_install_reports_the_stores_connections_to_the_metrics(redis: Redis, metrics: Metrics) -> None:
    backend = keyed(RedisBackend(redis.url))
    asyncio.run(backend.initialize())
    with TestClient(app(backend, metrics)) as client:
        assert client.post("/work", headers={**ONE, "Idempotency-Key": "k"}).status_code == 200
        assert client.post("/work", headers={**ONE, "Idempotency-Key": "k"}).status_code == 200
    node = f"127.0.0.1:{redis.port}"
    assert metrics("errorkit_redis_command_duration_seconds_count", node=node) >= 4  # key, claim, complete, claim
    assert metrics.samples("errorkit_idempotency_requests_total") == {("first_run",): 1, ("replayed",): 1}


def test_without_metrics_nothing_observes() -> None:
    backend = RedisBackend("redis://127.0.0.1:6379/0")
    limiter, idempotency = RateLimiter(backend), Idempotency(backend)
    kit = ErrorKit()
    kit.install(Starlette(), auth=APIKeyAuth(backend), rate_limit=limiter, idempotency=idempotency, tracing=False)
    assert (kit.handler.observer, limiter.observer, idempotency.observer, backend.redis.observer) == (None,) * 4
    traced = ErrorKit()
    traced.install(Starlette(), rate_limit=RateLimiter(MemoryBackend()))
    assert isinstance(traced.handler.observer, SpanAnnotator)  # opentelemetry-api is installed here; errorkit's own
    mine = ErrorKit()  # an observer of the app's own is guarded: its failures never reach a request
    mine.install(Starlette(), metrics=Failing(), tracing=False)
    assert isinstance(mine.handler.observer, Guarded) and isinstance(mine.handler.observer.observer, Failing)


# -- the /metrics app ------------------------------------------------------------------------------


def test_the_metrics_app_serves_text_openmetrics_and_refuses_other_methods(metrics: Metrics) -> None:
    with TestClient(app(keyed(MemoryBackend()), metrics)) as client:
        client.get("/work", headers=ONE)
    kit = ErrorKit()
    served = Starlette(routes=[Route("/metrics", metrics.observer.app())])
    kit.install(served)
    with TestClient(served) as client:
        text = client.get("/metrics")
        assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert 'errorkit_rate_limit_decisions_total{policy="default",result="allowed"} 1.0' in text.text.splitlines()
        open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert open_metrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert open_metrics.text.endswith("# EOF\n")
        head = client.head("/metrics")
        assert (head.status_code, head.content, head.headers["content-length"]) == (
            200,
            b"",
            str(len(text.content)),
        )
        refused = client.post("/metrics")
        assert (refused.status_code, refused.headers["allow"], refused.json()["code"]) == (
            405,
            "GET, HEAD",
            "method_not_allowed",
        )


def test_shadow_limits_ride_on_the_idempotency_claim(redis: Redis, metrics: Metrics) -> None:
    backend = keyed(RedisBackend(redis.url))
    asyncio.run(backend.initialize())
    served = app(backend, metrics, limits=[Limit(1, 3600)], shadow=True)
    with TestClient(served) as client:
        statuses = [client.post("/work", headers={**ONE, "Idempotency-Key": f"k{i}"}).status_code for i in range(3)]
    assert statuses == [200] * 3
    assert metrics.samples("errorkit_rate_limit_decisions_total") == {
        ("default", "allowed"): 1,
        ("default", "shadow_limited"): 2,
    }
    assert metrics.samples("errorkit_idempotency_requests_total") == {("first_run",): 3}
    assert metrics("errorkit_redis_failures_total", node=f"127.0.0.1:{redis.port}", reason="timeout") == 0


def test_counts_wait_in_process_until_flushed() -> None:
    metrics = Metrics()
    metrics.observer.flush_interval = 0.05
    with TestClient(app(keyed(MemoryBackend()), metrics)) as client:
        assert client.get("/work", headers=ONE).status_code == 200
        assert (
            metrics.registry.get_sample_value(
                "errorkit_rate_limit_decisions_total", {"policy": "default", "result": "allowed"}
            )
            is None
        )
        time.sleep(0.3)  # the flush timer ran on the app's event loop
        assert (
            metrics.registry.get_sample_value(
                "errorkit_rate_limit_decisions_total", {"policy": "default", "result": "allowed"}
            )
            == 1
        )


class Failing(Observer):
    """An observer that breaks on every event (a full disk under multiprocess mode, a bug)."""

    def __getattribute__(self, name: str) -> Any:
        if name in (
            "error_sent",
            "rate_limit_decided",
            "idempotency_outcome",
            "redis_replied",
            "redis_failed",
            "redis_connection",
        ):

            def broken(*args: Any) -> None:
                raise OSError(28, "No space left on device")

            return broken
        return super().__getattribute__(name)


def test_an_observer_that_fails_never_reaches_a_request(redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    backend = keyed(RedisBackend(redis.url))
    asyncio.run(backend.initialize())
    served = app(backend, None)
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    served = Starlette(routes=[Route("/work", slow, methods=["GET", "POST"]), Route("/boom", boom)])
    kit.install(served, auth=APIKeyAuth(backend), rate_limit=RateLimiter(backend), metrics=Failing())
    with (
        caplog.at_level(logging.ERROR, logger="errorkit.observer"),
        TestClient(served, raise_server_exceptions=False) as client,
    ):
        assert client.get("/work", headers=ONE).status_code == 200
        crash = client.get("/boom", headers=ONE)
        assert (crash.status_code, crash.json()["code"]) == (500, "internal_error")
        os.kill(redis.process.pid, signal.SIGSTOP)  # Redis answers late: the failure hook breaks too
        try:
            assert client.get("/work", headers=ONE).status_code == 200  # failed open, within the deadline
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
    failures = [r for r in caplog.records if r.name == "errorkit.observer"]
    assert len(failures) >= 1 and all("No space left on device" in r.getMessage() for r in failures)
    assert len(failures) <= 2  # at most once a minute per guarded observer (the stages' and the stores')


def test_an_observer_attached_to_an_open_connection_counts_it(redis: Redis, metrics: Metrics) -> None:
    node = f"127.0.0.1:{redis.port}"
    connection = Connection(redis.url)

    async def main() -> None:
        await connection.execute("PING")
        connection.observe(metrics.observer)
        assert metrics("errorkit_redis_connections", node=node) == 1
        connection.observe(None)
        assert metrics("errorkit_redis_connections", node=node) == 0
        connection.observe(metrics.observer)
        await connection.close()
        assert metrics("errorkit_redis_connections", node=node) == 0

    asyncio.run(main())


def test_a_failed_wait_for_a_key_in_use_is_idempotencys_failure_not_the_limiters(metrics: Metrics) -> None:
    class Flaky(MemoryBackend):
        """Once `failing`, the next claim answers and the later ones fail (the wait for a key in use meets an outage)."""

        failing = False
        answered = 0

        async def claim(self, *args: Any, **kwargs: Any) -> Any:
            if self.failing:
                self.answered += 1
                if self.answered > 1:
                    raise StoreUnavailable("down")
            return await super().claim(*args, **kwargs)

    store, gate = Flaky(), asyncio.Event()

    async def work(request: Request) -> Response:
        await gate.wait()
        return JSONResponse({"ok": True})

    served = Starlette(routes=[Route("/w", work, methods=["POST"])])
    limiter = RateLimiter(store, limits=[Limit(100, 60)], on_failure="fail_open")
    ErrorKit(catalog=catalogs.DETAIL_API).install(
        served, rate_limit=limiter, idempotency=Idempotency(store, wait=0.5), metrics=metrics.observer
    )

    async def main() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://t") as client:
            headers = {"Idempotency-Key": "k1"}
            first = asyncio.create_task(client.post("/w", headers=headers, content=b"x"))
            await asyncio.sleep(0.05)
            store.failing = True  # the second finds the key in use (counted, claimed in one step), then waits
            second = asyncio.create_task(client.post("/w", headers=headers, content=b"x"))
            await asyncio.sleep(0.2)
            gate.set()
            await first
            return (await second).status_code

    assert asyncio.run(main()) == 503  # idempotency fails closed; the limiter had admitted it
    assert metrics.samples("errorkit_rate_limit_decisions_total") == {("default", "allowed"): 2}
    assert metrics.samples("errorkit_idempotency_requests_total") == {("first_run",): 1, ("store_failure",): 1}


def test_only_errorkits_own_observers_go_unguarded() -> None:
    from errorkit._observe.observer import guard

    class Tweaked(PrometheusMetrics):  # overrides a hook: no longer errorkit's own code
        def error_sent(self, code: str, status: int, exc: BaseException | None) -> None:
            raise OSError("mine")

    own = PrometheusMetrics(CollectorRegistry())
    assert guard(own) is own and guard(SpanAnnotator()).__class__ is SpanAnnotator
    tweaked = guard(Tweaked(CollectorRegistry()))
    assert isinstance(tweaked, Guarded)
    tweaked.error_sent("x", 500, None)  # caught and logged, not raised
    with pytest.raises(ValueError, match="flush_interval is a number of seconds above 0"):
        PrometheusMetrics(CollectorRegistry(), flush_interval=0)


def test_quota_and_concurrency_decisions_are_counted(metrics: Metrics) -> None:
    """Every stage hears the same observer: a creation held, one over the plan, a slot taken, one refused."""
    app = build_quotas(MemoryBackend(), concurrency=1, metrics=metrics.observer)
    dev = {"Authorization": "Bearer ek_dev.developer-secret-1"}

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            created = [(await client.post("/agents", headers=dev)).status_code for _ in range(4)]
            holding = asyncio.ensure_future(client.post("/exports?sleep=0.3", headers=dev))
            await asyncio.sleep(0.1)
            refused = (await client.post("/exports?sleep=0", headers=dev)).status_code
            return [*created, refused, (await holding).status_code]

    with TestClient(app):  # (its lifespan registers the keys)
        assert asyncio.run(main()) == [201, 201, 201, 402, 429, 200]
    assert metrics.samples("errorkit_quota_decisions_total") == {("Agents", "held"): 3, ("Agents", "exceeded"): 1}
    assert metrics.samples("errorkit_concurrency_decisions_total") == {
        ("/exports", "admitted"): 1,
        ("/exports", "limited"): 1,
    }


def test_the_metrics_app_served_alone_starts_and_stops_with_the_lifespan() -> None:
    """`uvicorn module:metrics_app` runs the lifespan protocol against it: it completes both."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics.error_sent("not_found", 404, None)
    with TestClient(metrics.app()) as client:  # (`with`: the lifespan start-up and shutdown)
        answer = client.get("/")
    assert answer.status_code == 200
    assert [line for line in answer.text.splitlines() if line.startswith("errorkit_errors_total{")] == [
        'errorkit_errors_total{code="not_found",status="404"} 1.0'
    ]
