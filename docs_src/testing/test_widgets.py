import re

import pytest
from starlette.testclient import TestClient
from widgets_app import create_app

from errorkit import RedisBackend, StoreUnavailable


def test_a_missing_widget_is_the_documented_error(client: TestClient, api_key: str) -> None:
    response = client.get("/widgets/w_404", headers={"X-API-Key": api_key, "X-Request-ID": "req-1"})
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "widget_not_found",
            "message": "Widget w_404 does not exist",
            "details": {"widget_id": "w_404"},
            "request_id": "req-1",
        }
    }


def test_a_request_without_a_key_is_refused(client: TestClient) -> None:
    response = client.get("/widgets/w_1", headers={"X-Request-ID": "req-2"})
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": "Unauthorized", "request_id": "req-2"}}
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


def test_the_sixth_request_in_a_minute_is_limited(client: TestClient, api_key: str) -> None:
    statuses = [client.get("/widgets/w_1", headers={"X-API-Key": api_key}).status_code for _ in range(6)]
    assert statuses == [404, 404, 404, 404, 404, 429]


def test_a_retry_is_replayed(client: TestClient, api_key: str) -> None:
    headers = {"X-API-Key": api_key, "Idempotency-Key": "create-1"}
    first = client.post("/widgets", headers=headers, json={"name": "first"})
    again = client.post("/widgets", headers=headers, json={"name": "first"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()


def test_an_unreachable_redis_stops_the_start_up() -> None:
    app = create_app(RedisBackend("redis://127.0.0.1:1/0"))  # check_stores=True: reached as the app starts
    with (
        pytest.raises(StoreUnavailable, match=re.escape("cannot reach the store redis://127.0.0.1:1/0")),
        TestClient(app),
    ):
        pass
