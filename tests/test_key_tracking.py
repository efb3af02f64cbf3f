"""API keys served from memory while Redis pushes their changes (CLIENT TRACKING): real servers."""

import asyncio
import os
import signal
import time
from collections import Counter

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    APIKeyRecord,
    ErrorKit,
    KeyCache,
    MemoryBackend,
    RedisBackend,
    catalogs,
    register_api_key,
    revoke_api_key,
    set_workspace_disabled,
)
from errorkit._stores.redis.connection import Redis
from tests.support.servers import redis_server, until, uvicorn

TOKEN = "ek_tracked.tracked-secret-1"


async def whoami(request: Request) -> Response:
    return JSONResponse({"key_id": request.user.key_id})


def app_on(backend: RedisBackend, cache: KeyCache = KeyCache()) -> tuple[Starlette, APIKeyAuth]:
    auth = APIKeyAuth(backend, cache=cache, on_failure="fail_closed")
    app = Starlette(routes=[Route("/whoami", whoami)])
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(app, auth=auth)
    return app, auth


def test_a_tracked_key_costs_no_command_and_its_revocation_applies_within_a_round_trip() -> None:
    with redis_server() as server:

        async def main() -> float:
            backend, admin = RedisBackend(server.url), RedisBackend(server.url)
            await register_api_key(admin, TOKEN, workspace_id="ws_1")
            app, auth = app_on(backend)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

                async def status() -> int:
                    return (await client.get("/whoami", headers={"X-API-Key": TOKEN})).status_code

                assert await status() == 200
                await until(lambda: auth.records.watch is not None and auth.records.watch.live, 2)
                assert await status() == 200  # fetched while the feed is live: trusted from now on
                sent = backend.redis.commands_sent
                assert [await status() for _ in range(50)] == [200] * 50
                assert backend.redis.commands_sent == sent  # served from memory

                await revoke_api_key(admin, "ek_tracked")
                took = await until(lambda: auth.records.known["ek_tracked"].trusted_in == -1, 0.1)
                r = await client.get("/whoami", headers={"X-API-Key": TOKEN, "X-Request-ID": "r"})
                assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")
            await backend.close()
            await admin.close()
            return took

        assert asyncio.run(main()) < 0.1


def test_while_the_feed_is_down_every_request_asks_redis() -> None:
    """The subscribed connection killed: nothing is trusted until it is back, so a revocation still applies."""
    with redis_server() as server:

        async def main() -> None:
            backend, admin = RedisBackend(server.url), RedisBackend(server.url)
            await register_api_key(admin, TOKEN, workspace_id="ws_1")
            app, auth = app_on(backend)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

                async def status() -> int:
                    return (await client.get("/whoami", headers={"X-API-Key": TOKEN})).status_code

                assert await status() == 200
                watch = auth.records.watch
                assert watch is not None
                await until(lambda: watch.live, 2)
                assert await status() == 200
                killer = Redis(server.url)
                assert await killer.execute("CLIENT", "KILL", "TYPE", "pubsub") == 1
                await until(lambda: not watch.live, 1)
                sent = backend.redis.commands_sent
                assert [await status() for _ in range(5)] == [200] * 5
                assert backend.redis.commands_sent == sent + 5  # one lookup per request meanwhile
                await revoke_api_key(admin, "ek_tracked")
                assert await status() == 401  # at once: nothing was served from memory
                await until(lambda: watch.live, 3)  # the feed is back by itself
                await killer.close()
            await backend.close()
            await admin.close()

        asyncio.run(main())


def test_a_disabled_workspace_and_a_flush_reach_the_cache() -> None:
    with redis_server() as server:

        async def main() -> list[tuple[int, str]]:
            backend, admin = RedisBackend(server.url), RedisBackend(server.url)
            await register_api_key(admin, TOKEN, workspace_id="ws_1")
            app, auth = app_on(backend)
            seen = []
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

                async def answer() -> tuple[int, str]:
                    r = await client.get("/whoami", headers={"X-API-Key": TOKEN})
                    return r.status_code, r.json()["key_id"] if r.status_code == 200 else r.json()["error"]["code"]

                await answer()
                await until(lambda: auth.records.watch is not None and auth.records.watch.live, 2)
                seen.append(await answer())
                await set_workspace_disabled(admin, "ws_1", True, reason="billing")
                await until(lambda: auth.records.known["ek_tracked"].trusted_in == -1, 0.1)
                seen.append(await answer())
                await set_workspace_disabled(admin, "ws_1", False)
                await until(lambda: auth.records.known["ek_tracked"].trusted_in == -1, 0.1)
                seen.append(await answer())
                await admin.redis.execute("FLUSHALL")  # Redis says "everything" (a nil invalidation)
                await until(lambda: auth.records.known["ek_tracked"].trusted_in == -1, 0.1)
                seen.append(await answer())
            await backend.close()
            await admin.close()
            return seen

        assert asyncio.run(main()) == [
            (200, "ek_tracked"),
            (403, "workspace_disabled"),
            (200, "ek_tracked"),
            (503, "service_unavailable"),  # and the emptied Redis is a lost store, not a bad key
        ]


def test_without_tracking_the_ttl_rules() -> None:
    with redis_server() as server:

        async def main() -> int:
            backend = RedisBackend(server.url)
            await register_api_key(backend, TOKEN, workspace_id="ws_1")
            app, auth = app_on(backend, KeyCache(track=False))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                sent = backend.redis.commands_sent
                for _ in range(10):
                    assert (await client.get("/whoami", headers={"X-API-Key": TOKEN})).status_code == 200
            assert auth.records.watch is None
            await backend.close()
            return backend.redis.commands_sent - sent

        assert asyncio.run(main()) == 10


@pytest.mark.parametrize("workers", [4])
def test_a_revocation_reaches_every_worker_within_100_ms(workers: int) -> None:
    with redis_server() as server:

        async def register(*, revoke: bool = False) -> None:
            admin = RedisBackend(server.url)
            await (revoke_api_key(admin, "ek_tracked") if revoke else register_api_key(admin, TOKEN, workspace_id="ws"))
            await admin.close()

        async def hgetall_calls() -> int:
            redis = Redis(server.url)
            stats = (await redis.execute("INFO", "commandstats")).decode()
            await redis.close()
            line = next((x for x in stats.splitlines() if x.startswith("cmdstat_hgetall:")), "calls=0,")
            return int(line.split("calls=", 1)[1].split(",", 1)[0])

        async def burst(total: int) -> Counter[tuple[str, int]]:
            limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)  # new connections: spread
            async with httpx.AsyncClient(base_url=served.url, limits=limits, timeout=10) as client:
                responses = await asyncio.gather(
                    *(client.get("/whoami", headers={"X-API-Key": TOKEN}) for _ in range(total))
                )
            return Counter((r.headers["x-worker-pid"], r.status_code) for r in responses)

        asyncio.run(register())
        with uvicorn("tests.tracking_app:app", workers=workers, env={"REDIS_URL": server.url}) as served:
            warm = asyncio.run(burst(400))
            pids = {pid for pid, _ in warm}
            assert len(pids) == workers and {status for _, status in warm} == {200}
            time.sleep(1.5)  # every worker's feed is live; its next lookup is trusted
            asyncio.run(burst(400))
            before = asyncio.run(hgetall_calls())
            again = asyncio.run(burst(400))
            assert {status for _, status in again} == {200}
            assert asyncio.run(hgetall_calls()) == before  # every worker answers from memory

            asyncio.run(register(revoke=True))
            time.sleep(0.1)
            after = asyncio.run(burst(400))
            assert {status for _, status in after} == {401}
            assert {pid for pid, _ in after} == pids  # every worker refuses


def test_a_silent_channel_is_found_by_its_ping_and_trust_ends() -> None:
    """The feed's server stops answering (SIGSTOP, no FIN): within a check interval nothing is trusted."""
    with redis_server() as server:

        async def main() -> tuple[bool, bool]:
            backend = RedisBackend(server.url)
            await register_api_key(backend, TOKEN, workspace_id="ws_1")
            heard: list[str | None] = []
            watch = backend.watch_keys(heard.append)
            watch.start()
            await until(lambda: watch.live, 2)
            epoch = watch.epoch
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                await until(lambda: not watch.live, 1.5)  # one check interval (1 s) and a command deadline
                stopped = watch.epoch != epoch and None in heard
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            await until(lambda: watch.live, 5)  # and back once Redis answers
            await backend.close()
            return stopped, watch.live

        assert asyncio.run(main()) == (True, False)  # closed at the end: nothing live


def test_keys_stored_before_markers_existed_mark_their_slot_when_found() -> None:
    """An upgrade: a key record without a dataset marker is found, so its slot is marked; unknown keys are 401."""
    with redis_server() as server:

        async def main() -> tuple[bool, object]:
            backend = RedisBackend(server.url)
            await register_api_key(backend, TOKEN, workspace_id="ws_1")
            await backend.redis.execute("DEL", "errorkit:dataset")  # as an older errorkit left it
            fresh = RedisBackend(server.url)
            record = await fresh.get_api_key("ek_tracked")
            await asyncio.sleep(0.05)  # the marker is written in the background
            marked = bool(await fresh.redis.execute("EXISTS", "errorkit:dataset"))
            unknown = await fresh.get_api_key("ek_unknown")
            await backend.close()
            await fresh.close()
            return record is not None and marked, unknown

        assert asyncio.run(main()) == (True, None)


def test_a_store_without_a_feed_method_is_looked_up_per_request() -> None:
    """A key store written against the older protocol (no `watch_keys`) still works."""

    class OldStore:
        name = "old"

        def __init__(self) -> None:
            self.inner = MemoryBackend()
            self.lookups = 0

        async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
            self.lookups += 1
            return await self.inner.get_api_key(key_id)

        async def put_api_key(self, record: APIKeyRecord) -> None:
            await self.inner.put_api_key(record)

        async def list_api_keys(self, workspace_id: str) -> list[APIKeyRecord]:
            return await self.inner.list_api_keys(workspace_id)

    async def main() -> tuple[list[int], int]:
        store = OldStore()
        await register_api_key(store, TOKEN, workspace_id="ws_1")  # type: ignore[arg-type]
        auth = APIKeyAuth(store)  # type: ignore[arg-type]
        app = Starlette(routes=[Route("/whoami", whoami)])
        ErrorKit().install(app, auth=auth)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            statuses = [(await client.get("/whoami", headers={"X-API-Key": TOKEN})).status_code for _ in range(3)]
        return statuses, store.lookups

    assert asyncio.run(main()) == ([200, 200, 200], 3)
