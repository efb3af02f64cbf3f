"""Quotas and concurrency limits under 4 uvicorn workers sharing one real redis-server."""

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from contextlib import AbstractContextManager

import httpx
import pytest

from tests.support.servers import Redis, Uvicorn, uvicorn

DEV = {"Authorization": "Bearer ek_dev.developer-secret-1"}
DEV2 = {"Authorization": "Bearer ek_dev2.developer-secret-2"}


def served(redis: Redis, **env: str) -> AbstractContextManager[Uvicorn]:
    return uvicorn("tests.apps.quotas:app", workers=4, env={"EK_QUOTA_APP": "1", "REDIS_URL": redis.url, **env})


async def burst(url: str, requests: list[tuple[str, str, dict[str, str], bytes]]) -> list[httpx.Response]:
    """All at once, each on a new connection so that they spread over the workers."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(client.request(method, path, headers=headers, content=body) for method, path, headers, body in requests)
        )


def test_k_concurrent_creations_against_a_limit_of_l(redis: Redis) -> None:
    with served(redis) as server:
        responses = asyncio.run(burst(server.url, [("POST", "/agents", DEV, b"")] * 30))
        assert Counter(r.status_code for r in responses) == {201: 3, 402: 27}
        assert len({r.json()["pid"] for r in responses if r.status_code == 201}) >= 1
        assert {
            (r.json()["error"]["details"]["usage"], r.json()["error"]["details"]["limit"])
            for r in responses
            if r.status_code == 402
        } == {(3, 3)}
        assert httpx.get(f"{server.url}/usage", headers=DEV).json()["agents"] == 3


def test_the_shared_limit_holds_across_both_resources_and_failures_consume_nothing(redis: Redis) -> None:
    with served(redis) as server:
        mixed = [("POST", "/knowledge-bases", DEV, b"")] * 10 + [("POST", "/memory-stores", DEV, b"")] * 10
        shared = asyncio.run(burst(server.url, mixed))
        assert Counter(r.status_code for r in shared) == {201: 2, 402: 18}
        # failures, one after another (while one runs it holds its unit): none keeps one
        with httpx.Client(base_url=server.url, headers={"Connection": "close"}) as client:  # (any worker)
            failed = [
                client.post(path, headers=DEV2, content=body)
                for path in ("/knowledge-bases", "/memory-stores")
                for body in (b"fail", b"crash")
                for _ in range(3)
            ]
        assert [r.status_code for r in failed] == [400, 400, 400, 500, 500, 500] * 2
        usage = httpx.get(f"{server.url}/usage", headers=DEV).json()
        assert usage == {"agents": 0, "knowledge_bases": 2, "memory_stores": 2}
        assert httpx.get(f"{server.url}/usage", headers=DEV2).json() == {
            "agents": 0,
            "knowledge_bases": 0,
            "memory_stores": 0,
        }
        # the failures took nothing: the second workspace still creates its full 2
        again = asyncio.run(burst(server.url, [("POST", "/memory-stores", DEV2, b"")] * 6))
        assert Counter(r.status_code for r in again) == {201: 2, 402: 4}


def test_n_plus_m_concurrent_slow_requests_give_exactly_n_in_flight(redis: Redis) -> None:
    with served(redis, EK_CONCURRENCY="3") as server:
        responses = asyncio.run(burst(server.url, [("GET", "/slow?sleep=1", DEV, b"")] * 10))
        assert Counter(r.status_code for r in responses) == {200: 3, 429: 7}
        assert {r.json()["error"]["details"]["in_flight"] for r in responses if r.status_code == 429} == {3}
        # all given back: 3 more run at once
        again = asyncio.run(burst(server.url, [("GET", "/slow?sleep=0.2", DEV, b"")] * 3))
        assert [r.status_code for r in again] == [200] * 3


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def test_a_killed_workers_slots_come_back_after_their_lease(redis: Redis) -> None:
    with served(redis, EK_CONCURRENCY="3", EK_LEASE="4") as server:
        workers = [pid for pid in worker_pids(server.process.pid) if pid != server.process.pid]

        async def main() -> tuple[list[int], list[int], float]:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
                held = [asyncio.create_task(client.get("/slow?sleep=30", headers=DEV)) for _ in range(3)]
                await asyncio.sleep(0.5)  # the 3 slots are taken (their requests sleep)
                refused = [(await client.get("/slow?sleep=0", headers=DEV)).status_code]
                for pid in workers:  # every worker dies, holding whatever slots it held
                    os.kill(pid, signal.SIGKILL)
                killed_at = time.monotonic()
                for task in held:
                    with pytest.raises(httpx.HTTPError):
                        await task
                statuses: list[int] = []
                while time.monotonic() - killed_at < 12:  # uvicorn restarts the workers; leases run out
                    try:
                        statuses.append((await client.get("/slow?sleep=0", headers=DEV)).status_code)
                    except httpx.HTTPError:
                        statuses.append(0)  # no worker listening yet
                    if statuses[-1] == 200:
                        break
                    await asyncio.sleep(0.1)
                freed_after = time.monotonic() - killed_at
                after = await asyncio.gather(*(client.get("/slow?sleep=0.3", headers=DEV) for _ in range(3)))
                return refused, [*statuses, *(r.status_code for r in after)], freed_after

        refused, statuses, freed_after = asyncio.run(main())
        assert refused == [429]  # while the three ran, a fourth was refused
        assert statuses[-4:] == [200, 200, 200, 200]  # then all three slots were free again
        assert 429 in statuses[:-4] and set(statuses[:-4]) <= {0, 429}  # restarted workers found the slots held
        assert 2.6 <= freed_after < 8  # after the lease: 4 s from a last renewal at most 4/3 s before the kill
