"""guides/concurrency.md: its snippet runs as shown, and the response it shows is the real one."""

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from errorkit import RedisBackend, register_api_key
from tests.docs.support import DOCS_SRC, asgi_client, assert_response, fences, load
from tests.support.servers import redis_server, uvicorn

PAGE = "guides/concurrency.md"
KEY_A, KEY_B = "ek_docsa.docs-secret-a", "ek_docsb.docs-secret-b"


def test_two_exports_run_at_once_per_workspace(store_url: str) -> None:
    module = load("concurrency/app.py")
    (block,) = fences(PAGE, "http")
    a, b = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}

    async def run() -> dict[str, Any]:
        store = module["store"]
        await register_api_key(store, KEY_A, workspace_id="ws_1")
        await register_api_key(store, KEY_B, workspace_id="ws_2")
        answers: dict[str, Any] = {}
        async with asgi_client(module["app"]) as client:
            exports = [asyncio.create_task(client.post("/exports", headers=a)) for _ in range(2)]
            await asyncio.sleep(0.2)
            answers["third"] = await client.post("/exports", headers=a)
            answers["listed"] = await client.get("/campaigns", headers=a)  # other routes go on
            answers["other_workspace"] = await client.post("/exports", headers=b)
            answers["exports"] = await asyncio.gather(*exports)
            # each request gives its slot back before its response arrives: sequential requests always find one
            answers["sequential"] = [await client.post("/exports", headers=a) for _ in range(3)]

            # a worker that died holding both slots: nobody renews them, and they come back after their lease
            for token in ("dead-1", "dead-2"):
                assert (await store.acquire("ws:ws_1", "POST /exports", 2, token, 600)).acquired
            answers["while_held"] = await client.post("/exports", headers=a)
            await asyncio.sleep(0.7)
            answers["after_lease"] = await client.post("/exports", headers=a)
        return answers

    answers = asyncio.run(run())
    assert_response(block, answers["third"])
    assert answers["listed"].status_code == 200
    assert answers["other_workspace"].status_code == 201
    assert [r.status_code for r in answers["exports"]] == [201, 201]
    assert [r.status_code for r in answers["sequential"]] == [201, 201, 201]
    held = answers["while_held"]
    assert (held.status_code, held.json()["error"]["details"]) == (429, {"limit": 2, "in_flight": 2})
    assert answers["after_lease"].status_code == 201

    concurrency = module["concurrency"]
    assert (concurrency.limit, concurrency.routes, concurrency.lease_ms) == (20, {"POST /exports": 2}, 30_000)


def test_a_killed_worker_keeps_its_slots_until_their_lease_ends(tmp_path: Path) -> None:
    """uvicorn on a real redis-server, killed (SIGKILL) while two exports run: a new server finds both
    slots still taken (they come back only after the lease, which nobody renews any more)."""
    with redis_server() as redis:
        asyncio.run(register_api_key(RedisBackend(redis.url), KEY_A, workspace_id="ws_1"))
        env = {"REDIS_URL": redis.url}
        options = ["--app-dir", str(DOCS_SRC / "concurrency")]
        key = {"X-API-Key": KEY_A}

        async def start_two(url: str) -> None:
            async with httpx.AsyncClient(base_url=url) as client:
                await asyncio.gather(*(client.post("/exports", headers=key) for _ in range(2)))

        with uvicorn("app:app", env=env, options=options) as server:
            assert httpx.get(f"{server.url}/campaigns", headers=key).status_code == 200

            async def kill_while_running() -> None:
                running = asyncio.create_task(start_two(server.url))
                await until_both_slots_are_taken(redis.url)
                os.kill(server.process.pid, signal.SIGKILL)
                with contextlib.suppress(httpx.HTTPError):  # (the connections die with the server)
                    await running

            asyncio.run(kill_while_running())
            server.process.wait(timeout=5)

        with uvicorn("app:app", env=env, options=options) as server:
            refused = httpx.post(f"{server.url}/exports", headers=key)
    assert refused.status_code == 429
    assert refused.json()["error"]["details"] == {"limit": 2, "in_flight": 2}


async def until_both_slots_are_taken(url: str) -> None:
    """Wait (a few seconds at most) until the workspace's two export slots are taken in Redis."""
    slots = "errorkit:cc:{ws:ws_1}:POST /exports"  # (the store's key for them: a sorted set of leases)
    for _ in range(300):
        process = await asyncio.create_subprocess_exec(
            "redis-cli", "-u", url, "zcard", slots, stdout=asyncio.subprocess.PIPE
        )
        if (await process.communicate())[0].strip() == b"2":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the two exports never held their slots")
