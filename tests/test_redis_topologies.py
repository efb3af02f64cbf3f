"""Sentinel and Cluster on real redis-server processes: discovery, routing, failover."""

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from errorkit import RedisBackend, StoreDataLost, StoreUnavailable, register_api_key
from errorkit._stages.algorithms import ALGORITHMS
from errorkit._stores.protocols import ClaimState
from errorkit._stores.redis.connection import Redis
from errorkit._stores.redis.topology import ClusterClient, SentinelClient, hash_slot
from tests.support.servers import Cluster, Sentinel, cluster_setup, make_certificates, sentinel_setup, until, uvicorn
from tests.test_one_trip import TOKEN, full_stack

GCRA = ALGORITHMS["gcra"]
HOUR_US = 3_600_000_000


def test_hash_slots_match_redis() -> None:
    # values from the Redis Cluster specification and `CLUSTER KEYSLOT`
    assert hash_slot("123456789") == 12739
    assert hash_slot("{user1000}.following") == hash_slot("{user1000}.followers") == hash_slot("user1000")
    assert hash_slot("foo{}{bar}") == hash_slot("foo{}{bar}")  # an empty tag: the whole key
    assert hash_slot("foo{{bar}}zap") == hash_slot("{bar")


@pytest.mark.parametrize("secured", [False, True], ids=["plain", "tls-and-passwords"])
def test_sentinel_discovers_the_master_and_follows_a_failover(secured: bool, tmp_path: Path) -> None:
    """Plain, and TLS to sentinels and servers with a master password and a sentinel password."""
    tls = make_certificates(tmp_path) if secured else None
    password, sentinel_password = ("master-pw", "sentinel-pw") if secured else (None, None)
    with sentinel_setup(tls=tls, password=password, sentinel_password=sentinel_password) as setup:
        if secured:
            assert setup.url.startswith("rediss+sentinel://master-pw@") and "sentinel_password=sentinel-pw" in setup.url

        async def main() -> tuple[float, int]:
            store = RedisBackend(setup.url, prefix="sen")
            client = store.redis
            assert isinstance(client, SentinelClient)
            assert (await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 100), 1)).admitted
            assert client._master is not None and client._master.address == ("127.0.0.1", setup.master)
            heard: list[str | None] = []
            watch = store.watch_keys(heard.append)  # key changes pushed by the master, followed too
            watch.start()
            await until(lambda: watch.live, 5)
            epoch = watch.epoch
            failover = await Redis(sentinel_url(setup, tls, sentinel_password)).execute(
                "SENTINEL", "FAILOVER", setup.service
            )
            assert failover == b"OK"
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
            new_primary = Redis(server_url(setup.replica, tls, password))
            role = await new_primary.execute("ROLE")
            keys = await new_primary.execute("KEYS", "sen:*")
            await new_primary.close()
            assert role[0] == b"master" and keys == [b"sen:rl:{ws:1}:b"]
            await until(lambda: watch.live and watch.epoch != epoch, 10)  # listening to the new master
            await register_api_key(store, "ek_sen.sentinel-secret-1", workspace_id="ws")
            await until(lambda: "ek_sen" in heard, 0.5)
            await store.close()
            return moved_after, client.discoveries

        moved_after, discoveries = asyncio.run(main())
        assert moved_after < 10 and discoveries >= 2


def server_url(port: int, tls: dict[str, Path] | None, password: str | None, path: str = "/0") -> str:
    """A plain connection to one server (a sentinel: `path=""`), over TLS when the set-up uses it."""
    userinfo = f":{password}@" if password else ""
    if tls is None:
        return f"redis://{userinfo}127.0.0.1:{port}{path}"
    return f"rediss://{userinfo}127.0.0.1:{port}{path}?ssl_ca_certs={tls['ca_crt']}"


def sentinel_url(setup: Sentinel, tls: dict[str, Path] | None, password: str | None) -> str:
    return server_url(setup.sentinel, tls, password, path="")


def test_a_wrong_sentinel_password_fails_clearly(tmp_path: Path) -> None:
    tls = make_certificates(tmp_path)
    with sentinel_setup(tls=tls, password="master-pw", sentinel_password="sentinel-pw") as setup:

        async def main() -> str:
            store = RedisBackend(setup.url.replace("sentinel_password=sentinel-pw", "sentinel_password=not-it"))
            with pytest.raises(StoreUnavailable) as refused:
                await store.count(GCRA, "ws:1", ["b"], (HOUR_US, 100), 1)
            await store.close()
            return str(refused.value)

        message = asyncio.run(main())
        assert message.startswith(f"no sentinel named the master of 'errorkit': 127.0.0.1:{setup.sentinel}: ")
        assert "WRONGPASS" in message and "not-it" not in message and "sentinel-pw" not in message


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
    with uvicorn("tests.apps.ratelimit:app", workers=4, env=env) as server:

        async def main() -> dict[str, Counter[int]]:
            results = await asyncio.gather(*(burst(server.url, KEYS[ws], 100) for ws in KEYS))
            return {ws: Counter(r.status_code for r in responses) for ws, responses in zip(KEYS, results, strict=True)}

        assert asyncio.run(main()) == {ws: Counter({200: 30, 429: 70}) for ws in KEYS}


def test_cluster_runs_fifty_duplicate_posts_once(cluster: Cluster) -> None:
    env = {"EK_IDEMPOTENCY_APP": "1", "REDIS_URL": cluster.url}
    with uvicorn("tests.apps.idempotency:app", workers=4, env=env) as server:

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


def test_cluster_tells_a_flushed_primary_from_unknown_keys(cluster: Cluster) -> None:
    """Dataset markers in every slot: a primary that lost its data answers lost, the others still answer."""
    primaries = cluster.primaries()

    def primary_of(key: str) -> int:
        return next(port for port, (start, end) in primaries.items() if start <= hash_slot(key) <= end)

    async def main() -> None:
        store = RedisBackend(cluster.url, prefix="loss")
        assert await store.initialize() == 16384
        key_ids: dict[int, str] = {}  # one key per primary
        tenants: dict[int, str] = {}  # one idempotency tenant per primary
        for n in range(1000):
            key_ids.setdefault(primary_of(f"loss:apikey:{{ek_{n}}}"), f"ek_{n}")
            tenants.setdefault(primary_of(f"loss:idem:{{ws_{n}}}:x"), f"ws_{n}")
        assert len(key_ids) == len(tenants) == len(primaries) == 3
        for key_id in key_ids.values():
            await register_api_key(store, f"{key_id}.secret-of-{key_id}", workspace_id="ws")
        victim = sorted(primaries)[0]
        node = Redis(f"redis://127.0.0.1:{victim}/0")
        assert await node.execute("FLUSHALL") == b"OK"
        await node.close()
        for port in primaries:
            if port == victim:
                with pytest.raises(StoreDataLost):
                    await store.get_api_key(key_ids[port])
                with pytest.raises(StoreDataLost):
                    await store.claim(tenants[port], "k", b"fp", "me", 30_000)
            else:
                record = await store.get_api_key(key_ids[port])
                assert record is not None and record.key_id == key_ids[port]
                assert (await store.claim(tenants[port], "k", b"fp", "me", 30_000)).state is ClaimState.CLAIMED
        start, end = primaries[victim]
        assert await store.initialize() == end - start + 1  # exactly the flushed primary's slots
        assert await store.get_api_key(key_ids[victim]) is None  # adopted: now simply unknown
        await store.close()

    asyncio.run(main())


def test_cluster_pushes_key_changes_from_every_primary(cluster: Cluster) -> None:
    primaries = cluster.primaries()

    async def main() -> None:
        store, admin = RedisBackend(cluster.url, prefix="track"), RedisBackend(cluster.url, prefix="track")
        heard: list[str | None] = []
        watch = store.watch_keys(heard.append)
        watch.start()
        await until(lambda: watch.live, 5)
        key_ids = {}  # one key per primary
        for n in range(1000):
            slot = hash_slot(f"track:apikey:{{ek_{n}}}")
            key_ids.setdefault(next(p for p, (a, b) in primaries.items() if a <= slot <= b), f"ek_{n}")
        assert len(key_ids) == 3
        for key_id in key_ids.values():
            await register_api_key(admin, f"{key_id}.secret-of-{key_id}", workspace_id="ws")
        await until(lambda: set(key_ids.values()) <= set(heard), 0.5)
        await store.close()
        await admin.close()

    asyncio.run(main())


def test_cluster_limits_and_claims_in_one_script_per_workspace(cluster: Cluster) -> None:
    """Workspaces on different primaries: 2 commands a first POST, exact admission, each key run once."""
    primaries = cluster.primaries()

    async def main() -> tuple[set[int], list[int], dict[str, Counter[int]], Counter[str]]:
        backend = RedisBackend(cluster.url, prefix="trip")
        workspaces: dict[int, str] = {}
        for n in range(1000):  # one workspace per primary
            slot = hash_slot(f"trip:rl:{{ws:w{n}}}:x")
            workspaces.setdefault(next(p for p, (a, b) in primaries.items() if a <= slot <= b), f"w{n}")
        tokens = {ws: f"ek_{ws}.secret-of-{ws}" for ws in workspaces.values()}
        for ws, token in tokens.items():
            await register_api_key(backend, token, workspace_id=ws)
        effects: Counter[str] = Counter()
        app, auth = full_stack(backend, 5, effects)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=10) as client:
            await client.get("/orders", headers={"X-API-Key": TOKEN})  # a 401: starts the change feed
            await until(lambda: auth.records.watch is not None and auth.records.watch.live, 5)
            costs = []
            for ws, token in tokens.items():  # warm: record trusted, scripts loaded on that primary
                await client.get("/orders", headers={"X-API-Key": token})
                await client.post("/orders", headers={"X-API-Key": token, "Idempotency-Key": "w"}, json={"ref": ws})
                before = backend.redis.commands_sent
                r = await client.post(
                    "/orders", headers={"X-API-Key": token, "Idempotency-Key": "first"}, json={"ref": f"{ws}-first"}
                )
                assert r.status_code == 201
                costs.append(backend.redis.commands_sent - before)

            async def post(token: str, n: int) -> httpx.Response:
                headers = {"X-API-Key": token, "Idempotency-Key": f"k{n % 4}"}
                return await client.post("/orders", headers=headers, json={"ref": f"{token[:6]}-{n % 4}"})

            results = {
                ws: Counter(r.status_code for r in await asyncio.gather(*(post(token, n) for n in range(20))))
                for ws, token in tokens.items()
            }
        await backend.close()
        return set(workspaces), costs, results, effects

    ports, costs, results, effects = asyncio.run(main())
    assert len(ports) == 3 and costs == [2, 2, 2]
    # limit 5: 3 used by the warm-up GET and POSTs, so 2 more are admitted per workspace
    for counts in results.values():  # a request the limit admits either runs, or meets its key in progress
        assert counts[429] == 18 and counts[201] + counts[409] == 2, counts
    assert all(runs == 1 for runs in effects.values())


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
        watch = store.watch_keys(lambda key_id: None)  # key changes: it must move to the promoted replica too
        watch.start()
        await until(lambda: watch.live, 5)
        epoch = watch.epoch
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
        await until(lambda: watch.live and watch.epoch != epoch, 30)
        assert ("127.0.0.1", victim) not in await client.primary_addresses()
        await store.close()
        return resumed

    assert asyncio.run(main()) < 30  # node timeout 1 s, then gossip and an election: seconds on a busy machine
