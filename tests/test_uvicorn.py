"""The handlers on the wire: a real uvicorn server and a real HTTP client."""

from collections.abc import Iterator

import httpx
import pytest

from tests.apps.routes import SECRET
from tests.support.servers import Uvicorn, uvicorn


@pytest.fixture(scope="module", params=["starlette_app", "fastapi_app"])
def server(request: pytest.FixtureRequest) -> Iterator[Uvicorn]:
    with uvicorn(f"tests.support.served:{request.param}") as running:
        yield running


def test_crash_is_formatted_and_logged_once_with_request_id(server: Uvicorn) -> None:
    r = httpx.get(f"{server.url}/boom", headers={"X-Request-ID": "wire-1", "Origin": "https://x.example"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "wire-1"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-ratelimit-limit"] == "100"
    assert SECRET not in r.text
    log = server.output(wait_for=f"RuntimeError: {SECRET}")
    assert log.count("request id wire-1") == 1
    assert log.count(f"RuntimeError: {SECRET}") == 1  # the traceback reaches the log once


def test_streaming_crash_after_first_chunk_breaks_the_body(server: Uvicorn) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{server.url}/stream-late", headers={"X-Request-ID": "wire-2"})
    assert server.output(wait_for="request id wire-2").count("request id wire-2") == 1


def test_malformed_body_over_the_wire(server: Uvicorn) -> None:
    r = httpx.post(f"{server.url}/topics", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    rid = r.headers["x-request-id"]
    if "starlette" in server.app:  # the detail document's kit
        assert r.json() == {"detail": "The request body is not valid JSON.", "code": "invalid_json", "request_id": rid}
    else:  # the envelope document's kit
        assert r.json()["error"]["code"] == "invalid_request_body"
        assert r.json()["error"]["details"]["issues"] == [
            {"loc": ["body", 1], "msg": "JSON decode error", "type": "json_invalid"}
        ]


def test_unknown_route_and_method_over_the_wire(server: Uvicorn) -> None:
    assert httpx.get(f"{server.url}/nowhere").status_code == 404
    r = httpx.put(f"{server.url}/topics")
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
