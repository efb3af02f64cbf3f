import functools

from starlette.testclient import TestClient
from widgets_app import create_app

from errorkit import Backend, issue_api_key


def test_keys_limits_and_replays_on_redis(redis_store: Backend) -> None:
    with TestClient(create_app(redis_store)) as client:
        api_key = client.portal.call(functools.partial(issue_api_key, redis_store, workspace_id="ws_test"))
        headers = {"X-API-Key": api_key, "Idempotency-Key": "create-1"}
        first = client.post("/widgets", headers=headers, json={"name": "first"})
        again = client.post("/widgets", headers=headers, json={"name": "first"})
        statuses = [client.get("/widgets/w_1", headers={"X-API-Key": api_key}).status_code for _ in range(4)]
        client.portal.call(redis_store.close)
    assert (first.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert statuses == [404, 404, 404, 429]  # the two POSTs counted too: 5/minute
