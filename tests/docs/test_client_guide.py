"""guides/client.md: the client scripts of docs_src/client/ run against the shop server under uvicorn."""

import email.utils
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from errorkit import ErrorKit, catalogs
from errorkit.client import (
    MAX_RETRY_DELAY,
    UnknownError,
    error_from_response,
    error_hook,
    raise_for_error,
    should_retry,
)
from tests.docs.support import DOCS_SRC, ROOT, assert_lines, commands, fence_starting, load, run, snippet_path
from tests.support.servers import uvicorn

PAGE = "guides/client.md"
FOLDER = DOCS_SRC / "client"


def test_install_and_run_lines() -> None:
    """The page's install lines: the clients need httpx and requests, which errorkit does not depend on."""
    assert commands("client/install.sh") == [
        "pip install errorkit httpx requests",
        'pip install "errorkit[fastapi]" "uvicorn[standard]"',
    ]
    pyproject = (ROOT / "pyproject.toml").read_text()
    dependencies = pyproject.split("\ndependencies = [", 1)[1].split("]", 1)[0]
    assert "httpx" not in dependencies and "requests" not in dependencies
    assert commands("client/run.sh") == ["uvicorn shop_server:app", "python async_client.py", "python sync_client.py"]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    serve = commands("client/run.sh")[0]  # `uvicorn shop_server:app`, in the snippets' folder
    snippet_path("client/shop_server.py")
    with uvicorn(serve.split()[1], options=["--app-dir", str(FOLDER)]) as running:
        yield running.url


@pytest.fixture(scope="module")
def shop() -> dict[str, Any]:
    return load("client/shop_errors.py")


def run_script(script: str, url: str) -> str:
    """Run a client script as a reader does (`python async_client.py`), against `url`; what it printed."""
    path = snippet_path(script)
    command = f"python {path.name}"
    assert command in commands("client/run.sh")
    done = run(command, {"API_URL": url}, cwd=path.parent)
    assert done.status == 0, done.err
    return done.out


def test_async_hook(server: str) -> None:
    out = run_script("client/async_client.py", server)
    assert_lines(fence_starting(PAGE, "text", "out_of_stock"), out)
    assert "request id: " in out and len(out.split("request id: ")[1].split()[0]) == 32


def test_error_from_a_requests_response(server: str) -> None:
    out = run_script("client/sync_client.py", server)
    assert_lines(fence_starting(PAGE, "text", "payment_provider_down"), out)


def test_the_scripts_do_nothing_on_import() -> None:
    for script in ("client/async_client.py", "client/sync_client.py"):
        assert callable(load(script)["main"])


def test_sync_hook_and_what_an_error_holds(server: str, shop: dict[str, Any]) -> None:
    with httpx.Client(base_url=server, event_hooks={"response": [error_hook(shop["shop"])]}) as client:
        with pytest.raises(shop["OutOfStock"]) as caught:
            client.post("/orders", json={"sku": "mug", "quantity": 1}, headers={"X-Request-ID": "req-7"})
        error = caught.value
        assert (error.code, error.status, error.message, error.details, error.request_id) == (
            "out_of_stock",
            409,
            "Only 2 of mug left",
            {"sku": "mug", "available": 2},
            "req-7",
        )
        assert error.headers == {} and error.response_headers["x-should-retry"] == "false"
        assert error.retry_after is None and should_retry(error) is False

        with pytest.raises(shop["PaymentProviderDown"]) as down:
            client.post("/orders/o_1/pay")
        assert (down.value.retry_after, should_retry(down.value)) == (20, True)

        with pytest.raises(shop["shop"]["invalid_request_body"]) as invalid:  # a generic code of the catalog
            client.post("/orders", json={"sku": "mug"})
        assert invalid.value.details["issues"][0]["loc"] == ["body", "quantity"]

        with pytest.raises(UnknownError) as unknown:
            client.delete("/orders/o_7")
        assert type(unknown.value).__name__ == "OrderFrozen"
        assert (unknown.value.code, unknown.value.details) == ("order_frozen", {"order_id": "o_7"})
        assert should_retry(unknown.value) is False  # the server said so

        assert client.get("/openapi.json").status_code == 200  # no error: nothing raised

    success = requests.get(f"{server}/openapi.json", timeout=10)
    assert error_from_response(success, shop["shop"]) is None
    with pytest.raises(shop["shop"]["not_found"]):
        raise_for_error(requests.get(f"{server}/nowhere", timeout=10), shop["shop"])


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None, content: bytes | None = None
) -> httpx.Response:
    if content is None:
        content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, headers=headers or {}, content=content)


def test_retry_after_is_read_and_capped() -> None:
    def delay(headers: dict[str, str]) -> int | None:
        error = error_from_response(response(503, headers=headers))
        assert error is not None
        return error.retry_after

    assert MAX_RETRY_DELAY == 60
    assert delay({}) is None
    assert delay({"retry-after-ms": "1500", "retry-after": "9"}) == 2  # ms first, rounded up
    assert delay({"retry-after": "7"}) == 7
    assert delay({"retry-after": "3600"}) == 60
    in_30_s = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert delay({"retry-after": in_30_s}) in (29, 30, 31)
    assert delay({"retry-after": "Fri, 31 Dec 10000 23:59:59 GMT"}) is None
    assert delay({"retry-after": "soon"}) is None


def test_nothing_a_response_holds_makes_it_raise() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    for junk in (
        response(502, content=b"<html>Bad gateway</html>", headers={"content-type": "text/html"}),
        response(500, content=nested),
        response(500, content=b"\xff\xfe"),
        response(409, {"error": {"code": "not a name!", "message": 3}}),
        response(409, {"error": {"code": "x" * 10_000}}),
        response(400, {"detail": {"nested": True}, "code": ["list"]}),
        response(503, {"type": 1, "title": 2, "status": "x"}, headers={"content-type": "application/problem+json"}),
    ):
        error = error_from_response(junk, catalogs.ENVELOPE_API)
        assert error is not None and error.status == junk.status_code
    assert error_from_response(response(502, content=b"<html/>"), catalogs.GENERIC).code == "bad_gateway"
    assert error_from_response(response(418, content=b""), catalogs.GENERIC).code == "http_418"


def test_every_format_reads_back() -> None:
    for format in ("detail", "envelope", "problem"):
        kit = ErrorKit(format=format)
        Locked = kit.define("campaign_locked", status=409, message="Locked {campaign_id}", details={"campaign_id": str})
        app = FastAPI()
        kit.install(app)

        @app.get("/locked")
        async def locked(cls: Any = Locked) -> None:
            raise cls(campaign_id="c_1")

        @app.get("/items")
        async def items(limit: int) -> None: ...

        @app.get("/missing")
        async def missing() -> None:
            raise HTTPException(404)

        with TestClient(app) as client:
            error = error_from_response(client.get("/locked"), kit.registry)
            assert type(error) is Locked and error.message == "Locked c_1"
            assert error.details == ({} if format == "detail" else {"campaign_id": "c_1"})
            invalid = error_from_response(client.get("/items?limit=x"), kit.registry)
            expected = "invalid_request_parameters" if format == "envelope" else "validation_error"
            assert invalid.code == expected and invalid.details["issues"][0]["loc"] == ["query", "limit"]
            assert error_from_response(client.get("/missing"), kit.registry).code == "not_found"


def test_a_known_code_with_another_status_is_unknown(shop: dict[str, Any]) -> None:
    error = error_from_response(response(400, {"error": {"code": "out_of_stock", "message": "?"}}), shop["shop"])
    assert isinstance(error, UnknownError) and error.code == "out_of_stock"
    stage = error_from_response(
        response(429, {"error": {"code": "rate_limit_exceeded", "message": "slow"}}), shop["shop"]
    )
    assert not isinstance(stage, UnknownError) and stage.code == "rate_limit_exceeded"
