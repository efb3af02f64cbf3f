from starlette.testclient import TestClient
from widgets_app import create_app, kit

from errorkit import RedisBackend
from errorkit.testing import assert_error, issue_key


def test_keys_limits_and_replays_on_redis(errorkit_redis_backend: RedisBackend) -> None:
    store = errorkit_redis_backend  # this test's own key prefix, deleted afterwards
    api_key = issue_key(store, workspace_id="ws_test", plan="free")
    with TestClient(create_app(store)) as client:
        headers = {"X-API-Key": api_key, "Idempotency-Key": "create-1"}
        first = client.post("/widgets", headers=headers, json={"name": "first"})
        again = client.post("/widgets", headers=headers, json={"name": "first"})
        statuses = [client.get("/widgets/w_1", headers={"X-API-Key": api_key}).status_code for _ in range(3)]
        limited = client.get("/widgets/w_1", headers={"X-API-Key": api_key})
        assert client.portal is not None
        client.portal.call(store.close)  # its connection lives on the client's event loop, which ends with the block
    assert (first.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert statuses == [404, 404, 404]  # the two POSTs counted too: 5/minute
    assert_error(limited, "rate_limit_exceeded", registry=kit, limit=5)
