"""guides/own-authentication.md: the JWT example with real tokens (PyJWT, HS256), on a real Redis
under uvicorn with the page's commands, and its FastAPI form in process; every output block on
the page is what the code answers."""

import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from errorkit import ErrorKit, MemoryBackend, RateLimiter
from tests.docs.support import DOCS_SRC, commands, load
from tests.docs.test_api_keys_guide import Answer, check_http, check_lines, fences, shell
from tests.support.servers import redis_server, uvicorn

PAGE = "guides/own-authentication.md"
FOLDER = DOCS_SRC / "own_authentication"


@pytest.fixture
def snippets(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, dict[str, Any]]]:
    """The page's three Python files, loaded as a reader who saved them side by side would run them."""
    monkeypatch.setenv("REDIS_URL", "memory://")
    monkeypatch.syspath_prepend(str(FOLDER))  # (mint.py and fastapi_app.py import jwt_app)
    try:
        yield {
            "jwt_app": load("own_authentication/jwt_app.py"),
            "mint": load("own_authentication/mint.py"),
            "fastapi_app": load("own_authentication/fastapi_app.py"),
        }
    finally:
        sys.modules.pop("jwt_app", None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_example_on_redis_under_uvicorn() -> None:
    lines = commands("own_authentication/try.sh")
    assert lines[0] == "export REDIS_URL=redis://127.0.0.1:6379/0"
    https = fences(PAGE, "http")
    assert len(https) == 6

    with redis_server() as redis:
        env = {"REDIS_URL": redis.url}
        setup = [line.replace("redis://127.0.0.1:6379/0", redis.url) for line in lines[:2]]
        initialized = shell(setup, env)
        assert initialized[1].status == 0 and initialized[1].out.startswith(f"initialized {redis.url}")

        with uvicorn("jwt_app:app", env=env, options=["--app-dir", str(FOLDER)]) as server:
            host = server.url.removeprefix("http://")
            tried = shell([line.replace("localhost:8000", host) for line in lines[2:]], env, cwd=str(FOLDER))
            assert [r.status for r in tried] == [0, 0, 0]
            check_http(https[0], Answer.parse(tried[1].out))
            check_http(https[1], Answer.parse(tried[2].out))

            minted = shell(
                ["python mint.py alice --tenant acme --plan Free --scope widgets:write"], env, cwd=str(FOLDER)
            )
            alice = bearer(minted[0].out.strip())
            with httpx.Client(base_url=server.url) as client:
                again = client.post("/widgets", headers={**alice, "Idempotency-Key": "w-1"})
                assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
                created = [client.post("/widgets", headers={**alice, "Idempotency-Key": f"w-{i}"}) for i in (2, 3, 4)]
                assert [r.status_code for r in created] == [201, 201, 402]  # Free: three widgets per tenant
                assert created[2].json()["error"]["details"] == {"usage": 3, "limit": 3}


def test_what_errorkit_reads_and_the_refusals(snippets: dict[str, dict[str, Any]]) -> None:
    mint = snippets["mint"]["mint"]
    https = fences(PAGE, "http")
    with TestClient(snippets["jwt_app"]["app"]) as client:
        solo = client.get("/whoami", headers=bearer(mint("bob")))
        check_http(https[2], Answer.of(solo))
        assert client.get("/whoami").json() == {"user": None}  # no token: anonymous

        expired = client.post("/widgets", headers=bearer(mint("alice", "acme", expires_in=-10)))
        check_http(https[3], Answer.of(expired))
        tampered = client.get("/whoami", headers=bearer(mint("alice") + "x"))
        assert (tampered.status_code, tampered.json()) == (
            401,
            {"error": "invalid_token", "reason": "Signature verification failed"},
        )

        # without the permission: 403, and the quota unit it held is given back
        reader = client.post("/widgets", headers=bearer(mint("carol", "globex", plan="Free", scope="widgets:read")))
        check_http(https[4], Answer.of(reader))
        writer = bearer(mint("dave", "globex", plan="Free", scope="widgets:write"))
        assert [client.post("/widgets", headers=writer).status_code for _ in range(4)] == [201, 201, 201, 402]
        # at the quota's limit, the 402 comes first, permission or not
        late = client.post("/widgets", headers=bearer(mint("erin", "globex", plan="Free")))
        assert (late.status_code, late.json()["error"]["code"]) == (402, "quota_exceeded")


def test_each_user_its_own_limit_and_idempotency_keys(snippets: dict[str, dict[str, Any]]) -> None:
    mint = snippets["mint"]["mint"]
    with TestClient(snippets["jwt_app"]["app"]) as client:
        alice, bob = (
            bearer(mint("alice", "acme", "Pro", "widgets:write")),
            bearer(mint("bob", "acme", "Pro", "widgets:write")),
        )
        remaining = [client.get("/whoami", headers=alice).headers["x-ratelimit-remaining"] for _ in range(3)]
        assert remaining == ["99", "98", "97"]
        assert client.get("/whoami", headers=bob).headers["x-ratelimit-remaining"] == "99"
        first = client.post("/widgets", headers={**alice, "Idempotency-Key": "k"})
        other = client.post("/widgets", headers={**bob, "Idempotency-Key": "k"})
        replay = client.post("/widgets", headers={**alice, "Idempotency-Key": "k"})
    assert (first.json(), other.json()) == ({"created_by": "alice"}, {"created_by": "bob"})
    assert "idempotent-replayed" not in other.headers and replay.headers["idempotent-replayed"] == "true"


def test_a_user_without_an_id_is_a_type_error(caplog: pytest.LogCaptureFixture) -> None:
    class Account:
        is_authenticated = True
        tenant_id = "acme"

    def with_user(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            scope["user"] = Account()
            await app(scope, receive, send)

        return middleware

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/x", ok)])
    app.add_middleware(with_user)
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend()))
    with caplog.at_level(logging.ERROR, logger="errorkit"), TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/x")
    assert (answer.status_code, answer.json()["code"]) == (500, "internal_error")
    (crash,) = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], TypeError)]
    check_lines(fences(PAGE, "text")[0], [str(crash.exc_info[1])])  # type: ignore[index]


def test_the_fastapi_form(snippets: dict[str, dict[str, Any]]) -> None:
    mint = snippets["mint"]["mint"]
    with TestClient(snippets["fastapi_app"]["app"]) as client:
        check_http(fences(PAGE, "http")[5], Answer.of(client.get("/me")))
        me = client.get("/me", headers=bearer(mint("alice", "acme")))
        assert me.json() == {"user": "alice", "tenant": "acme"}
        writer = bearer(mint("alice", "acme", "Free", "widgets:write"))
        created = [client.post("/widgets", headers=writer) for _ in range(4)]
        assert [r.status_code for r in created] == [201, 201, 201, 402]
        assert created[0].json() == {"created_by": "alice"}
        unpermitted = client.post("/widgets", headers=bearer(mint("bob", "initech", "Free")))
        assert (unpermitted.status_code, unpermitted.json()["error"]["code"]) == (403, "forbidden")
        expired = client.get("/me", headers=bearer(mint("alice", expires_in=-1)))
        assert (expired.status_code, expired.json()["reason"]) == (401, "Signature has expired")
