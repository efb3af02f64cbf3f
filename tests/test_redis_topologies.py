"""Sentinel and Cluster on real redis-server processes: discovery, routing, failover."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from errorkit import RedisBackend, StoreUnavailable
from errorkit._stages.algorithms import ALGORITHMS
from errorkit._stores.connection import Redis
from errorkit._stores.topology import ClusterClient, SentinelClient, hash_slot
from tests.servers import Cluster, cluster_setup, sentinel_setup, uvicorn

GCRA = ALGORITHMS["gcra"]
HOUR_US = 3_600_000_000


def test_hash_slots_match_redis() -> None:
    # values from the Redis Cluster specification and `CLUSTER KEYSLOT`
    assert hash_slot("123456789") == 12739
    assert hash_slot("{user1000}.following") == hash_slot("{user1000}.followers") == hash_slot("user1000")
    assert hash_slot("foo{}{bar}") == hash_slot("foo{}{bar}")  # an empty tag: the whole key
    assert hash_slot("foo{{bar}}zap") == hash_slot("{bar")


def test_sentinel_discovers_the_master_and_follows_a_failover() -> None:
    with sentinel_setup() as setup:

        async def main() -> tuple[float, int]:
            store = RedisBackend(setup.url, prefix="sen")
            client = store.redis
            assert isinstance(client, SentinelClient)
            assert (await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 100), 1)).admitted
            assert client._master is not None and client._master.address == ("127.0.0.1", setup.master)
            subprocess.run(["redis-cli", "-p", str(setup.sentinel), "SENTINEL", "FAILOVER", setup.service], check=True)
            start = time.monotonic()
            moved_after = None
            while time.monotonic() - start < 15:
                with contextlib.suppress(StoreUnavailable):  # failing over: the stage's policy would apply
                    await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 100), 1)
                master = client._master
                if master is not None and master.address == ("127.0.0.1", setup.replica):
                    moved_after = time.monotonic() - start
                    break
                await asyncio.sleep(0.05)
            assert moved_after is not None, "writes never moved to the new primary"
            counted = await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 100), 1)
            assert counted.admitted
            new_primary = Redis(f"redis://127.0.0.1:{setup.replica}/0")
            role = await new_primary.execute("ROLE")
            keys = await new_primary.execute("KEYS", "sen:*")
            await new_primary.close()
            await store.close()
            assert role[0] == b"master" and keys == [b"sen:rl:{ws:1}:b"]
            return moved_after, client.discoveries

        moved_after, discoveries = asyncio.run(main())
        assert moved_after < 10 and discoveries >= 2


def workspaces_on_primaries(cluster: Cluster) -> dict[str, int]:
    """The rate-limit app's workspaces and the primary port holding each one's counters."""
    primaries = cluster.primaries()
    where = {}
    for workspace in ("ws_1", "ws_2", "ws_3"):
        slot = hash_slot(f"errorkit:rl:{{ws:{workspace}}}:x")
        where[workspace] = next(port for port, (start, end) in primaries.items() if start <= slot <= end)
    return where


async def burst(url: str, key: str, total: int, path: str = "/work") -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one() -> httpx.Response:
            async with semaphore:
                return await client.get(path, headers={"X-API-Key": key})

        return await asyncio.gather(*(one() for _ in range(total)))


KEYS = {"ws_1": "ek_one.workspace-one-1", "ws_2": "ek_two.workspace-two-2", "ws_3": "ek_three.workspace-three-3"}


@pytest.fixture(scope="module")
def cluster() -> Any:
    with cluster_setup() as setup:
        yield setup


def test_cluster_admits_exactly_the_limit_across_workers(cluster: Cluster) -> None:
    where = workspaces_on_primaries(cluster)
    assert len(set(where.values())) >= 2  # the workspaces' counters live on different primaries
    env = {
        "EK_RATELIMIT_APP": "1",
        "REDIS_URL": cluster.url,
        "EK_KEY_STORE": "memory",
        "EK_LIMIT": "30",
        "EK_PERIOD": "3600",
    }
    with uvicorn("tests.ratelimit_app:app", workers=4, env=env) as server:

        async def main() -> dict[str, Counter[int]]:
            results = await asyncio.gather(*(burst(server.url, KEYS[ws], 100) for ws in KEYS))
            return {ws: Counter(r.status_code for r in responses) for ws, responses in zip(KEYS, results, strict=True)}

        assert asyncio.run(main()) == {ws: Counter({200: 30, 429: 70}) for ws in KEYS}


def test_cluster_runs_fifty_duplicate_posts_once(cluster: Cluster) -> None:
    env = {"EK_IDEMPOTENCY_APP": "1", "REDIS_URL": cluster.url}
    with uvicorn("tests.idempotency_app:app", workers=4, env=env) as server:

        async def main() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
                headers = {"X-API-Key": KEYS["ws_1"], "Idempotency-Key": "cluster-race"}
                return await asyncio.gather(
                    *(
                        client.post("/orders", json={"ref": "cluster-race", "sleep": 0.2}, headers=headers)
                        for _ in range(50)
                    )
                )

        responses = asyncio.run(main())
        assert set(Counter(r.status_code for r in responses)) <= {201, 409}
        assert sum(1 for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers) == 1
        assert httpx.get(f"{server.url}/effects/cluster-race").json() == {"count": 1}


def test_cluster_follows_a_primary_failover(cluster: Cluster) -> None:
    """A primary killed mid-traffic: limiting on its slots resumes within seconds, no restart."""

    async def main() -> float:
        store = RedisBackend(cluster.url, prefix="fo")
        client = store.redis
        assert isinstance(client, ClusterClient)
        identity = "ws:failover"
        key = f"fo:rl:{{{identity}}}:b"
        assert (await store.count(GCRA, identity, ["b"], (HOUR_US, 1000), 1)).admitted
        victim = next(port for port, (start, end) in cluster.primaries().items() if start <= hash_slot(key) <= end)
        os.kill(cluster.processes[victim].pid, signal.SIGKILL)
        cluster.processes[victim].wait()
        start = time.monotonic()
        while time.monotonic() - start < 40:
            try:
                counted = await store.count(GCRA, identity, ["b"], (HOUR_US, 1000), 1)
                if counted.admitted:
                    break
            except StoreUnavailable:  # the slot has no primary yet: each stage's failure policy applies
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("limiting never resumed on the failed primary's slots")
        resumed = time.monotonic() - start
        await store.close()
        return resumed

    assert asyncio.run(main()) < 30  # node timeout 1 s, then gossip and an election: seconds on a busy machine
