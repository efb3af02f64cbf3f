"""Every errorkit log record carries the request id, the code and the workspace in `extra`."""

import asyncio
import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    Idempotency,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
    RequestContextFilter,
    register_api_key,
)
from tests.support.servers import free_port

ONE = {"X-API-Key": "ek_one.workspace-one-1"}
app_logger = logging.getLogger("tests.app")


async def work(request: Request) -> Response:
    app_logger.warning("handled")
    return JSONResponse({"ok": True})


async def boom(request: Request) -> Response:
    raise RuntimeError("crash")


def client(*, limiter_store: str = "memory") -> TestClient:
    keys = MemoryBackend()
    asyncio.run(register_api_key(keys, ONE["X-API-Key"], workspace_id="ws_1"))
    counters = MemoryBackend() if limiter_store == "memory" else RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    app = Starlette(routes=[Route("/work", work, methods=["GET", "POST"]), Route("/boom", boom)])
    ErrorKit().install(
        app,
        auth=APIKeyAuth(keys),
        rate_limit=RateLimiter(counters, on_failure="fail_closed"),
        idempotency=Idempotency(keys),
    )
    return TestClient(app, raise_server_exceptions=False)


def fields(record: logging.LogRecord) -> tuple[object, object, object]:
    return record.request_id, record.code, record.workspace_id  # type: ignore[attr-defined]


def test_a_crash_is_logged_with_its_request_code_and_workspace(caplog: pytest.LogCaptureFixture) -> None:
    with client() as c, caplog.at_level(logging.ERROR, logger="errorkit"):
        response = c.get("/boom", headers={**ONE, "X-Request-ID": "req-crash-1"})
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "errorkit"]
    assert fields(record) == ("req-crash-1", "internal_error", "ws_1")


def test_a_store_failure_is_logged_with_the_request_that_met_it(caplog: pytest.LogCaptureFixture) -> None:
    with client(limiter_store="dead redis") as c, caplog.at_level(logging.WARNING, logger="errorkit.store"):
        response = c.get("/work", headers={**ONE, "X-Request-ID": "req-store-1"})
    assert response.status_code == 503
    (record,) = [r for r in caplog.records if r.name == "errorkit.store"]
    assert fields(record) == ("req-store-1", "service_unavailable", "ws_1")
    assert (record.stage, record.store) == ("rate limiting", "redis")  # type: ignore[attr-defined]


def test_a_rejected_key_is_logged_without_a_workspace(caplog: pytest.LogCaptureFixture) -> None:
    with client() as c, caplog.at_level(logging.INFO, logger="errorkit.auth"):
        response = c.get("/work", headers={"X-API-Key": "ek_one.not-the-secret", "X-Request-ID": "req-key-1"})
    assert response.status_code == 401
    (record,) = [r for r in caplog.records if r.name == "errorkit.auth"]
    assert fields(record) == ("req-key-1", "invalid_api_key", None)
    assert "not-the-secret" not in record.getMessage()


def test_the_filter_gives_an_apps_own_records_the_same_fields() -> None:
    lines: list[str] = []

    class JSONLines(logging.Handler):  # what the README's JSON set-up prints, kept in a list
        def emit(self, record: logging.LogRecord) -> None:
            fields = {name: getattr(record, name) for name in ("request_id", "workspace_id", "code")}
            lines.append(json.dumps({"message": record.getMessage(), **fields}))

    handler = JSONLines()
    handler.addFilter(RequestContextFilter())
    app_logger.addHandler(handler)
    try:
        with client() as c:
            assert c.get("/work", headers={**ONE, "X-Request-ID": "req-app-1"}).status_code == 200
        app_logger.warning("outside")
    finally:
        app_logger.removeHandler(handler)
    assert [json.loads(line) for line in lines] == [
        {"message": "handled", "request_id": "req-app-1", "workspace_id": "ws_1", "code": None},
        {"message": "outside", "request_id": None, "workspace_id": None, "code": None},
    ]


def test_the_context_is_given_back_when_the_request_ends() -> None:
    """An app called in the caller's own task (httpx's ASGITransport, a mounted errorkit app inside
    another) leaves the log context as it found it: the caller's records keep the caller's request."""
    from errorkit._observe.log_context import CURRENT_SCOPE, log_extra

    seen: list[object] = []

    async def inner(request: Request) -> Response:
        seen.append(log_extra()["request_id"])
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", inner)])
    ErrorKit().install(app)

    def scope(request_id: bytes) -> dict[str, object]:
        return {
            "type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
            "headers": [(b"x-request-id", request_id)], "client": ("127.0.0.1", 1), "server": ("t", 80),
            "scheme": "http", "http_version": "1.1", "asgi": {"version": "3.0"}, "app": app,
        }  # fmt: skip

    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def caller() -> tuple[object, object]:
        CURRENT_SCOPE.set({"state": {"request_id": "req-outer-1"}})
        await app(scope(b"req-inner-1"), receive, send)
        after = log_extra()["request_id"]
        CURRENT_SCOPE.set(None)
        await app(scope(b"req-inner-2"), receive, send)
        return after, log_extra()["request_id"]

    assert asyncio.run(caller()) == ("req-outer-1", None)
    assert seen == ["req-inner-1", "req-inner-2"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200]
