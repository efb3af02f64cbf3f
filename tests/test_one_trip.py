"""The whole stack in the fewest Redis commands: auth from memory, limit and claim in one script."""

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Idempotency,
    Limit,
    RateLimiter,
    RedisBackend,
    catalogs,
    register_api_key,
)
from errorkit._stages.failure import FailureMode
from errorkit._stores.protocols import ClaimState
from tests.support.servers import until

TOKEN = "ek_trip.one-trip-secret-1"


def full_stack(
    backend: RedisBackend, limit: int, effects: Counter[str], on_failure: FailureMode = "fail_open", **idempotency: Any
) -> tuple[Starlette, APIKeyAuth]:
    async def orders(request: Request) -> Response:
        ref = (await request.json())["ref"]
        effects[ref] += 1
        return JSONResponse({"ref": ref, "run": effects[ref]}, status_code=201)

    async def read(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/orders", orders, methods=["POST"]), Route("/orders", read)])
    auth = APIKeyAuth(backend)
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(
        app,
        auth=auth,
        rate_limit=RateLimiter(backend, limits=[Limit(limit, 3600)], on_failure=on_failure),
        idempotency=Idempotency(backend, **idempotency),
    )
    return app, auth


async def warmed(client: httpx.AsyncClient, auth: APIKeyAuth) -> None:
    """The key's record fetched while the change feed is live (from now on auth asks Redis nothing),
    and every script loaded (a first EVALSHA is answered NOSCRIPT, then sent again as EVAL)."""
    await client.get("/orders", headers={"X-API-Key": TOKEN})
    await until(lambda: auth.records.watch is not None and auth.records.watch.live, 2)
    await client.get("/orders", headers={"X-API-Key": TOKEN})
    await client.post("/orders", headers={"X-API-Key": TOKEN, "Idempotency-Key": "warm"}, json={"ref": "warm"})


def test_a_get_costs_one_command_a_first_post_two_and_a_replay_one(redis_url: str) -> None:
    async def main() -> dict[str, Any]:
        backend = RedisBackend(redis_url, prefix=f"trip-{uuid.uuid4().hex[:8]}")
        await register_api_key(backend, TOKEN, workspace_id="ws_1")
        effects: Counter[str] = Counter()
        app, auth = full_stack(backend, 1000, effects)
        sent: dict[str, Any] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await warmed(client, auth)

            async def commands(method: str, **kwargs: Any) -> tuple[int, int, str]:
                before = backend.redis.commands_sent
                r = await client.request(method, "/orders", **kwargs)
                return r.status_code, backend.redis.commands_sent - before, r.headers.get("x-ratelimit-remaining", "")

            post = {"headers": {"X-API-Key": TOKEN, "Idempotency-Key": "trip-1"}, "json": {"ref": "r1"}}
            sent["get"] = await commands("GET", headers={"X-API-Key": TOKEN})
            sent["first post"] = await commands("POST", **post)
            sent["replay"] = await commands("POST", **post)
            sent["effects"] = effects["r1"]
        await backend.close()
        return sent

    assert asyncio.run(main()) == {
        "get": (200, 1, "996"),  # the rate limit only (three warm-up requests counted before)
        "first post": (201, 2, "995"),  # limit and claim in one script, then the completion
        "replay": (201, 1, "994"),  # limit and claim (which finds the stored response)
        "effects": 1,
    }


def test_a_request_the_limit_refuses_claims_nothing(redis_url: str) -> None:
    async def main() -> tuple[list[tuple[int, str]], ClaimState, Counter[str]]:
        backend = RedisBackend(redis_url, prefix=f"trip-{uuid.uuid4().hex[:8]}")
        await register_api_key(backend, TOKEN, workspace_id="ws_1")
        effects: Counter[str] = Counter()
        app, _ = full_stack(backend, 1, effects)
        seen = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for key in ("allowed", "refused"):
                r = await client.post(
                    "/orders", headers={"X-API-Key": TOKEN, "Idempotency-Key": key}, json={"ref": key}
                )
                seen.append((r.status_code, r.headers["x-ratelimit-remaining"]))
        # nothing was claimed for the refused request: a claim now is the first
        state = (await backend.claim("ws:ws_1", "ek_trip\0refused", b"probe", "probe", 1000)).state
        await backend.close()
        return seen, state, effects

    seen, state, effects = asyncio.run(main())
    assert seen == [(201, "0"), (429, "0")]
    assert state is ClaimState.CLAIMED
    assert effects == Counter({"allowed": 1})


def test_concurrent_posts_admit_exactly_the_limit_and_run_each_key_once(redis_url: str) -> None:
    """40 POSTs, 10 keys sent 4 times each, a limit of 6: 6 admitted in all, no key run twice."""

    async def main() -> tuple[Counter[int], Counter[str]]:
        backend = RedisBackend(redis_url, prefix=f"trip-{uuid.uuid4().hex[:8]}")
        await register_api_key(backend, TOKEN, workspace_id="ws_1")
        effects: Counter[str] = Counter()
        app, _ = full_stack(backend, 6, effects, wait=2.0)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/orders",
                        headers={"X-API-Key": TOKEN, "Idempotency-Key": f"k{n % 10}"},
                        json={"ref": f"k{n % 10}"},
                    )
                    for n in range(40)
                )
            )
        await backend.close()
        return Counter(r.status_code for r in responses), effects

    statuses, effects = asyncio.run(main())
    assert statuses[201] == 6 and statuses[429] == 34  # replays count against the limit too
    assert all(runs == 1 for runs in effects.values()) and sum(effects.values()) <= 6


def test_a_tenant_in_another_slot_takes_two_steps_with_the_same_outcome(redis_url: str) -> None:
    """A custom idempotency scope whose hash tag is not the limiter's: count, then claim (3 commands)."""

    async def main() -> tuple[list[tuple[int, int]], Counter[str]]:
        backend = RedisBackend(redis_url, prefix=f"trip-{uuid.uuid4().hex[:8]}")
        await register_api_key(backend, TOKEN, workspace_id="ws_1")
        effects: Counter[str] = Counter()
        app, auth = full_stack(backend, 1000, effects, scope_of=lambda scope, principal: "custom-tenant")
        seen = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await warmed(client, auth)
            for _ in range(2):
                before = backend.redis.commands_sent
                r = await client.post(
                    "/orders", headers={"X-API-Key": TOKEN, "Idempotency-Key": "other-slot"}, json={"ref": "o"}
                )
                seen.append((r.status_code, backend.redis.commands_sent - before))
        await backend.close()
        return seen, effects

    seen, effects = asyncio.run(main())
    assert seen == [(201, 3), (201, 2)]  # count + claim + complete; then count + claim (the replay)
    assert effects == Counter({"o": 1, "warm": 1})
