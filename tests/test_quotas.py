"""Plan quotas and concurrency limits in process, over the in-memory and the Redis store."""

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import Backend, ErrorKit, MemoryBackend, Principal, Quotas, RedisBackend, Refused
from errorkit._common.background import Background
from tests.apps.quotas import READ_ONLY, build
from tests.support.servers import free_port

DEV = {"Authorization": "Bearer ek_dev.developer-secret-1"}
GROWTH = {"Authorization": "Bearer ek_growth.growth-secret-1"}


def quota_error(usage: int, limit: int, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "quota_exceeded",
            "message": "The workspace has reached the limit for a resource on its current plan.",
            "doc_url": "https://docs.orq.ai/errors/quota_exceeded",
            "details": {"usage": usage, "limit": limit},
            "request_id": request_id,
        }
    }


@pytest.fixture
def client(backend: Backend) -> Iterator[TestClient]:
    with TestClient(build(backend), raise_server_exceptions=False) as client:
        yield client


def usage(client: TestClient, headers: dict[str, str] = DEV) -> dict[str, int]:
    return dict(client.get("/usage", headers=headers).json())


# -- quotas ------------------------------------------------------------------------------------


def test_creations_up_to_the_plan_limit_then_402_with_usage_and_limit(client: TestClient) -> None:
    assert [client.post("/agents", headers=DEV).status_code for _ in range(3)] == [201] * 3
    refused = client.post("/agents", headers=DEV)
    assert refused.status_code == 402
    assert refused.json() == quota_error(3, 3, refused.headers["x-request-id"])
    assert refused.headers["x-should-retry"] == "false"
    assert usage(client) == {"agents": 3, "knowledge_bases": 0, "memory_stores": 0}


def test_knowledge_bases_and_memory_stores_share_one_limit(client: TestClient) -> None:
    assert client.post("/knowledge-bases", headers=DEV).status_code == 201
    assert client.post("/memory-stores", headers=DEV).status_code == 201
    for path in ("/knowledge-bases", "/memory-stores"):
        refused = client.post(path, headers=DEV)
        assert refused.json() == quota_error(2, 2, refused.headers["x-request-id"])
    assert usage(client) == {"agents": 0, "knowledge_bases": 2, "memory_stores": 2}  # one group, one count


def test_a_failed_creation_gives_its_unit_back(client: TestClient) -> None:
    assert client.post("/agents", headers=DEV, content=b"fail").status_code == 400
    crashed = client.post("/agents", headers=DEV, content=b"crash")
    assert (crashed.status_code, crashed.json()["error"]["code"]) == (500, "internal_error")
    assert usage(client)["agents"] == 0
    assert [client.post("/agents", headers=DEV).status_code for _ in range(4)] == [201, 201, 201, 402]


def test_a_creation_whose_body_fails_after_a_201_keeps_its_unit(client: TestClient) -> None:
    cut = client.post("/agents", headers=DEV, content=b"half")  # (a server cuts the connection here)
    assert (cut.status_code, cut.content) == (201, b'{"created": ')
    assert usage(client)["agents"] == 1


def test_a_creation_that_redirects_keeps_its_unit(client: TestClient) -> None:
    sent_on = client.post("/agents", headers=DEV, content=b"redirect", follow_redirects=False)
    assert (sent_on.status_code, sent_on.headers["location"]) == (303, "/agents/a_new")
    assert usage(client)["agents"] == 1


def test_a_deletion_gives_a_unit_back_and_usage_never_goes_below_zero(client: TestClient) -> None:
    for _ in range(3):
        client.post("/agents", headers=DEV)
    assert client.delete("/agents/a_1", headers=DEV).status_code == 204
    assert usage(client)["agents"] == 2
    assert client.post("/agents", headers=DEV).status_code == 201
    for _ in range(5):  # (this app answers 204 for any id: a real one answers 404 for one already gone)
        client.delete("/agents/a_1", headers=DEV)
    assert usage(client)["agents"] == 0


def test_an_unlimited_plan_is_counted_but_never_refused(client: TestClient) -> None:
    assert [client.post("/agents", headers=GROWTH).status_code for _ in range(6)] == [201] * 6
    assert usage(client, GROWTH)["agents"] == 6


def test_set_usage_repairs_drift(backend: Backend) -> None:
    app = build(backend)
    with TestClient(app) as client:
        gateway = next(m.kwargs for m in app.user_middleware if "inner" in m.kwargs)
        quotas = next(stage for stage in cast(list[object], gateway["inner"]) if isinstance(stage, Quotas))
        asyncio.run(quotas.set_usage("ws_dev", "agents", 2))
        assert usage(client)["agents"] == 2
        assert [client.post("/agents", headers=DEV).status_code for _ in range(2)] == [201, 402]
        with pytest.raises(ValueError, match="usage is a count"):
            asyncio.run(quotas.set_usage("ws_dev", "agents", -1))


def test_a_replayed_creation_reserves_nothing_and_a_refused_one_is_not_stored(client: TestClient) -> None:
    keyed = {**DEV, "Idempotency-Key": "create-agent-1"}
    first = client.post("/agents", headers=keyed)
    again = client.post("/agents", headers=keyed)
    assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (201, 201, "true")
    assert usage(client)["agents"] == 1
    client.post("/agents", headers=DEV)
    client.post("/agents", headers=DEV)
    late = {**DEV, "Idempotency-Key": "create-agent-4"}
    assert client.post("/agents", headers=late).status_code == 402
    client.delete("/agents/a_1", headers=DEV)  # room again: the same key runs now (the 402 was not kept)
    retried = client.post("/agents", headers=late)
    assert (retried.status_code, "idempotent-replayed" in retried.headers) == (201, False)


def test_quota_store_unreachable_fails_closed_and_is_logged_as_a_store_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = build(RedisBackend(f"redis://127.0.0.1:{free_port()}/0"))
    with caplog.at_level(logging.INFO), TestClient(unreachable, raise_server_exceptions=False) as client:
        refused = [client.post("/agents", headers=DEV) for _ in range(3)]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [(503, "service_unavailable")] * 3
    logged = [(r.name, r.levelname) for r in caplog.records if r.name.startswith("errorkit")]
    assert logged == [("errorkit.store", "WARNING")]  # the policy's one line, no traceback per request


def test_quotas_refuse_unknown_resources_at_construction() -> None:
    from errorkit import Quotas

    with pytest.raises(ValueError, match="'gadgets', which has no limits"):
        Quotas(MemoryBackend(), limits={"Agents": {"Developer": 3}}, creates={"POST /gadgets": "gadgets"})
    with pytest.raises(ValueError, match="counts against 'Nothing'"):
        Quotas(MemoryBackend(), limits={"Agents": {"Developer": 3}}, resources={"agents": "Nothing"})


def test_a_plan_the_table_does_not_name_takes_the_default_then_the_strictest() -> None:
    from errorkit import Principal, Quotas

    def principal(plan: str | None) -> Principal:
        return Principal("ek_1", "ws_1", None, frozenset(), "WORKSPACE", plan)

    limits = {"Webhooks": {"Developer": 1, "Growth": 5, "Enterprise": None}}
    strict = Quotas(MemoryBackend(), limits=limits)
    assert [strict.limit_for(principal(p), "Webhooks") for p in ("Growth", "Enterprise", "Legacy", None)] == [
        5,
        None,
        1,
        1,
    ]
    lenient = Quotas(MemoryBackend(), limits=limits, default_plan="Growth")
    assert [lenient.limit_for(principal(p), "Webhooks") for p in ("Legacy", None)] == [5, 5]


# -- concurrency limits -----------------------------------------------------------------------


async def concurrently(app: Starlette, paths: list[str], headers: dict[str, str] = DEV) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.get(path, headers=headers) for path in paths))


def lifespan_started(app: Starlette) -> Callable[[], None]:
    client = TestClient(app)
    client.__enter__()
    return lambda: client.__exit__(None, None, None)


def test_at_most_n_in_flight_and_the_rest_get_429(backend: Backend) -> None:
    app = build(backend, concurrency=2)
    stop = lifespan_started(app)
    try:
        responses = asyncio.run(concurrently(app, ["/slow?sleep=0.3"] * 5))
    finally:
        stop()
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"] == {
        "code": "too_many_concurrent_requests",
        "message": "The workspace has too many requests in progress at once.",
        "doc_url": "https://docs.orq.ai/errors/too_many_concurrent_requests",
        "details": {"limit": 2, "in_flight": 2},
        "request_id": refused.headers["x-request-id"],
    }
    assert (refused.headers["retry-after"], refused.headers["retry-after-ms"], refused.headers["x-should-retry"]) == (
        "1",
        "1000",
        "true",
    )


def test_a_finished_request_has_given_its_slot_back_before_its_response(backend: Backend) -> None:
    with TestClient(build(backend, concurrency=1)) as client:
        assert [client.get("/slow?sleep=0", headers=DEV).status_code for _ in range(10)] == [200] * 10


def test_routes_count_apart_and_other_workspaces_apart(backend: Backend) -> None:
    app = build(backend, concurrency=1)
    stop = lifespan_started(app)
    try:
        other = {"Authorization": "Bearer ek_dev2.developer-secret-2"}

        async def main() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                responses = await asyncio.gather(
                    client.get("/slow?sleep=0.3", headers=DEV),
                    client.get("/quick?sleep=0.3", headers=DEV),
                    client.get("/slow?sleep=0.3", headers=other),
                )
                return [r.status_code for r in responses]

        assert asyncio.run(main()) == [200, 200, 200]
    finally:
        stop()


def test_a_long_request_renews_its_lease(backend: Backend) -> None:
    app = build(backend, concurrency=1, lease=0.3)
    stop = lifespan_started(app)
    try:

        async def main() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                long = asyncio.create_task(client.get("/slow?sleep=1.0", headers=DEV))
                await asyncio.sleep(0.7)  # past two leases: the slot is still held, renewed
                second = await client.get("/slow?sleep=0", headers=DEV)
                return [second.status_code, (await long).status_code]

        assert asyncio.run(main()) == [429, 200]
    finally:
        stop()


def test_a_crashed_request_gives_its_slot_back(backend: Backend) -> None:
    with TestClient(build(backend, concurrency=1), raise_server_exceptions=False) as client:
        assert client.get("/slow?sleep=x", headers=DEV).status_code == 500  # float("x") fails in the handler
        time.sleep(0.05)  # (given back in the background: no response to hold it for)
        assert client.get("/slow?sleep=0", headers=DEV).status_code == 200


def test_a_head_counts_as_its_get() -> None:
    from starlette.routing import Route

    from errorkit import ConcurrencyLimit, ErrorKit
    from tests.apps.quotas import slow

    app = Starlette(routes=[Route("/slow", slow)])
    ErrorKit().install(app, concurrency=ConcurrencyLimit(MemoryBackend(), routes={"GET /slow": 1}))

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            responses = await asyncio.gather(*(client.head("/slow?sleep=0.2") for _ in range(3)))
            return sorted(r.status_code for r in responses)

    assert asyncio.run(main()) == [200, 429, 429]


def test_a_step_cancelled_after_the_store_answered_gives_back_what_it_took() -> None:
    from errorkit._stages.lease import taken
    from errorkit._stores.protocols import Reserved

    async def main() -> list[Reserved]:
        given: list[Reserved] = []
        answered: asyncio.Future[Reserved] = asyncio.get_running_loop().create_future()

        async def give_back() -> None:
            given.append(answered.result())

        step = taken(answered, lambda reserved: reserved.admitted, Background(), "giving back", give_back)
        waiting = asyncio.ensure_future(step)
        await asyncio.sleep(0)  # the step is awaited
        answered.set_result(Reserved(True, 3))  # the store answered: a unit is taken
        waiting.cancel()  # and the request is cancelled before it resumes
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return given

    assert asyncio.run(main()) == [Reserved(True, 3)]


def test_a_routed_step_cancelled_after_it_finished_gives_back_too() -> None:
    """Cluster's routing (and a first command that connects) is a coroutine, not a bare Future."""
    from errorkit._stages.lease import taken
    from errorkit._stores.protocols import Slot

    async def main() -> list[Slot]:
        given: list[Slot] = []

        async def routed() -> Slot:
            return Slot(True, 1)

        async def give_back() -> None:
            given.append(Slot(True, 1))

        waiting = asyncio.ensure_future(
            taken(routed(), lambda slot: slot.acquired, Background(), "releasing", give_back)
        )
        await asyncio.sleep(0)  # `taken` started the step in a task of its own
        await asyncio.sleep(0)  # the step finished: the slot is taken
        waiting.cancel()  # before the request resumed
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return given

    assert asyncio.run(main()) == [Slot(True, 1)]


def test_a_head_has_its_own_entry_or_counts_as_its_get() -> None:
    from errorkit import ConcurrencyLimit

    both = ConcurrencyLimit(MemoryBackend(), routes={"HEAD /x": 5, "GET /x": 1})
    only_get = ConcurrencyLimit(MemoryBackend(), routes={"GET /x": 1}, limit=9)
    assert [both.bucket_for("HEAD", "/x"), only_get.bucket_for("HEAD", "/x"), only_get.bucket_for("HEAD", "/y")] == [
        ("HEAD /x", 5),
        ("GET /x", 1),
        ("*", 9),
    ]
    assert len(only_get.route_refusals("HEAD", "/x")) == 1  # documented as it runs


def test_renewal_outlives_a_store_error_and_stops_when_the_lease_is_gone() -> None:
    from errorkit import RedisError
    from errorkit._stages.lease import renew_while_held

    answers: list[object] = [RedisError("NOPERM"), True, False, True]

    async def renew() -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    asyncio.run(asyncio.wait_for(renew_while_held(renew, 0.01), 1))
    assert answers == [True]  # it stopped at the first "gone"


def test_concurrency_store_unreachable_fails_open() -> None:
    with TestClient(build(RedisBackend(f"redis://127.0.0.1:{free_port()}/0"))) as client:
        assert client.get("/slow?sleep=0", headers=DEV).status_code == 200


def test_redis_commands_per_request(redis_url: str) -> None:
    """What the README promises: a creation 2 commands (hold, then confirm or give back), a deletion 1,
    a limited request 2."""
    backend = RedisBackend(redis_url, prefix=f"q-{uuid.uuid4().hex[:8]}")
    with TestClient(build(backend), raise_server_exceptions=False) as client:
        client.get("/slow?sleep=0", headers=DEV)  # scripts loaded, connection open

        def commands(method: str, path: str, body: bytes = b"") -> int:
            before = backend.redis.commands_sent
            client.request(method, path, headers=DEV, content=body)
            return backend.redis.commands_sent - before

        commands("POST", "/agents")  # (the first use of a script: NOSCRIPT, then EVAL)
        commands("POST", "/agents", b"fail")
        commands("DELETE", "/agents/a_1")
        assert [
            commands("POST", "/agents"),
            commands("POST", "/agents", b"fail"),
            commands("DELETE", "/agents/a_1"),
        ] == [2, 2, 1]
        assert commands("GET", "/slow?sleep=0") == 2  # the slot taken and given back


def test_a_key_without_the_routes_permission_holds_no_unit_and_no_slot(backend: Backend) -> None:
    """A read-only key on a creation route of a workspace at its limit: 403, never the 402 with the
    workspace's usage; on a route whose only slot is taken: 403, never 429. Nothing is held for it."""
    read_only = {"Authorization": f"Bearer {READ_ONLY}"}
    app = build(backend, concurrency=1)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            created = [await client.post("/agents", headers=DEV) for _ in range(3)]
            assert [r.status_code for r in created] == [201, 201, 201]  # the workspace is at its limit
            flood = await asyncio.gather(*(client.post("/agents", headers=read_only) for _ in range(20)))
            holding = asyncio.ensure_future(client.post("/exports?sleep=0.3", headers=DEV))  # the only slot
            await asyncio.sleep(0.1)
            export = await client.post("/exports?sleep=0", headers=read_only)
            assert (await holding).status_code == 200
            usage = await client.get("/usage", headers=DEV)
            return [*flood, export, usage]

    with TestClient(app):  # (its lifespan registers the keys)
        *flood, export, usage = asyncio.run(main())
    for response, permission in [*((r, "agents:write") for r in flood), (export, "exports:write")]:
        assert response.status_code == 403
        error = response.json()["error"]
        assert (error["code"], error["details"]) == (
            "insufficient_scope",
            {"required_permission": permission, "key_scope": "PUBLIC"},
        )
    assert usage.json() == {"agents": 3, "knowledge_bases": 0, "memory_stores": 0}


def test_a_creation_outside_the_routes_holds_its_unit_around_the_creation(backend: Backend) -> None:
    quotas = Quotas(backend, limits={"Agents": {"Developer": 2}}, resources={"agents": "Agents"})
    principal = Principal("ek_x", "ws_out", None, frozenset(), "WORKSPACE", plan="Developer")

    async def main() -> list[object]:
        await backend.initialize()
        seen: list[object] = []
        async with await quotas.hold(principal, "agents") as hold:  # made: counted
            seen.append((hold.held, hold.usage, await quotas.usage("ws_out", "agents")))
        with pytest.raises(RuntimeError):
            async with await quotas.hold(principal, "agents"):  # failed: given back
                seen.append(await quotas.usage("ws_out", "agents"))
                raise RuntimeError("the insert failed")
        seen.append(await quotas.usage("ws_out", "agents"))
        async with await quotas.hold(principal, "agents"):
            with pytest.raises(Refused) as full:
                await quotas.hold(principal, "agents")
            seen.append(full.value.refusal.details)
        seen.append(await quotas.usage("ws_out", "agents"))
        await quotas.release("ws_out", "agents")  # a deletion outside the routes
        seen.append(await quotas.usage("ws_out", "agents"))
        return seen

    assert asyncio.run(main()) == [(True, 1, 1), 2, 1, {"usage": 2, "limit": 2, "resource": "Agents"}, 2, 1]


def test_a_failed_open_hold_holds_nothing() -> None:
    unreachable = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    quotas = Quotas(unreachable, limits={"Agents": {"Developer": 2}}, on_failure="fail_open")

    async def main() -> tuple[bool, int]:
        async with await quotas.hold(Principal("k", "w", None, frozenset(), "WORKSPACE"), "Agents") as hold:
            return hold.held, hold.usage

    assert asyncio.run(main()) == (False, 0)


def test_the_lifespan_shutdown_finishes_give_backs_still_running() -> None:
    """A server closes its event loop right after the lifespan ends: what is still being given back
    is finished first (bounded), not cancelled with the loop."""
    background = Background()
    finished: list[str] = []

    async def give_back() -> None:
        await asyncio.sleep(0.3)
        finished.append("given back")

    async def spawn(request: Request) -> Response:
        background.spawn(give_back())
        return Response(status_code=204)

    app = Starlette(routes=[Route("/spawn", spawn)])
    ErrorKit().install(app)
    with TestClient(app) as client:
        assert client.get("/spawn").status_code == 204
        assert finished == []
    assert finished == ["given back"]  # the shutdown waited for it


def test_a_hold_is_renewed_while_referenced_and_lapses_once_dropped() -> None:
    backend = MemoryBackend()
    # (a lease long enough that a pause of up to a second between renewals on a loaded machine keeps it)
    quotas = Quotas(backend, limits={"Agents": {"Developer": 5}}, lease=1.5)
    principal = Principal("ek_x", "ws_r", None, frozenset(), "WORKSPACE", plan="Developer")

    async def main() -> list[int]:
        seen = []
        kept = await quotas.hold(principal, "Agents")  # a long creation: renewed every 0.5 s
        dropped = await quotas.hold(principal, "Agents")  # forgotten by its caller, never settled
        del dropped
        gc.collect()
        await asyncio.sleep(3.0)  # two leases
        seen.append(await quotas.usage("ws_r", "Agents"))  # the kept one only
        await kept.confirm()
        seen.append(await quotas.usage("ws_r", "Agents"))
        await asyncio.sleep(0.7)  # past the next renewal time
        seen.append(len(quotas._background.tasks))  # no renewal left running
        return seen

    assert asyncio.run(main()) == [1, 1, 0]
