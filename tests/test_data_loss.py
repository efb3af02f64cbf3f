"""A Redis that lost errorkit's data answers 503, never 401 and never a second run (real restarts)."""

import asyncio
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Idempotency,
    RedisBackend,
    StoreDataLost,
    catalogs,
    register_api_key,
)
from errorkit._stores.redis.connection import Redis
from tests.support.servers import BASE_ARGS, free_port, redis_process

KEY = "ek_lost.lost-secret-1"
UNKNOWN = "ek_never.never-secret-1"


def app_on(backend: RedisBackend, effects: Counter[str]) -> Starlette:
    """Auth (failing closed: no stale keys to hide the loss) and idempotency on one Redis."""

    async def whoami(request: Request) -> Response:
        return JSONResponse({"workspace": request.user.workspace_id})

    async def orders(request: Request) -> Response:
        effects["orders"] += 1
        return JSONResponse({"order": effects["orders"]}, status_code=201)

    app = Starlette(routes=[Route("/whoami", whoami), Route("/orders", orders, methods=["POST"])])
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    kit.install(app, auth=APIKeyAuth(backend, on_failure="fail_closed"), idempotency=Idempotency(backend))
    return app


def unavailable(request_id: str) -> dict[str, object]:
    return {
        "error": {
            "code": "service_unavailable",
            "message": "A required internal dependency (database, cache, etc.) is temporarily unavailable.",
            "doc_url": "https://docs.orq.ai/errors/service_unavailable",
            "details": {"dependency": "redis"},
            "request_id": request_id,
        }
    }


class RestartableRedis:
    """A redis-server without persistence on a fixed port, stopped and started by its PID."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.port, self.workdir, self.extra = free_port(), workdir, extra
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._running: ExitStack | None = None

    def start(self) -> None:
        self._running = ExitStack()
        args = ["--port", str(self.port), "--dir", str(self.workdir), *BASE_ARGS, *self.extra]
        self._running.enter_context(redis_process(args, self.port, self.workdir))

    def stop(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None


@contextmanager
def restartable_redis(*extra: str) -> Iterator[RestartableRedis]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RestartableRedis(Path(tmp), *extra)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def test_an_emptied_redis_answers_503_until_the_keys_are_back(caplog: pytest.LogCaptureFixture) -> None:
    """Restarted without persistence: valid keys are 503 (not 401), a used idempotency key is not run again."""
    effects: Counter[str] = Counter()
    with restartable_redis() as server:

        async def main() -> None:
            backend = RedisBackend(server.url)
            app = app_on(backend, effects)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                await register_api_key(backend, KEY, workspace_id="ws_1")
                assert (await client.get("/whoami", headers={"X-API-Key": KEY})).json() == {"workspace": "ws_1"}
                order = {"X-API-Key": KEY, "Idempotency-Key": "order-1"}
                first_run = await client.post("/orders", json={}, headers=order)
                assert (first_run.status_code, first_run.json()) == (201, {"order": 1})

                server.stop()  # and start again with nothing: no persistence
                server.start()
                for token, rid in ((KEY, "r-valid"), (UNKNOWN, "r-unknown")):
                    r = await client.get("/whoami", headers={"X-API-Key": token, "X-Request-ID": rid})
                    assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", unavailable(rid))
                retry = await client.post("/orders", json={}, headers={**order, "X-Request-ID": "r-retry"})
                # the key may not reach the idempotency stage: auth is refused first; ask it directly too
                assert (retry.status_code, retry.json()) == (503, unavailable("r-retry"))
                with pytest.raises(StoreDataLost):
                    await backend.claim("ws_1", "order-1", b"fp", "owner", 30_000)
                assert effects["orders"] == 1  # nothing ran a second time

                await register_api_key(backend, KEY, workspace_id="ws_1")  # the keys are back
                assert (await client.get("/whoami", headers={"X-API-Key": KEY})).status_code == 200
                r = await client.get("/whoami", headers={"X-API-Key": UNKNOWN})
                assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")
            await backend.close()

        with caplog.at_level(logging.ERROR, logger="errorkit.store"):
            asyncio.run(main())
    lost = [r for r in caplog.records if r.levelno == logging.ERROR and "lost errorkit's data" in r.getMessage()]
    assert {r.getMessage().split(":", 1)[0] for r in lost} == {"authentication"}


def test_idempotency_alone_needs_a_marked_redis_and_refuses_after_a_flush(caplog: pytest.LogCaptureFixture) -> None:
    """No keys in Redis: `initialize()` marks it; FLUSHALL (or eviction) then refuses, not runs again."""
    effects: Counter[str] = Counter()
    described = []
    with restartable_redis() as server:

        async def main() -> None:
            backend = RedisBackend(server.url)
            described.append(str(backend))

            async def orders(request: Request) -> Response:
                effects["orders"] += 1
                return JSONResponse({"order": effects["orders"]}, status_code=201)

            app = Starlette(routes=[Route("/orders", orders, methods=["POST"])])
            ErrorKit(catalog=catalogs.ENVELOPE_API).install(app, idempotency=Idempotency(backend))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

                async def post(request_id: str) -> httpx.Response:
                    headers = {"Idempotency-Key": "order-1", "X-Request-ID": request_id}
                    return await client.post("/orders", json={}, headers=headers)

                r = await post("r-unmarked")  # a Redis errorkit never wrote to: it cannot vouch for the key
                assert (r.status_code, r.json()) == (503, unavailable("r-unmarked"))
                assert await backend.initialize() == 1
                assert await backend.initialize() == 0
                r = await post("r-first")
                assert (r.status_code, r.json(), "idempotent-replayed" in r.headers) == (201, {"order": 1}, False)
                r = await post("r-replay")
                assert (r.status_code, r.json(), r.headers["idempotent-replayed"]) == (201, {"order": 1}, "true")

                redis = Redis(server.url)
                assert await redis.execute("FLUSHALL") == b"OK"
                await redis.close()
                r = await post("r-flushed")
                assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", unavailable("r-flushed"))
                assert effects["orders"] == 1

                assert await backend.initialize() == 1  # an operator adopts the Redis as it is now:
                r = await post("r-adopted")  # the record is gone, so the request runs again
                assert (r.status_code, r.json()) == (201, {"order": 2})
            await backend.close()

        with caplog.at_level(logging.WARNING, logger="errorkit.store"):
            asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # one line per log interval, however many requests fail
    assert errors[0].startswith(
        "idempotency: store 'redis' unavailable (Redis holds neither an idempotency record nor errorkit's "
        "dataset marker: it lost errorkit's data (a restart without persistence, FLUSHALL, eviction) or was "
        "never initialized; each stage answers as its failure policy says until"
    )
    marked = [r.getMessage() for r in caplog.records if r.getMessage().startswith("marked")]
    assert marked == [f"marked {described[0]} as holding errorkit's data (1 dataset marker written)"] * 2


def test_initialize_warns_when_redis_may_evict_errorkit_keys(caplog: pytest.LogCaptureFixture) -> None:
    with restartable_redis("--maxmemory-policy", "allkeys-lru") as server:
        backend = RedisBackend(server.url)

        async def main() -> list[str]:
            with caplog.at_level(logging.WARNING, logger="errorkit.store"):
                await backend.initialize()
                warned = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
                await backend.redis.execute("CONFIG", "SET", "maxmemory-policy", "volatile-lru")  # keys have no TTL
                await backend.initialize()
                warned += [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()][1:]
            await backend.close()
            return warned

        assert asyncio.run(main()) == [
            f"{backend} runs with maxmemory-policy allkeys-lru: Redis "
            "may evict API keys and idempotency records when full; set noeviction "
            "(see https://errorkit.github.io/errorkit/guides/redis/#what-errorkit-needs-from-redis)"
        ]


def test_a_claim_lost_with_its_count_still_answers_the_counts_headers(redis: Any) -> None:
    """Counted and claimed in one step on a Redis without errorkit's data: the count stands, so the
    503 carries the rate-limit headers the count made, and the next request sees it."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from errorkit import ErrorKit, Idempotency, RateLimiter, RedisBackend

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok", status_code=201)

    backend = RedisBackend(redis.url)
    app = Starlette(routes=[Route("/orders", ok, methods=["GET", "POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(backend, limits="4/minute"), idempotency=Idempotency(backend))
    with TestClient(app) as client:
        lost = client.post("/orders", headers={"Idempotency-Key": "k1"})
        after = client.get("/orders")
    assert (lost.status_code, lost.headers["x-ratelimit-limit"], lost.headers["x-ratelimit-remaining"]) == (
        503,
        "4",
        "3",
    )
    assert (after.status_code, after.headers["x-ratelimit-remaining"]) == (201, "2")
