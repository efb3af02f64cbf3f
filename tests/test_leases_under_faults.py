"""Nothing held past a lease, nothing counted for nobody: quota units, concurrency slots and
idempotency claims under real faults (a graceful shutdown that cancels requests, a worker killed
with SIGKILL, a Redis stalled with SIGSTOP past `dead_after`), on uvicorn and a real redis-server.

The app is `tests.apps.quotas` (Developer plan: 3 agents; `POST /exports` limited per workspace);
the state is read straight from Redis: units counted and held, live slots, claims.
"""

import asyncio
import os
import signal
import time
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import ErrorKit, Idempotency, RedisBackend
from errorkit._stores.redis.connection import Redis as Connection
from tests.support.servers import Redis, Uvicorn, uvicorn

DEV = {"Authorization": "Bearer ek_dev.developer-secret-1"}


def served(redis: Redis, *options: str, **env: str) -> AbstractContextManager[Uvicorn]:
    env = {"EK_QUOTA_APP": "1", "REDIS_URL": redis.url, **env}
    return uvicorn("tests.apps.quotas:app", env=env, options=options)


@dataclass(frozen=True)
class State:
    agents: int  # units of the Agents group, counted and held
    exports: int  # live slots of POST /exports
    claims: tuple[bool, ...]  # whether each idempotency key asked about has a record


def state(redis: Redis, *keys: str) -> State:
    """What ws_dev holds in Redis right now."""

    async def read() -> State:
        store = RedisBackend(redis.url, timeout=1.0)
        try:
            (agents,) = await store.usage("ws_dev", ["Agents"])
            now, _ = await store.redis.execute("TIME")
            exports = await store.redis.execute(
                "ZCOUNT", "errorkit:cc:{ws:ws_dev}:/exports", f"({int(now) * 1000}", "+inf"
            )
            records = [store._record("ws:ws_dev", f"ek_dev\0{key}") for key in keys]
            claims = tuple([bool(await store.redis.execute("EXISTS", record)) for record in records])
            return State(agents, exports, claims)
        finally:
            await store.close()

    return asyncio.run(read())


def wait_for(redis: Redis, expected: State, within: float, *keys: str) -> float:
    """Seconds until Redis shows `expected` (polled every 20 ms); fails with what it shows after `within`."""
    start = time.monotonic()
    while (found := state(redis, *keys)) != expected:
        assert time.monotonic() - start < within, f"{found} after {within} s, expected {expected}"
        time.sleep(0.02)
    return time.monotonic() - start


async def send(url: str, requests: list[tuple[str, dict[str, str], bytes]]) -> list[int | str]:
    """POSTs all at once, each on its own connection; a status, or the error that replaced it."""
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        answers = await asyncio.gather(
            *(client.post(path, headers=headers, content=body) for path, headers, body in requests),
            return_exceptions=True,
        )
    return [a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers]


def test_a_graceful_shutdown_gives_back_what_the_requests_it_cancels_took(redis: Redis) -> None:
    keyed = {**DEV, "Idempotency-Key": "deploy-1"}
    with served(redis, "--timeout-graceful-shutdown", "1") as server:
        assert state(redis, "deploy-1") == State(0, 0, (False,))

        async def deploy() -> list[int | str]:
            running = asyncio.ensure_future(
                send(server.url, [("/agents", keyed, b"sleep:5"), ("/exports?sleep=5", DEV, b"")])
            )
            await asyncio.to_thread(wait_for, redis, State(1, 1, (True,)), 5, "deploy-1")  # both hold
            os.kill(server.process.pid, signal.SIGTERM)  # a rolling deploy: 1 s of grace, then cancelled
            return await running

        answers = asyncio.run(deploy())
        assert server.process.wait(timeout=15) == -signal.SIGTERM  # (uvicorn re-raises the signal once shut down)
        assert "Cancel 2 running task(s), timeout graceful shutdown exceeded" in server.output()

    assert answers == [500, 500]  # uvicorn answers for the requests it cancelled
    assert state(redis, "deploy-1") == State(0, 0, (False,))  # the unit, the slot and the claim: given back

    with served(redis) as server:  # the next version: the retry runs at once, and counts once
        assert asyncio.run(send(server.url, [("/agents", keyed, b"sleep:5")])) == [201]
        assert state(redis, "deploy-1") == State(1, 0, (True,))


def test_a_killed_worker_holds_nothing_past_its_leases_and_a_retry_counts_once(redis: Redis) -> None:
    leases = {"EK_QUOTA_LEASE": "2", "EK_IDEMPOTENCY_LEASE": "2", "EK_LEASE": "2"}
    keyed = {**DEV, "Idempotency-Key": "killed-1"}
    with served(redis, **leases) as server:

        async def crash() -> list[int | str]:
            running = asyncio.ensure_future(
                send(
                    server.url,
                    [("/agents", keyed, b"sleep:3"), ("/agents", DEV, b"sleep:30"), ("/exports?sleep=30", DEV, b"")],
                )
            )
            await asyncio.to_thread(wait_for, redis, State(2, 1, (True,)), 5, "killed-1")
            os.kill(server.process.pid, signal.SIGKILL)
            return await running

        assert asyncio.run(crash()) == ["RemoteProtocolError"] * 3
        killed_at = time.monotonic()
        assert state(redis, "killed-1") == State(2, 1, (True,))  # held, within the leases
        wait_for(redis, State(0, 0, (False,)), 4, "killed-1")
        lapsed = time.monotonic() - killed_at
        print(f"free again {lapsed:.2f} s after the kill")  # (the README's figure; shown with -s)
        assert 1.0 < lapsed < 4  # renewed every 2/3 s, so lapsed 1.3 to 2 s after

    with served(redis, **leases) as server:  # the client retries with the same key: one unit, not two
        assert asyncio.run(send(server.url, [("/agents", keyed, b"sleep:3")])) == [201]
        assert state(redis, "killed-1") == State(1, 0, (True,))


@pytest.mark.parametrize(
    ("stall", "leases"),
    [(2.0, "30"), (5.0, "4")],  # past dead_after; and past the leases too (Redis runs the steps only as it resumes)
)
def test_a_redis_stalled_past_dead_after_counts_nothing_for_the_requests_it_failed(
    redis: Redis, stall: float, leases: str
) -> None:
    """3 creations refused (503), 2 exports let through without a slot, 1 keyed creation refused:
    Redis runs their scripts when it resumes, and errorkit takes each back by token at once, not
    a lease later."""
    keyed = {**DEV, "Idempotency-Key": "stall-1"}
    env = {"EK_CONCURRENCY": "2", "EK_QUOTA_LEASE": leases, "EK_IDEMPOTENCY_LEASE": leases, "EK_LEASE": leases}
    with served(redis, **env) as server:
        warm = [
            ("/agents", DEV, b""),
            ("/exports?sleep=0", DEV, b""),
            ("/agents", {**DEV, "Idempotency-Key": "w"}, b""),
        ]
        assert asyncio.run(send(server.url, warm)) == [201, 200, 201]  # (every script loaded)
        assert state(redis, "stall-1") == State(2, 0, (False,))

        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            stalled = [("/agents", DEV, b"")] * 3 + [("/exports?sleep=0", DEV, b"")] * 2 + [("/agents", keyed, b"")]
            answers = asyncio.run(send(server.url, stalled))
            time.sleep(stall)  # past dead_after (1 s): errorkit drops the connection, the scripts still queued
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)

        assert answers == [503, 503, 503, 200, 200, 503]
        waited = wait_for(redis, State(2, 0, (False,)), 3, "stall-1")  # nothing kept, before any lease
        print(f"given back {waited:.2f} s after Redis resumed")  # (the README's figure; shown with -s)

        exports = asyncio.run(send(server.url, [("/exports?sleep=0.2", DEV, b"")] * 2))
        assert Counter(exports) == {200: 2}  # no phantom slot refuses them
        assert asyncio.run(send(server.url, [("/agents", keyed, b"")])) == [201]  # the key runs, no 409
        assert state(redis, "stall-1") == State(3, 0, (True,))


def test_a_completion_the_store_failed_is_sent_again_until_it_lands(redis: Redis) -> None:
    """Redis pauses writes (as a failover does) while the first run completes: the response leaves,
    the completion times out and its connection is dropped; sent again, it lands once writes
    resume, so a retry replays instead of waiting out the claim's lease (or running twice)."""
    runs: Counter[str] = Counter()
    pauser = Connection(redis.url, timeout=2.0)

    async def orders(request: Request) -> Response:
        runs["orders"] += 1
        await pauser.execute("CLIENT", "PAUSE", "2500", "WRITE")  # from now on, the completion waits
        return JSONResponse({"run": runs["orders"]}, status_code=201)

    backend = RedisBackend(redis.url)
    app = Starlette(routes=[Route("/orders", orders, methods=["POST"])])
    ErrorKit().install(app, idempotency=Idempotency(backend))
    keyed = {"Idempotency-Key": "paused-1"}

    async def main() -> list[tuple[int, str | None]]:
        await backend.initialize()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            first = await client.post("/orders", headers=keyed, content=b"{}")
            await asyncio.sleep(4.0)  # the pause ends at 2.5 s; the claim's lease would end at 30 s
            retry = await client.post("/orders", headers=keyed, content=b"{}")
        await backend.close()
        await pauser.close()
        return [(r.status_code, r.headers.get("idempotent-replayed")) for r in (first, retry)]

    assert asyncio.run(main()) == [(201, None), (201, "true")]
    assert runs == {"orders": 1}
