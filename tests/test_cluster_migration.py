"""Redis Cluster resharding on a real 3-primary cluster: a workspace's slot migrating to a primary
whose script cache is empty, then moved there for good.

While the slot migrates, the source answers `ASK` and the target runs a command only after
`ASKING`. The target knows none of errorkit's scripts, so its first `EVALSHA` is answered
`NOSCRIPT`; the `EVAL` sent in its place must follow `ASKING` too, else the importing node says
`MOVED` back to the source, the redirects run out and every request of the workspace is left to
the failure policy. Every decision below is exact: no request is let through undecided.
"""

import asyncio
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from errorkit import (
    RedisBackend,
    StoreUnavailable,
    register_api_key,
)
from errorkit._stages.algorithms import ALGORITHMS
from errorkit._stores.protocols import Claim, ClaimState, Counted
from errorkit._stores.redis.connection import Redis
from errorkit._stores.redis.topology import ClusterClient, hash_slot
from tests.support.servers import Cluster, cluster_setup
from tests.test_one_trip import full_stack

GCRA = ALGORITHMS["gcra"]
HOUR_US = 3_600_000_000
PREFIX = "mig"
KEY_ID = "ek_mig"
TOKEN = f"{KEY_ID}.migrating-secret-1"
LIMIT = 20  # requests per hour for the workspace: GCRA, one every 180 s, so none regained during the test


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with cluster_setup() as setup:
        yield setup


def pick_workspace(cluster: Cluster) -> tuple[str, int, int, int, int]:
    """A workspace whose slot holds none of the API key's own keys: (workspace, slot, and the primaries:
    the slot's source, its target, the third)."""
    primaries = cluster.primaries()
    assert len(primaries) == 3
    for n in range(1000):
        workspace = f"w{n}"
        slot = hash_slot(f"{PREFIX}:rl:{{ws:{workspace}}}:x")
        if slot not in (
            hash_slot(f"{PREFIX}:apikey:{{{KEY_ID}}}"),
            hash_slot(f"{PREFIX}:workspace-keys:{{{workspace}}}"),
        ):
            break
    else:
        raise AssertionError("no workspace found")
    source = next(port for port, (start, end) in primaries.items() if start <= slot <= end)
    ports = sorted(primaries)
    target = ports[(ports.index(source) + 1) % 3]
    third = ports[(ports.index(source) + 2) % 3]
    return workspace, slot, source, target, third


async def outcome(step: Any) -> Any:
    """What a store step answered, or the failure (a string, so one comparison shows every outcome)."""
    try:
        return await step
    except StoreUnavailable as exc:
        return f"StoreUnavailable: {exc}"


def test_a_slot_migrating_to_a_node_without_the_scripts_keeps_exact_decisions(cluster: Cluster) -> None:
    workspace, slot, source, target, third = pick_workspace(cluster)
    tenant = f"ws:{workspace}"  # the limiter's identity and the idempotency tenant: one hash tag, one slot

    async def main() -> dict[str, Any]:
        backend = RedisBackend(cluster.url, prefix=PREFIX)
        client = backend.redis
        assert isinstance(client, ClusterClient)
        nodes = {port: Redis(f"redis://127.0.0.1:{port}/0", timeout=2.0) for port in (source, target, third)}
        ids = {port: (await node.execute("CLUSTER", "MYID")).decode() for port, node in nodes.items()}
        await register_api_key(backend, TOKEN, workspace_id=workspace)  # (writes every slot's dataset marker)
        effects: Counter[str] = Counter()
        headers = {"X-API-Key": TOKEN}
        seen: dict[str, Any] = {}

        async def post_done(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post("/orders", headers={**headers, "Idempotency-Key": "done"}, json={"ref": "done"})

        async def keys_in_slot() -> dict[int, int]:
            return {port: await node.execute("CLUSTER", "COUNTKEYSINSLOT", slot) for port, node in nodes.items()}

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=full_stack(backend, LIMIT, effects, "fail_closed")[0]),
            base_url="http://t",
        ) as http:
            # -- the slot on its first primary: state to move -------------------------------------------
            before = [await http.get("/orders", headers=headers) for _ in range(3)]
            first = await post_done(http)
            seen["before"] = [(r.status_code, r.headers["x-ratelimit-remaining"]) for r in [*before, first]]
            seen["held"] = await backend.claim(tenant, "held", b"fp-held", "worker-1", 60_000)
            bucket = f"{PREFIX}:rl:{{{tenant}}}:*:{LIMIT}/3600"
            slot_keys = {  # the rate-limit state, two idempotency records and the slot's dataset marker
                bucket,
                backend._record(tenant, f"{KEY_ID}\0done"),
                backend._record(tenant, "held"),
                backend._marker(bucket),
            }
            assert {hash_slot(key) for key in slot_keys} == {slot}
            moving = sorted(await nodes[source].execute("CLUSTER", "GETKEYSINSLOT", slot, 100))
            assert moving == sorted(key.encode() for key in slot_keys)  # all the slot holds
            seen["done stored"] = (await nodes[source].execute("GET", backend._record(tenant, f"{KEY_ID}\0done")))[:1]

            # -- migrating: the source answers ASK, the target has every key and no script ---------------
            nodes_ok = [
                await nodes[target].execute("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source]),
                await nodes[source].execute("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target]),
                await nodes[source].execute("MIGRATE", "127.0.0.1", target, "", 0, 2000, "KEYS", *moving),
                await nodes[target].execute("SCRIPT", "FLUSH"),
            ]
            assert nodes_ok == [b"OK"] * 4
            seen["migrating keys"] = await keys_in_slot()
            replay = await post_done(http)
            seen["migrating replay"] = (
                replay.status_code,
                replay.headers.get("idempotent-replayed"),
                replay.headers.get("x-ratelimit-remaining"),
            )
            burst = await asyncio.gather(*(http.get("/orders", headers=headers) for _ in range(20)))
            seen["migrating burst"] = Counter(r.status_code for r in burst)
            seen["migrating remaining"] = sorted(
                int(r.headers["x-ratelimit-remaining"]) for r in burst if r.status_code == 200
            )
            seen["migrating held"] = await outcome(backend.claim(tenant, "held", b"fp-held", "worker-2", 60_000))
            # the state lives on the target alone (ASKING reads it there), nothing was recreated on the source
            time_now = await nodes[target].execute("TIME")
            now_us = int(time_now[0]) * 1_000_000 + int(time_now[1])
            tat = int(await nodes[target].execute("GET", bucket, asking=True))
            seen["migrating used"] = math.ceil((tat - now_us) / (HOUR_US / LIMIT) - 0.01)
            seen["migrating keys after"] = await keys_in_slot()
            seen["map still names the source"] = client._slots[slot] == ("127.0.0.1", source)

            # -- migrated: every primary names the target, the source answers MOVED -----------------------
            for port in (target, source, third):
                assert await nodes[port].execute("CLUSTER", "SETSLOT", slot, "NODE", ids[target]) == b"OK"
            assert await nodes[target].execute("SCRIPT", "FLUSH") == b"OK"  # NOSCRIPT after MOVED too
            after = [await http.get("/orders", headers=headers) for _ in range(3)]
            seen["moved gets"] = [(r.status_code, r.headers["x-ratelimit-remaining"]) for r in after]
            counted: list[Counted | str] = [
                await outcome(backend.count(GCRA, tenant, ["after"], (HOUR_US, 3), 1)) for _ in range(4)
            ]
            seen["moved count"] = [c if isinstance(c, str) else c.admitted for c in counted]
            claims: list[Claim | str] = [
                await outcome(backend.claim(tenant, "held", b"fp-held", "worker-3", 60_000)),
                await outcome(backend.claim(tenant, "fresh", b"fp-fresh", "worker-3", 60_000)),
            ]
            seen["moved claims"] = [c if isinstance(c, str) else c.state for c in claims]
            seen["moved keys"] = await keys_in_slot()
            seen["map names the target"] = client._slots[slot] == ("127.0.0.1", target)
        seen["effects"] = effects
        await backend.close()
        for node in nodes.values():
            await node.close()
        return seen

    seen = asyncio.run(main())
    assert seen == {
        "before": [(200, "19"), (200, "18"), (200, "17"), (201, "16")],
        "held": Claim(ClaimState.CLAIMED),
        "done stored": b"c",  # completed: a retry is a replay
        "migrating keys": {source: 0, target: 4, third: 0},
        # the replay: limited and claimed in one script on the importing node, after ASKING
        "migrating replay": (201, "true", "15"),
        "migrating burst": Counter({200: 15, 429: 5}),  # exactly the limit's rest admitted, not one 503
        "migrating remaining": list(range(15)),
        "migrating held": Claim(ClaimState.IN_PROGRESS, b"fp-held"),
        "migrating used": LIMIT,  # 3 + 1 + 1 + 15 requests charged, on the target
        "migrating keys after": {source: 0, target: 4, third: 0},
        "map still names the source": True,  # ASK moves one command, not the slot
        "moved gets": [(429, "0")] * 3,
        "moved count": [True, True, True, False],
        "moved claims": [ClaimState.IN_PROGRESS, ClaimState.CLAIMED],
        "moved keys": {source: 0, target: 6, third: 0},
        "map names the target": True,  # MOVED followed
        "effects": Counter({"done": 1}),
    }
