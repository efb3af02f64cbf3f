import re

import pytest
from starlette.testclient import TestClient
from widgets_app import WidgetNotFound, create_app, kit, plan_quotas

from errorkit import MemoryBackend, RedisBackend, StoreUnavailable
from errorkit.testing import assert_error, set_usage


def test_a_missing_widget_is_the_documented_error(client: TestClient, api_key: str) -> None:
    response = client.get("/widgets/w_404", headers={"X-API-Key": api_key})
    assert_error(response, WidgetNotFound, widget_id="w_404")


def test_a_request_without_a_key_is_refused(client: TestClient) -> None:
    response = client.get("/widgets/w_1")
    assert_error(response, "unauthorized", registry=kit)
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


def test_the_sixth_request_in_a_minute_is_limited(client: TestClient, api_key: str) -> None:
    statuses = [client.get("/widgets/w_1", headers={"X-API-Key": api_key}).status_code for _ in range(5)]
    assert statuses == [404, 404, 404, 404, 404]
    limited = client.get("/widgets/w_1", headers={"X-API-Key": api_key})
    assert_error(limited, "rate_limit_exceeded", registry=kit, limit=5)


def test_a_full_plan_refuses_a_creation(
    client: TestClient, api_key: str, errorkit_memory_backend: MemoryBackend
) -> None:
    set_usage(plan_quotas(errorkit_memory_backend), "ws_test", "widgets", 3)  # the free plan's 3 widgets
    response = client.post("/widgets", headers={"X-API-Key": api_key}, json={"name": "fourth"})
    assert_error(response, "quota_exceeded", registry=kit, usage=3, limit=3)


def test_a_retry_is_replayed(client: TestClient, api_key: str) -> None:
    headers = {"X-API-Key": api_key, "Idempotency-Key": "create-1"}
    first = client.post("/widgets", headers=headers, json={"name": "first"})
    again = client.post("/widgets", headers=headers, json={"name": "first"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()


def test_an_unreachable_store_stops_the_start_up() -> None:
    app = create_app(RedisBackend("redis://127.0.0.1:1/0"))  # check_stores=True: reached as the app starts
    with (
        pytest.raises(StoreUnavailable, match=re.escape("cannot reach the store redis://127.0.0.1:1/0")),
        TestClient(app),
    ):
        pass
