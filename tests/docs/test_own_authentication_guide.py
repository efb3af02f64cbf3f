"""guides/own-authentication.md: the JWT example with real tokens (PyJWT, HS256), on a real Redis
under uvicorn with the page's commands, and its FastAPI form in process; every output block on
the page is what the code answers."""

import logging
import sys
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from errorkit import APIError, ErrorKit, Idempotency, MemoryBackend, RateLimiter, RedisBackend, per_user
from tests.docs.support import DOCS_SRC, assert_lines, assert_response, commands, fences, load, on_server, run, shell
from tests.support.servers import Redis, redis_server, uvicorn

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
            tried = shell(on_server(lines[2:], server.url), env, cwd=FOLDER)
            assert [r.status for r in tried] == [0, 0, 0]
            assert_response(https[0], tried[1].out)
            assert_response(https[1], tried[2].out)

            minted = run("python mint.py alice --tenant acme --plan Free --scope widgets:write", env, cwd=FOLDER)
            alice = bearer(minted.out.strip())
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
        assert_response(https[2], solo)
        assert client.get("/whoami").json() == {"user": None}  # no token: anonymous

        expired = client.post("/widgets", headers=bearer(mint("alice", "acme", expires_in=-10)))
        assert_response(https[3], expired)
        tampered = client.get("/whoami", headers=bearer(mint("alice") + "x"))
        assert (tampered.status_code, tampered.json()["error"]["message"]) == (401, "Signature verification failed")

        # without the permission: 403, and the quota unit it held is given back
        reader = client.post("/widgets", headers=bearer(mint("carol", "globex", plan="Free", scope="widgets:read")))
        assert_response(https[4], reader)
        writer = bearer(mint("dave", "globex", plan="Free", scope="widgets:write"))
        assert [client.post("/widgets", headers=writer).status_code for _ in range(4)] == [201, 201, 201, 402]
        # at the quota's limit, the 402 comes first, permission or not
        late = client.post("/widgets", headers=bearer(mint("erin", "globex", plan="Free")))
        assert (late.status_code, late.json()["error"]["code"]) == (402, "quota_exceeded")


def test_a_bad_token_is_the_kits_401_not_logged_not_counted(
    snippets: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    jwt_app, mint = snippets["jwt_app"], snippets["mint"]["mint"]
    with caplog.at_level(logging.DEBUG, logger="errorkit"), TestClient(jwt_app["app"]) as client:
        refused = [client.get("/whoami", headers=bearer(mint("alice") + "x")) for _ in range(3)]
        anonymous = client.get("/whoami")  # counted by client address: the refused ones were not
    assert [r.status_code for r in refused] == [401] * 3
    assert anonymous.headers["x-ratelimit-remaining"] == "99"
    assert [r for r in caplog.records if r.name.startswith("errorkit")] == []

    # with a doc URL template, the 401 has its doc_url, as every error of the kit
    app = Starlette(routes=[Route("/whoami", jwt_app["whoami"])])
    app.add_middleware(AuthenticationMiddleware, backend=jwt_app["JWTBackend"](), on_error=jwt_app["on_error"])
    ErrorKit(format="envelope", doc_url="https://docs.example.com/errors/{code}").install(app)
    with TestClient(app) as client:
        error = client.get("/whoami", headers=bearer(mint("alice", expires_in=-1))).json()["error"]
    assert error["doc_url"] == "https://docs.example.com/errors/unauthorized"

    # the middleware added after install(): answered too, then re-raised by Starlette for the server to log
    late = Starlette(routes=[Route("/whoami", jwt_app["whoami"])])
    ErrorKit(format="envelope").install(late)
    late.add_middleware(AuthenticationMiddleware, backend=jwt_app["JWTBackend"](), on_error=jwt_app["on_error"])
    with TestClient(late) as client, pytest.raises(APIError):
        client.get("/whoami", headers=bearer(mint("alice", expires_in=-1)))


def test_scope_of_per_user_moves_the_record_not_whose_it_is(
    snippets: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, redis: Redis
) -> None:
    """Keys are each user's own with the default scope too; per_user keeps the record under the user's tag."""
    jwt_app, mint = snippets["jwt_app"], snippets["mint"]["mint"]
    alice, bob = (
        bearer(mint("alice", "acme", "Pro", "widgets:write")),
        bearer(mint("bob", "acme", "Pro", "widgets:write")),
    )
    found = {}
    for scope_of in (None, per_user):
        store = RedisBackend(redis.url)
        app = Starlette(routes=[Route("/widgets", jwt_app["create_widget"], methods=["POST"])])
        app.add_middleware(AuthenticationMiddleware, backend=jwt_app["JWTBackend"](), on_error=jwt_app["on_error"])
        ErrorKit().install(
            app,
            rate_limit=RateLimiter(store, identity=per_user),
            idempotency=Idempotency(store, scope_of=scope_of),
        )
        key = {"Idempotency-Key": f"k-{scope_of is None}"}
        with TestClient(app) as client:
            client.portal.call(store.initialize)
            answers = [client.post("/widgets", headers={**who, **key}) for who in (alice, bob, alice)]
            found[scope_of] = sorted(
                k.decode() for k in client.portal.call(store.redis.execute, "KEYS", "errorkit:ik:*")
            )
            client.portal.call(store.redis.execute, "FLUSHALL")
        assert [a.json() for a in answers] == [{"created_by": "alice"}, {"created_by": "bob"}, {"created_by": "alice"}]
        assert [a.headers.get("idempotent-replayed") for a in answers] == [None, None, "true"]
    assert [k.split("}")[0] for k in found[None]] == ["errorkit:ik:{ws:acme"] * 2  # both under the workspace's tag
    assert [k.split("}")[0] for k in found[per_user]] == ["errorkit:ik:{user:acme/alice", "errorkit:ik:{user:acme/bob"]


def test_the_install_line() -> None:
    assert commands("own_authentication/install.sh") == ['pip install errorkit PyJWT "uvicorn[standard]"']
    assert version("PyJWT") and version("uvicorn")  # (what the page's snippets run with here)


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
    assert_lines(fences(PAGE, "text")[0], [str(crash.exc_info[1])])  # type: ignore[index]


def test_the_fastapi_form(snippets: dict[str, dict[str, Any]]) -> None:
    mint = snippets["mint"]["mint"]
    with TestClient(snippets["fastapi_app"]["app"]) as client:
        assert_response(fences(PAGE, "http")[5], client.get("/me"))
        me = client.get("/me", headers=bearer(mint("alice", "acme")))
        assert me.json() == {"user": "alice", "workspace": "acme"}
        writer = bearer(mint("alice", "acme", "Free", "widgets:write"))
        created = [client.post("/widgets", headers=writer) for _ in range(4)]
        assert [r.status_code for r in created] == [201, 201, 201, 402]
        assert created[0].json() == {"created_by": "alice"}
        unpermitted = client.post("/widgets", headers=bearer(mint("bob", "initech", "Free")))
        assert (unpermitted.status_code, unpermitted.json()["error"]["code"]) == (403, "forbidden")
        expired = client.get("/me", headers=bearer(mint("alice", expires_in=-1)))
        assert_response(fences(PAGE, "http")[3], expired)  # the same 401 as the Starlette app's
