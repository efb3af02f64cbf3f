"""Redis error replies on a real redis-server: "not now" goes through each stage's failure
policy like an outage; anything else is a formatted 500 with its request id, never a crash."""

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import hiredis
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Idempotency,
    Limit,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
    catalogs,
    register_api_key,
)
from errorkit._stores.redis.connection import Redis as Connection
from tests.support.servers import Redis, redis_server

KEY = {"X-API-Key": "ek_one.workspace-one-1"}


async def admin(url: str, *command: Any) -> Any:
    connection = Connection(url, timeout=2)
    try:
        return await connection.execute(*command)
    finally:
        await connection.close()


def build(redis_url: str, *, limiter_failure: str = "fail_open", keys_in_redis: bool = False) -> Starlette:
    """Counters and idempotency records on Redis; keys in memory unless `keys_in_redis`."""
    store = RedisBackend(redis_url)
    keys = store if keys_in_redis else MemoryBackend()

    async def orders(request: Request) -> Response:
        return JSONResponse({"ok": True}, status_code=201)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await register_api_key(keys, KEY["X-API-Key"], workspace_id="ws_1")
        yield

    app = Starlette(routes=[Route("/orders", orders, methods=["GET", "POST"])], lifespan=lifespan)
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(
        app,
        auth=APIKeyAuth(keys),
        rate_limit=RateLimiter(store, limits=[Limit(1000, 60)], on_failure=limiter_failure),  # type: ignore[arg-type]
        idempotency=Idempotency(store),
    )
    return app


UNAVAILABLE = {
    "error": {
        "code": "service_unavailable",
        "message": "A required internal dependency (database, cache, etc.) is temporarily unavailable.",
        "doc_url": "https://docs.orq.ai/errors/service_unavailable",
        "details": {"dependency": "redis"},
        "request_id": "rid",
    }
}


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A Redis marked as holding errorkit's data (as a deployment with keys in it would be)."""

    async def initialize(url: str) -> None:
        store = RedisBackend(url)
        await store.initialize()
        await store.close()

    with redis_server() as server:
        asyncio.run(initialize(server.url))
        yield server


def check_not_now(url: str) -> None:
    """Every stage on this Redis answers as its failure policy says; nothing crashes."""
    with TestClient(build(url)) as client:  # raise_server_exceptions: an escaped error fails the test
        r = client.get("/orders", headers={**KEY, "X-Request-ID": "rid"})
        assert (r.status_code, "x-ratelimit-limit" in r.headers) == (201, False)  # limiter fails open
        r = client.post("/orders", headers={**KEY, "X-Request-ID": "rid", "Idempotency-Key": "k1"})
        assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", UNAVAILABLE)  # fails closed
        assert r.headers["x-request-id"] == "rid"
    with TestClient(build(url, limiter_failure="fail_closed")) as client:
        r = client.get("/orders", headers={**KEY, "X-Request-ID": "rid"})
        assert (r.status_code, r.headers["retry-after"], r.json()) == (503, "1", UNAVAILABLE)


def test_out_of_memory_goes_through_the_failure_policy(redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(admin(redis.url, "CONFIG", "SET", "maxmemory", "1"))
    with caplog.at_level(logging.WARNING, logger="errorkit"):
        check_not_now(redis.url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # an outage, not a crash
    assert any("OOM" in r.getMessage() for r in caplog.records)
    asyncio.run(admin(redis.url, "CONFIG", "SET", "maxmemory", "0"))
    with TestClient(build(redis.url)) as client:  # and it recovers once Redis can write again
        r = client.post("/orders", headers={**KEY, "Idempotency-Key": "k2"})
        assert (r.status_code, r.headers["x-ratelimit-limit"]) == (201, "1000")


def test_a_read_only_replica_goes_through_the_failure_policy(redis: Redis) -> None:
    with redis_server() as primary:
        asyncio.run(admin(redis.url, "REPLICAOF", "127.0.0.1", str(primary.port)))
        try:
            check_not_now(redis.url)
        finally:
            asyncio.run(admin(redis.url, "REPLICAOF", "NO", "ONE"))


def test_busy_with_a_script_goes_through_the_failure_policy(redis: Redis) -> None:
    asyncio.run(admin(redis.url, "CONFIG", "SET", "busy-reply-threshold", "10"))
    blocker = socket.create_connection(("127.0.0.1", redis.port))
    blocker.sendall(hiredis.pack_command(("EVAL", "while true do end", 0)))
    time.sleep(0.05)  # the script is running: Redis answers everyone else BUSY
    try:
        check_not_now(redis.url)
    finally:
        killer = socket.create_connection(("127.0.0.1", redis.port))
        killer.sendall(hiredis.pack_command(("SCRIPT", "KILL")))
        assert killer.recv(100) == b"+OK\r\n"
        killer.close()
        blocker.close()


def test_a_missing_acl_permission_is_a_formatted_500(redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(admin(redis.url, "ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval"))
    url = f"redis://limited:pw@127.0.0.1:{redis.port}/0"
    with caplog.at_level(logging.ERROR, logger="errorkit"), TestClient(build(url, keys_in_redis=False)) as client:
        r = client.get("/orders", headers={**KEY, "X-Request-ID": "rid-500"})
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "An unexpected error occurred inside Orq.ai.",
            "doc_url": "https://docs.orq.ai/errors/internal_error",
            "request_id": "rid-500",
        }
    }
    assert r.headers["x-request-id"] == "rid-500"
    crashes = [rec for rec in caplog.records if rec.exc_info]
    assert len(crashes) == 1  # logged once
    assert "NOPERM" in str(crashes[0].exc_info[1]) and "pw" not in crashes[0].getMessage()
