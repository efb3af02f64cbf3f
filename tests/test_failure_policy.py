"""One failure policy for every stage: what each does while Redis is away, with a bounded log."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    FailurePolicy,
    Idempotency,
    KeyCache,
    KeyStore,
    Limit,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
    register_api_key,
)
from tests.support.servers import free_port, redis_server, stop

KNOWN, OTHER = "ek_one.workspace-one-1", "ek_two.workspace-two-2"
UNAVAILABLE = {
    "detail": "Service unavailable: the dependency 'redis' cannot serve requests right now; retry after 1 second.",
    "code": "service_unavailable",
    "request_id": "rid",
}


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True}, status_code=201 if request.method == "POST" else 200)


def app_with(kit: ErrorKit, keys: KeyStore, **stages: object) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await register_api_key(keys, KNOWN, workspace_id="ws_1")
        await register_api_key(keys, OTHER, workspace_id="ws_2")
        yield

    app = Starlette(routes=[Route("/x", ok, methods=["GET", "POST"])], lifespan=lifespan)
    kit.install(app, **stages)  # type: ignore[arg-type]
    return app


def test_auth_fails_open_with_keys_it_verified_recently() -> None:
    with redis_server() as server:
        store = RedisBackend(server.url)
        auth = APIKeyAuth(store, cache=KeyCache(stale_for=60))
        with TestClient(app_with(ErrorKit(), store, auth=auth)) as client:
            assert client.get("/x", headers={"X-API-Key": KNOWN}).status_code == 200
            stop(server.process)  # Redis is gone
            r = client.get("/x", headers={"X-API-Key": KNOWN, "X-Request-ID": "rid"})
            assert r.status_code == 200  # verified a moment ago: still let in
            assert client.get("/x", headers={"X-API-Key": "ek_one.wrong-secret-1"}).status_code == 401  # still checked
            r = client.get("/x", headers={"X-API-Key": OTHER, "X-Request-ID": "rid"})  # never seen by this worker
            assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", UNAVAILABLE)
        assert auth.on_failure.failures == 3


def test_auth_failing_closed_refuses_every_key_with_retry_after() -> None:
    with redis_server() as server:
        store = RedisBackend(server.url)
        auth = APIKeyAuth(store, on_failure="fail_closed")
        with TestClient(app_with(ErrorKit(), store, auth=auth)) as client:
            assert client.get("/x", headers={"X-API-Key": KNOWN}).status_code == 200
            stop(server.process)
            r = client.get("/x", headers={"X-API-Key": KNOWN, "X-Request-ID": "rid"})
            assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", UNAVAILABLE)


def test_stale_keys_expire() -> None:
    with redis_server() as server:
        store = RedisBackend(server.url)
        auth = APIKeyAuth(store, cache=KeyCache(stale_for=0.2))
        with TestClient(app_with(ErrorKit(), store, auth=auth)) as client:
            assert client.get("/x", headers={"X-API-Key": KNOWN}).status_code == 200
            stop(server.process)
            assert client.get("/x", headers={"X-API-Key": KNOWN}).status_code == 200
            asyncio.run(asyncio.sleep(0.25))
            assert client.get("/x", headers={"X-API-Key": KNOWN}).status_code == 503  # never stale indefinitely


def test_an_outage_is_logged_at_a_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    keys = MemoryBackend()
    limiter = RateLimiter(dead, limits=[Limit(10, 60)])
    idempotency = Idempotency(dead)
    app = app_with(ErrorKit(), keys, auth=APIKeyAuth(keys), rate_limit=limiter, idempotency=idempotency)
    with caplog.at_level(logging.DEBUG, logger="errorkit"), TestClient(app) as client:
        statuses = [
            client.post("/x", headers={"X-API-Key": KNOWN, "Idempotency-Key": f"k{i}"}).status_code for i in range(300)
        ]
    assert statuses == [503] * 300  # idempotency fails closed; the limiter let them through
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == ["rate limiting", "idempotency"]  # one line each
    assert (limiter.on_failure.failures, idempotency.on_failure.failures) == (300, 300)


def test_one_policy_object_shared_by_stages_logs_once_and_counts_all(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    dead = RedisBackend(f"redis://127.0.0.1:{port}/0")
    keys = MemoryBackend()
    policy = FailurePolicy("fail_open", log_interval=60)
    app = app_with(
        ErrorKit(),
        keys,
        auth=APIKeyAuth(keys),
        rate_limit=RateLimiter(dead, on_failure=policy),
        idempotency=Idempotency(dead, on_failure=policy),
    )
    with caplog.at_level(logging.WARNING, logger="errorkit"), TestClient(app) as client:
        for i in range(50):
            r = client.post("/x", headers={"X-API-Key": KNOWN, "Idempotency-Key": f"k{i}"})
            assert (r.status_code, "x-ratelimit-limit" in r.headers) == (201, False)  # both ran open
    assert len(caplog.records) == 1 and policy.failures == 100
    line = caplog.records[0].getMessage()  # the stage that failed first says what its clients get
    assert line.startswith(f"rate limiting: store 'redis' unavailable (cannot connect to Redis at 127.0.0.1:{port}: ")
    assert line.endswith(
        "); failing open: requests pass uncounted, without rate-limit headers; failures: 1 since the last report, 1 in all"
    )


def test_a_policy_checks_its_options() -> None:
    with pytest.raises(ValueError, match="'fail_open' or 'fail_closed', not 'open'"):
        FailurePolicy("open")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1 second"):
        FailurePolicy("fail_closed", retry_after=0)
