"""guides/quotas.md: its snippets run as shown, and the response it shows is the real one."""

import pytest
from starlette.testclient import TestClient

from tests.docs.support import assert_response, fences, load, register
from tests.support.servers import Redis

PAGE = "guides/quotas.md"
FREE, PRO, OTHER = "ek_free.docs-secret-free", "ek_pro.docs-secret-pro", "ek_other.docs-secret-other"


def test_the_first_example_holds_a_unit_per_widget(store_url: str) -> None:
    module = load("quotas/app.py")
    quotas = module["quotas"]
    (block,) = fences(PAGE, "http")
    free, pro = {"X-API-Key": FREE}, {"X-API-Key": PRO}

    with TestClient(module["app"]) as client:
        register(client, module["store"], FREE, "ws_free", plan="free")
        register(client, module["store"], PRO, "ws_pro", plan="pro")
        register(client, module["store"], OTHER, "ws_other", plan="startup")  # a plan the table does not name

        def usage(workspace: str) -> int:
            return client.portal.call(quotas.usage, workspace, "widgets")  # type: ignore[union-attr]

        created = [client.post("/widgets", headers=free, json={"name": f"n{i}"}) for i in range(3)]
        fourth = client.post("/widgets", headers=free, json={"name": "n4"})
        invalid_when_full = client.post("/widgets", headers=free, json={})  # the quota first: 402
        deleted = client.delete("/widgets/w_1", headers=free)
        gone = client.delete("/widgets/w_1", headers=free)  # a 404 gives nothing back
        after_delete = usage("ws_free")
        invalid = client.post("/widgets", headers=free, json={})  # the app refuses it: its unit comes back
        after_invalid = usage("ws_free")
        refilled = client.post("/widgets", headers=free, json={"name": "n5"})
        full_again = client.post("/widgets", headers=free, json={"name": "n6"})
        pro_created = [client.post("/widgets", headers=pro, json={"name": f"p{i}"}) for i in range(5)]
        other = [client.post("/widgets", headers={"X-API-Key": OTHER}, json={"name": f"o{i}"}) for i in range(4)]
        anonymous = client.post("/widgets", json={"name": "x"})
        final = {ws: usage(ws) for ws in ("ws_free", "ws_pro", "ws_other")}

    assert [r.status_code for r in created] == [201, 201, 201]
    assert created[0].json() == {"id": "w_1", "name": "n0"}
    assert_response(block, fourth)
    assert invalid_when_full.status_code == 402
    assert (deleted.status_code, gone.status_code, after_delete) == (204, 404, 2)
    assert (invalid.status_code, invalid.json()["error"]["code"], after_invalid) == (400, "invalid_request_body", 2)
    assert refilled.status_code == 201 and full_again.status_code == 402
    assert [r.status_code for r in pro_created] == [201] * 5
    # no plan of the table: the group's strictest limit (no default_plan here)
    assert [r.status_code for r in other] == [201, 201, 201, 402]
    assert anonymous.status_code == 401
    assert final == {"ws_free": 3, "ws_pro": 5, "ws_other": 3}


def test_holds_groups_and_repairs(store_url: str) -> None:
    module = load("quotas/hold.py")
    quotas, agents = module["quotas"], module["agents"]
    assert quotas.group_of("agents") == quotas.group_of("agent_templates") == "Agents"
    key = {"X-API-Key": FREE}

    with TestClient(module["app"]) as client:
        register(client, module["store"], FREE, "ws_1", plan="free")  # not in the table: Developer's limit, 2
        imported = client.post("/agents/import", headers=key, json=["alpha", "beta", "gamma"])
        usage = client.portal.call(quotas.usage, "ws_1", "agent_templates")  # type: ignore[union-attr]
        del agents["a_1"]  # deleted behind errorkit's back
        stale = client.portal.call(quotas.usage, "ws_1", "agents")  # type: ignore[union-attr]
        repaired = client.portal.call(module["recount"], "ws_1")  # type: ignore[union-attr]
        again = client.post("/agents/import", headers=key, json=["delta"])
        refused = client.post("/agents/import", headers=key, json=["epsilon"])

    assert imported.status_code == 402
    assert imported.json()["error"]["details"] == {"usage": 2, "limit": 2}
    assert agents == {"a_2": ("ws_1", "beta"), "a_3": ("ws_1", "delta")}
    assert (usage, stale, repaired) == (2, 2, 1)
    assert (again.status_code, again.json()) == (201, ["a_2", "a_3"])
    assert refused.status_code == 402


def test_an_exception_inside_a_hold_gives_the_unit_back() -> None:
    import asyncio

    from errorkit import MemoryBackend, Principal, Quotas, Refused

    async def run() -> list[int]:
        quotas = Quotas(MemoryBackend(), limits={"agents": {"Developer": 1}})
        principal = Principal("k", "ws_1", None, frozenset(), "WORKSPACE", plan="Developer")
        seen = []
        with pytest.raises(RuntimeError):
            async with await quotas.hold(principal, "agents"):
                seen.append(await quotas.usage("ws_1", "agents"))  # held: counted while it runs
                raise RuntimeError("the insert failed")
        seen.append(await quotas.usage("ws_1", "agents"))
        async with await quotas.hold(principal, "agents"):
            pass
        seen.append(await quotas.usage("ws_1", "agents"))
        with pytest.raises(Refused):
            await quotas.hold(principal, "agents")
        return seen

    assert asyncio.run(run()) == [1, 0, 1]


def test_after_a_data_loss_a_new_key_makes_usage_read_0(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why usage must be set again after a loss: 503 until a key is registered, then counts from 0."""
    monkeypatch.setenv("REDIS_URL", redis.url)
    module = load("quotas/app.py")
    free = {"X-API-Key": FREE}
    with TestClient(module["app"]) as client:
        register(client, module["store"], FREE, "ws_free", plan="free")
        full = [client.post("/widgets", headers=free, json={"name": f"n{i}"}).status_code for i in range(4)]
        client.portal.call(module["store"].redis.execute, "FLUSHALL")  # Redis lost errorkit's data
        register(client, module["store"], PRO, "ws_pro", plan="pro")  # the key records are gone: FREE's too
        register(client, module["store"], FREE, "ws_free", plan="free")
        after = [client.post("/widgets", headers=free, json={"name": f"m{i}"}).status_code for i in range(4)]
    assert full == [201, 201, 201, 402]
    assert after == [201, 201, 201, 402]  # the plan's three again: the workspace's usage read as 0


def test_a_group_without_a_count_is_a_503_while_the_redis_is_unmarked(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis.url)
    module = load("quotas/app.py")
    free = {"X-API-Key": FREE}
    with TestClient(module["app"]) as client:
        register(client, module["store"], FREE, "ws_free", plan="free")
        assert client.post("/widgets", headers=free, json={"name": "a"}).status_code == 201
        # the marker and the usage lost, the key record kept (restored from elsewhere, say)
        client.portal.call(module["store"].redis.execute, "DEL", "errorkit:dataset")
        for name in client.portal.call(module["store"].redis.execute, "KEYS", "errorkit:q*"):
            client.portal.call(module["store"].redis.execute, "DEL", name)
        lost = client.post("/widgets", headers=free, json={"name": "b"})
        register(client, module["store"], PRO, "ws_pro", plan="pro")  # issuing any key marks the Redis again
        again = client.post("/widgets", headers=free, json={"name": "c"})
    assert (lost.status_code, lost.json()["error"]["code"]) == (503, "service_unavailable")
    assert again.status_code == 201


def test_the_envelope_api_plan_table_is_a_limits_table() -> None:
    from fastapi import FastAPI

    from errorkit import APIKeyAuth, ErrorKit, MemoryBackend, Quotas, catalogs
    from errorkit.catalogs.envelope_api import PLAN_LIMITS

    assert set(PLAN_LIMITS) == {"Deployments", "Agents", "Knowledge Bases + Memory Stores", "Webhooks"}
    assert all(set(plans) == {"Developer", "Growth", "Enterprise"} for plans in PLAN_LIMITS.values())
    store = MemoryBackend()
    app = FastAPI()

    @app.post("/deployments", status_code=201)
    async def deploy() -> dict[str, str]:
        return {}

    quotas = Quotas(store, limits=PLAN_LIMITS, creates={"POST /deployments": "Deployments"})
    ErrorKit(catalog=catalogs.ENVELOPE_API).install(app, auth=APIKeyAuth(store), quotas=quotas)
    with TestClient(app) as client:
        register(client, store, FREE, "ws_1", plan="Developer")
        answers = [client.post("/deployments", headers={"X-API-Key": FREE}) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 402]
    assert answers[3].json()["error"]["code"] == "quota_exceeded"
