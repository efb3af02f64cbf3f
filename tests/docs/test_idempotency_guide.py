"""guides/idempotency.md: its snippets run as shown, and the responses it shows are the real ones."""

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from errorkit import register_api_key
from tests.docs.support import asgi_client, assert_response, fences, load, load_in_memory, register
from tests.support.servers import Redis

PAGE = "guides/idempotency.md"
KEY_A, KEY_A2, KEY_B = "ek_docsa.docs-secret-a", "ek_docsa2.docs-secret-a2", "ek_docsb.docs-secret-b"
PAYMENT = {"amount": 1000, "currency": "eur"}


def test_the_first_example_replays_refuses_and_waits(store_url: str) -> None:
    module = load("idempotency/app.py")
    blocks = fences(PAGE, "http")
    assert len(blocks) == 5

    async def run() -> dict[str, Any]:
        store = module["store"]
        await register_api_key(store, KEY_A, workspace_id="ws_1")
        await register_api_key(store, KEY_A2, workspace_id="ws_1")
        await register_api_key(store, KEY_B, workspace_id="ws_2")
        a = {"X-API-Key": KEY_A}
        async with asgi_client(module["app"]) as client:
            answers: dict[str, Any] = {}
            answers["first"] = await client.post("/payments", headers={**a, "Idempotency-Key": "p-1"}, json=PAYMENT)
            answers["again"] = await client.post("/payments", headers={**a, "Idempotency-Key": "p-1"}, json=PAYMENT)
            other = {**PAYMENT, "amount": 2000}
            answers["other"] = await client.post("/payments", headers={**a, "Idempotency-Key": "p-1"}, json=other)
            answers["no_key"] = await client.post("/payments", headers=a, json=PAYMENT)
            answers["second_key"] = await client.post(
                "/payments", headers={"X-API-Key": KEY_A2, "Idempotency-Key": "p-1"}, json=PAYMENT
            )
            answers["other_workspace"] = await client.post(
                "/payments", headers={"X-API-Key": KEY_B, "Idempotency-Key": "p-1"}, json=PAYMENT
            )
            answers["invalid"] = [
                await client.post("/payments", headers={**a, "Idempotency-Key": value}, json=PAYMENT)
                for value in ["", " ", "x" * 256, "clé".encode("latin-1")]
            ]
            twice = httpx.Headers([("X-API-Key", KEY_A), ("Idempotency-Key", "p-2"), ("Idempotency-Key", "p-3")])
            answers["invalid"].append(await client.post("/payments", headers=twice, json=PAYMENT))
            answers["longest"] = await client.post(
                "/payments", headers={**a, "Idempotency-Key": "k" * 255}, json=PAYMENT
            )

            # a retry while the first still runs, then after it finished
            report = {**a, "Idempotency-Key": "r-1"}
            running = asyncio.create_task(client.post("/reports", headers=report))
            await asyncio.sleep(0.3)
            answers["in_use"] = await client.post("/reports", headers=report)
            answers["report"] = await running
            answers["report_again"] = await client.post("/reports", headers=report)

            # a stored 4xx keeps the request id of the request that ran
            answers["bad"] = await client.post("/payments", headers={**a, "Idempotency-Key": "b-1"}, json={})
            answers["bad_again"] = await client.post("/payments", headers={**a, "Idempotency-Key": "b-1"}, json={})
            answers["too_large"] = await client.post(
                "/payments", headers={**a, "Idempotency-Key": "big"}, content=b"x" * (10 * 1024 * 1024 + 1)
            )
        return answers

    answers = asyncio.run(run())
    assert_response(blocks[0], answers["first"])
    assert_response(blocks[1], answers["again"])
    assert answers["again"].headers["x-request-id"] != answers["first"].headers["x-request-id"]
    assert_response(blocks[2], answers["other"])
    assert_response(blocks[3], answers["in_use"])
    assert_response(blocks[4], answers["no_key"])

    # separate per API key and per workspace: each ran once more
    assert (answers["second_key"].status_code, answers["second_key"].json()["id"]) == (201, "pay_2")
    assert (answers["other_workspace"].status_code, answers["other_workspace"].json()["id"]) == (201, "pay_3")
    assert "idempotent-replayed" not in answers["other_workspace"].headers
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers["invalid"]] == [
        (400, "invalid_idempotency_key")
    ] * 5
    assert answers["longest"].status_code == 201

    assert answers["report"].status_code == 201 and answers["report"].json() == {"report": "ready"}
    assert answers["report_again"].headers["idempotent-replayed"] == "true"
    assert answers["report_again"].content == answers["report"].content

    bad, bad_again = answers["bad"], answers["bad_again"]
    assert bad.status_code == bad_again.status_code == 400 and bad_again.headers["idempotent-replayed"] == "true"
    assert bad_again.content == bad.content and bad_again.headers["x-should-retry"] == "false"
    assert bad_again.json()["error"]["request_id"] == bad.headers["x-request-id"] != bad_again.headers["x-request-id"]
    assert (answers["too_large"].status_code, answers["too_large"].json()["error"]["code"]) == (
        413,
        "payload_too_large",
    )

    # every one of them counted against the workspace's rate limit, replays and refusals included
    ws_1 = [answers[k] for k in ("first", "again", "other", "no_key")]
    assert [r.headers["x-ratelimit-remaining"] for r in ws_1] == ["99", "98", "97", "96"]


def test_the_options() -> None:
    module = load_in_memory("idempotency/options.py")
    idempotency = module["idempotency"]
    assert idempotency.methods == {"POST", "PUT"}
    assert idempotency.ttl_ms == 7 * 24 * 3600 * 1000 and idempotency.wait == 2.0

    async def run() -> dict[str, Any]:
        answers: dict[str, Any] = {}
        async with asgi_client(module["app"]) as client, asgi_client(module["app"], "203.0.113.7") as elsewhere:
            key = {"Idempotency-Key": "o-1"}
            first = asyncio.create_task(client.post("/orders", headers=key))
            await asyncio.sleep(0.2)
            answers["waited"] = await client.post("/orders", headers=key)  # waits for the first, then replays it
            answers["first"] = await first
            answers["elsewhere"] = await elsewhere.post("/orders", headers=key)  # another client address
            put = {"Idempotency-Key": "u-1"}
            answers["put"] = [await client.put("/orders/o_1", headers=put, json={"n": 1}) for _ in range(2)]
            hook = {"Idempotency-Key": "w-1"}
            answers["hooks"] = [await client.post("/webhooks/stripe", headers=hook) for _ in range(2)]
            big = b"x" * ((1 << 20) + 1)
            answers["large"] = await client.put("/orders/o_1", headers={"Idempotency-Key": "big"}, content=big)
            answers["large_no_key"] = await client.put("/orders/o_1", content=big)
        return answers

    answers = asyncio.run(run())
    first, waited = answers["first"], answers["waited"]
    assert (first.status_code, first.json(), first.headers["location"]) == (201, {"id": "o_1"}, "/orders/o_1")
    assert (waited.status_code, waited.content, waited.headers["idempotent-replayed"]) == (201, first.content, "true")
    assert (waited.headers["location"], waited.headers["x-trace-id"]) == ("/orders/o_1", "t-1")  # kept
    assert "x-served-by" in first.headers and "x-served-by" not in waited.headers  # not in replay_headers
    assert answers["elsewhere"].json() == {"id": "o_2"} and "idempotent-replayed" not in answers["elsewhere"].headers

    put_first, put_again = answers["put"]
    assert put_again.headers["idempotent-replayed"] == "true" and put_again.content == put_first.content
    assert [r.json()["received"] for r in answers["hooks"]] == [4, 5]  # exempt: both ran
    assert all("idempotent-replayed" not in r.headers for r in answers["hooks"])
    assert answers["large"].status_code == 413
    assert answers["large_no_key"].status_code == 200  # no key: nothing to fingerprint


def test_a_5xx_and_a_raising_handler_release_the_key() -> None:
    """Not stored: the retry runs again (`store_5xx=False`, the default)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from errorkit import ErrorKit, Idempotency, MemoryBackend

    runs = []

    async def flaky(request: Request) -> JSONResponse:
        runs.append(1)
        if len(runs) == 1:
            return JSONResponse({"ok": False}, status_code=503)
        if len(runs) == 2:
            raise RuntimeError("boom")
        return JSONResponse({"ok": True}, status_code=201)

    app = Starlette(routes=[Route("/jobs", flaky, methods=["POST"])])
    ErrorKit().install(app, idempotency=Idempotency(MemoryBackend()))
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [client.post("/jobs", headers={"Idempotency-Key": "j-1"}) for _ in range(4)]
    assert [r.status_code for r in answers] == [503, 500, 201, 201]
    assert len(runs) == 3 and answers[3].headers["idempotent-replayed"] == "true"


def test_redis_commands_per_request_and_the_size_of_a_record(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Redis, the key's record cached: two commands for a first-time POST, one for a replay or a GET
    (an EVALSHA each, no key look-up); and the record the payment's 45-byte response leaves in Redis."""
    monkeypatch.setenv("REDIS_URL", redis.url)
    module = load("idempotency/app.py")
    store, key = module["store"], {"X-API-Key": KEY_A}
    sent = ("evalsha", "eval", "hgetall")  # what a request sends itself (a script's own GET, SET, EXISTS count too)

    def calls(client: TestClient) -> dict[str, int]:
        text = client.portal.call(store.redis.execute, "INFO", "commandstats").decode()
        found = {line.split(":")[0].removeprefix("cmdstat_"): line for line in text.splitlines()}
        return {name: int(found[name].split("calls=")[1].split(",")[0]) if name in found else 0 for name in sent}

    def commands_of(
        client: TestClient, method: str, url: str, headers: dict[str, str], body: bytes = b""
    ) -> dict[str, int]:
        before = calls(client)
        answer = client.request(method, url, headers=headers, content=body)
        assert answer.status_code in (200, 201), answer.text
        after = calls(client)
        return {name: after[name] - before[name] for name in sent if after[name] != before[name]}

    def records(client: TestClient) -> set[bytes]:
        return set(client.portal.call(store.redis.execute, "KEYS", "errorkit:ik:*"))

    payment = {**key, "Idempotency-Key": "p-9", "content-type": "application/json"}
    body = json.dumps(PAYMENT).encode()
    with TestClient(module["app"]) as client:
        register(client, store, KEY_A, "ws_1")
        for i in range(3):  # the key's record cached (its change feed up), every script loaded
            client.get("/payments/pay_0", headers=key)
            client.post("/payments", headers={**payment, "Idempotency-Key": f"warm-{i}"}, content=body)
            time.sleep(0.2)
        before = records(client)
        first = commands_of(client, "POST", "/payments", payment, body)
        (record,) = records(client) - before
        replay = commands_of(client, "POST", "/payments", payment, body)
        get = commands_of(client, "GET", "/payments/pay_1", key)
        size = client.portal.call(store.redis.execute, "MEMORY", "USAGE", record)
        response = client.post("/payments", headers=payment, content=body).content
    assert first == {"evalsha": 2}
    assert replay == get == {"evalsha": 1}
    assert len(response) == 45 and 150 <= size <= 250, size  # the page: "about 200 bytes"
