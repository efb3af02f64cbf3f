"""guides/one-piece.md: each piece alone (idempotency, rate limits, the error handlers), the app's
own handlers kept with `handlers=False`; every output block on the page is what the code answers."""

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import ErrorKit, Idempotency, MemoryBackend, RedisBackend
from tests.docs.support import assert_response, fences, load

PAGE = "guides/one-piece.md"


def snippet(name: str) -> dict[str, Any]:
    return load(f"one_piece/{name}")


def test_only_idempotency(store_url: str) -> None:
    loaded = snippet("only_idempotency.py")  # one_piece/only_idempotency.py
    store = loaded["store"]
    assert isinstance(store, MemoryBackend if store_url == "memory://" else RedisBackend)
    https = fences(PAGE, "http")
    with TestClient(loaded["app"], raise_server_exceptions=False) as client:
        if isinstance(store, RedisBackend):
            client.portal.call(store.initialize)  # (a new Redis: mark it as errorkit's, as `errorkit store init` does)
        key = {"Idempotency-Key": "o-1"}
        first = client.post("/orders", json={"amount": 5}, headers=key)
        again = client.post("/orders", json={"amount": 5}, headers=key)
        assert (first.status_code, first.json()) == (201, {"id": "o_1", "amount": 5})
        assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (201, first.json(), "true")

        assert_response(https[0], client.get("/nowhere"))
        assert_response(https[1], client.post("/orders", json={"amount": 6}, headers=key))
        assert_response(https[2], client.get("/orders/o_9"))
        assert_response(
            https[3], client.post("/orders", content=b"{not json", headers={"content-type": "application/json"})
        )


def test_a_raised_error_is_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    loaded = snippet("only_idempotency.py")
    runs = []

    async def refund(request: Any) -> Any:
        runs.append(1)
        raise loaded["OrderNotFound"](order_id="o_2")

    app = Starlette(routes=[Route("/refunds", refund, methods=["POST"])])
    loaded["kit"].install(app, handlers=False, idempotency=Idempotency(MemoryBackend()))
    with TestClient(app) as client:
        answers = [client.post("/refunds", headers={"Idempotency-Key": "r-1"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [404, 404] and len(runs) == 1
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[1].json()["code"] == "order_not_found"


def test_only_rate_limits(store_url: str) -> None:
    loaded = snippet("only_rate_limits.py")  # one_piece/only_rate_limits.py
    https = fences(PAGE, "http")
    with TestClient(loaded["app"]) as client:
        if store_url != "memory://":
            client.portal.call(loaded["store"].initialize)
        assert_response(https[5], client.post("/orders", json={"amount": "many"}))  # (counted too)
        created = client.post("/orders", json={"amount": 1})
        assert (created.status_code, created.json()) == (201, {"amount": 1})
        assert_response(https[4], client.post("/orders", json={"amount": 1}))
        responses = client.get("/openapi.json").json()["paths"]["/orders"]["post"]["responses"]
    assert sorted(responses) == ["201", "422", "429"]
    assert responses["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    assert responses["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_only_the_error_handlers() -> None:
    loaded = snippet("only_handlers.py")  # one_piece/only_handlers.py
    with TestClient(loaded["app"]) as client:
        assert_response(fences(PAGE, "http")[6], client.get("/orders/2"))
        assert client.get("/orders/1").json() == {"id": 1}
        invalid = client.get("/orders/x")
        assert (invalid.status_code, invalid.headers["content-type"], invalid.json()["code"]) == (
            422,
            "application/problem+json",
            "validation_error",
        )


def test_install_is_called_once_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    app = snippet("only_handlers.py")["app"]
    with pytest.raises(RuntimeError) as raised:
        ErrorKit().install(app)
    assert str(raised.value) == "an ErrorKit is already installed on this app"
    TestClient(app).get("/orders/1")
    fresh = snippet("only_rate_limits.py")["app"]
    TestClient(fresh).get("/openapi.json")
    with pytest.raises(RuntimeError):
        ErrorKit().install(fresh)
