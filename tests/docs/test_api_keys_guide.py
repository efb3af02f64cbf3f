"""guides/api-keys.md: its snippets run (FastAPI and Starlette, in memory and on a real Redis under
uvicorn, keys issued and revoked with the real `errorkit keys` command), and every output block
on the page is what the code answers.
"""

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    KeyCache,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
    catalogs,
    issue_api_key,
    register_api_key,
    revoke_api_key,
)
from tests.docs.support import (
    DOCS_SRC,
    assert_lines,
    assert_response,
    commands,
    fences,
    load,
    on_server,
    page,
    parse_response,
    register,
    run,
    shell,
)
from tests.support.servers import free_port, redis_server, uvicorn

PAGE = "guides/api-keys.md"


# -- the page's first example, in memory --------------------------------------------------------


@pytest.fixture
def in_memory(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[TestClient, str]]:
    monkeypatch.setenv("REDIS_URL", "memory://")
    app = load("api_keys/app.py")["app"]
    with TestClient(app) as client:
        printed = capsys.readouterr().out
        yield client, printed


def test_in_memory_the_app_issues_and_prints_a_key(in_memory: tuple[TestClient, str]) -> None:
    client, printed = in_memory
    assert_lines(fences(PAGE, "text")[0], printed.splitlines())
    token = printed.split(": ", 1)[1].strip()
    assert re.fullmatch(r"ek_[0-9a-f]{16}\.[\w-]{43}", token)

    me = client.get("/me", headers={"X-API-Key": token})
    assert me.json() == {"key_id": token.split(".")[0], "workspace_id": "ws_1", "scopes": ["campaigns:write"]}
    created = client.post("/workspaces/ws_1/campaigns", headers={"Authorization": f"Bearer {token}"})
    assert (created.status_code, created.json()) == (201, {"workspace_id": "ws_1", "created_by": token.split(".")[0]})


def test_public_paths_are_the_health_check_and_fastapis_docs(in_memory: tuple[TestClient, str]) -> None:
    client, _ = in_memory
    for path in ["/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/me").status_code == 401


def test_keys_are_checked_on_every_request_in_memory_and_a_cache_ttl_delays_a_revocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    snippet = load("api_keys/key_cache.py")
    assert snippet["auth"].cache == KeyCache(ttl=5.0, track=False)

    for auth, after_revoke in [(APIKeyAuth(MemoryBackend()), 401), (snippet["auth"], 200)]:

        async def whoami(request: Request) -> JSONResponse:
            return JSONResponse({"key": request.user.key_id})

        app = Starlette(routes=[Route("/whoami", whoami)])
        ErrorKit().install(app, auth=auth)
        with TestClient(app) as client:
            keys = auth.keys
            token = client.portal.call(lambda keys=keys: issue_api_key(keys, workspace_id="ws_1"))
            assert client.get("/whoami", headers={"X-API-Key": token}).status_code == 200
            client.portal.call(revoke_api_key, keys, token.split(".")[0])
            assert client.get("/whoami", headers={"X-API-Key": token}).status_code == after_revoke


def test_issuing_in_code(capsys: pytest.CaptureFixture[str]) -> None:
    load("api_keys/issue_in_code.py")
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"issued ek_[0-9a-f]{16}", lines[0])
    assert lines[1:] == ["revoked: True", "keys disabled: 1"]


def test_the_starlette_snippet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    snippet = load("api_keys/starlette_app.py")
    store = snippet["store"]
    writer, reader = "ek_writer.secret-of-writer", "ek_reader.secret-of-reader"
    with TestClient(snippet["app"]) as client:
        register(client, store, writer, workspace_id="ws_1", scopes={"campaigns:write"})
        register(client, store, reader, workspace_id="ws_1", scopes={"campaigns:read"})
        created = client.post("/workspaces/ws_1/campaigns", headers={"X-API-Key": writer})
        other = client.post("/workspaces/ws_2/campaigns", headers={"X-API-Key": writer})
        unpermitted = client.post("/workspaces/ws_1/campaigns", headers={"X-API-Key": reader})
        listed = client.get("/workspaces/ws_1/campaigns", headers={"X-API-Key": reader})
        refused = client.get("/workspaces/ws_1/campaigns", headers={"X-API-Key": writer})
        health = client.get("/health")
    assert (created.status_code, created.json()) == (201, {"workspace_id": "ws_1", "created_by": "ek_writer"})
    assert (other.status_code, other.json()["error"]["code"]) == (403, "workspace_forbidden")
    assert unpermitted.status_code == 403
    assert unpermitted.json()["error"]["details"] == {
        "required_permission": "campaigns:write",
        "key_scope": "WORKSPACE",
    }
    assert (listed.status_code, listed.json()) == (200, {"campaigns": [], "scopes": ["campaigns:read"]})
    assert refused.status_code == 403
    assert refused.json()["error"] == {"code": "forbidden", "message": "Forbidden", "request_id": ANY_ID}
    assert health.status_code == 404  # public (no 401), and the app has no /health route


class AnyId(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.fullmatch(r"[0-9a-f]{32}", other) is not None

    __hash__ = str.__hash__


ANY_ID = AnyId()


@pytest.mark.parametrize(
    ("catalog", "code"),
    [
        (catalogs.GENERIC, "unauthorized"),
        (catalogs.ENVELOPE_API, "authentication_required"),
        (catalogs.DETAIL_API, "invalid_api_key"),
    ],
)
def test_a_missing_key_by_catalog(catalog: Any, code: str) -> None:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/x", ok)])
    ErrorKit(catalog=catalog, format="envelope").install(app, auth=APIKeyAuth(MemoryBackend()))
    with TestClient(app) as client:
        answer = client.get("/x")
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, code)
    assert answer.headers["www-authenticate"] == 'Bearer realm="api"'


def test_what_a_key_may_carry() -> None:
    import asyncio
    from datetime import UTC, datetime

    store = MemoryBackend()

    def refused(kind: type[Exception], message: str, **fields: Any) -> None:
        with pytest.raises(kind) as raised:
            asyncio.run(issue_api_key(store, **fields))
        assert str(raised.value) == message

    refused(ValueError, "the workspace id contains a space", workspace_id="ws 1")
    refused(
        ValueError,
        "the scope contains a character that is not printable (a control character)",
        workspace_id="w",
        scopes={"a\nb"},
    )
    refused(ValueError, "the workspace id is 129 characters long, more than 128", workspace_id="w" * 129)
    refused(
        ValueError, "a key carries at most 100 scopes, not 101", workspace_id="w", scopes={f"s{i}" for i in range(101)}
    )
    refused(TypeError, "scopes are a set of permissions, not one string", workspace_id="w", scopes="campaigns:write")
    past = datetime(2020, 1, 1, tzinfo=UTC)
    refused(
        ValueError,
        "the expiry 2020-01-01T00:00:00+00:00 has passed: a new key must expire in the future",
        workspace_id="w",
        expires_at=past,
    )
    assert asyncio.run(issue_api_key(store, workspace_id="w", plan="Growth Plus"))  # spaces inside a plan
    record = asyncio.run(register_api_key(store, "ek_old.secret-of-old", workspace_id="w", expires_at=past))
    assert record.expires_at == past.timestamp()


def test_a_revocation_is_final() -> None:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    store = MemoryBackend()
    app = Starlette(routes=[Route("/x", ok)])
    ErrorKit().install(app, auth=APIKeyAuth(store))
    token = "ek_final.secret-of-final"
    with TestClient(app) as client:
        register(client, store, token, workspace_id="ws_1")
        client.portal.call(lambda: revoke_api_key(store, "ek_final"))
        register(client, store, token, workspace_id="ws_1")
        answer = client.get("/x", headers={"X-API-Key": token, "Authorization": "Bearer nothing.at-all-here"})
    assert (answer.status_code, answer.json()["code"]) == (401, "invalid_api_key")


# -- on Redis, under uvicorn, keys from the command line ----------------------------------------


def test_on_redis_with_the_command_line() -> None:
    keys, requests, revoke = (
        commands("api_keys/keys.sh"),
        commands("api_keys/requests.sh"),
        commands("api_keys/revoke.sh"),
    )
    assert keys[0] == "export REDIS_URL=redis://127.0.0.1:6379/0"
    texts, https = fences(PAGE, "text"), fences(PAGE, "http")
    assert len(texts) == 4 and len(https) == 6

    with redis_server() as redis:
        env = {"REDIS_URL": redis.url}
        session = [line.replace("redis://127.0.0.1:6379/0", redis.url) for line in keys]
        issued = shell(session, env, show=["TOKEN", "READER"])
        assert [r.status for r in issued] == [0, 0, 0, 0, 0, 0]
        token, reader = issued[4].out, issued[5].out
        said = issued[1].err.replace(redis.url, "redis://127.0.0.1:6379/0")  # (what `issue` says, on standard error)
        assert_lines(texts[1], said.splitlines())  # the first key on a new Redis marks it
        assert_lines(texts[1].split("\n", 1)[1], issued[2].err.splitlines())
        assert_lines(texts[2], issued[3].out.splitlines(), any_order=True)
        assert issued[3].out.count(token.split(".")[0]) == 1 and issued[3].out.count(reader.split(".")[0]) == 1

        app_dir = str(DOCS_SRC / "api_keys")
        with uvicorn("app:app", workers=2, env=env, options=["--app-dir", app_dir]) as server:
            sent = shell(on_server(requests, server.url), {**env, "TOKEN": token})
            for ran in sent:
                assert ran.status == 0
                assert_response(https[0], ran.out)
                assert json.loads(parse_response(ran.out).body)["created_by"] == token.split(".")[0]

            url = f"{server.url}/workspaces/ws_1/campaigns"
            with httpx.Client() as client:
                assert_response(https[1], client.post(url))
                wrong = client.post(f"{server.url}/workspaces/ws_2/campaigns", headers={"X-API-Key": token})
                assert_response(https[3], wrong)
                assert_response(https[4], client.post(url, headers={"X-API-Key": reader}))
                for _ in range(10):  # (both workers know the key: it is served from their memory)
                    assert client.get(f"{server.url}/me", headers={"X-API-Key": token}).status_code == 200

                said = []
                ran = run(revoke[0], {**env, "TOKEN": token})
                said.append(ran.err.strip())
                for _ in range(10):  # every worker, at once
                    assert_response(https[2], client.post(url, headers={"X-API-Key": token}))

                ran = run(revoke[1], env)
                said.append(ran.err.strip())
                for _ in range(10):
                    disabled = client.get(f"{server.url}/me", headers={"X-API-Key": reader})
                    assert disabled.json()["error"]["code"] == "workspace_disabled"
                assert_response(https[5], client.post(url, headers={"X-API-Key": reader}))
                assert client.post(url, headers={"X-API-Key": token}).json()["error"]["code"] == "invalid_api_key"

                ran = run(revoke[2], env)
                said.append(ran.err.strip())
                for _ in range(10):
                    assert client.get(f"{server.url}/me", headers={"X-API-Key": reader}).status_code == 200
                    assert client.get(f"{server.url}/me", headers={"X-API-Key": token}).status_code == 401
        assert_lines(texts[3], said)
        assert said[0] == f"revoked {token.split('.')[0]}"

        missing = run("errorkit keys revoke ek_nothing", env)
        assert (missing.status, missing.err) == (1, "errorkit keys: no key 'ek_nothing'\n")
        away = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
        unreachable = run(f"errorkit keys list --workspace ws_1 --redis-url {away}", {})
        assert unreachable.status == 3 and "hunter2" not in unreachable.err and "Traceback" not in unreachable.err
        bad = run("errorkit keys issue --workspace 'ws 1'", env)
        assert (bad.status, bad.out, bad.err) == (2, "", "errorkit keys: the workspace id contains a space\n")


def test_the_page_names_every_snippet() -> None:
    text = page(PAGE)
    for name in [
        "app.py",
        "starlette_app.py",
        "keys.sh",
        "requests.sh",
        "revoke.sh",
        "issue_in_code.py",
        "key_cache.py",
    ]:
        assert f'--8<-- "api_keys/{name}"' in text
    assert sorted(p.name for p in (DOCS_SRC / "api_keys").iterdir() if p.is_file()) == sorted(
        ["app.py", "starlette_app.py", "keys.sh", "requests.sh", "revoke.sh", "issue_in_code.py", "key_cache.py"]
    )


def test_x_api_key_wins_and_the_refusals_details(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    monkeypatch.setenv("REDIS_URL", "memory://")
    snippet = load("api_keys/starlette_app.py")
    store, app = snippet["store"], snippet["app"]
    project_key, old_key = "ek_project.secret-of-project", "ek_old.secret-of-old-key"
    with TestClient(app) as client:
        register(client, store, project_key, workspace_id="ws_1", project_id="p_1", scopes={"campaigns:write"})
        expired_at = datetime(2020, 1, 1, tzinfo=UTC)
        register(client, store, old_key, workspace_id="ws_1", expires_at=expired_at)
        both = client.post(
            "/workspaces/ws_1/campaigns",
            headers={"X-API-Key": project_key, "Authorization": "Bearer ek_no.such-key-at-all"},
        )
        expired = client.post("/workspaces/ws_1/campaigns", headers={"Authorization": f"Bearer {old_key}"})
    assert (both.status_code, both.json()["created_by"]) == (201, "ek_project")
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "expired_api_key")
    assert expired.json()["error"]["details"] == {"expired_at": "2020-01-01T00:00:00Z"}
    assert expired.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"'

    async def report(request: Request) -> JSONResponse:
        return JSONResponse({})

    auth = APIKeyAuth(store)
    projects = Starlette(routes=[Route("/projects/{project_id}/report", auth.requires()(report))])
    ErrorKit(format="envelope").install(projects, auth=auth)
    with TestClient(projects) as client:
        own = client.get("/projects/p_1/report", headers={"X-API-Key": project_key})
        other = client.get("/projects/p_2/report", headers={"X-API-Key": project_key})
    assert own.status_code == 200
    assert (other.status_code, other.json()["error"]["code"]) == (403, "wrong_project")
    assert other.json()["error"]["details"] == {"key_project_id": "p_1", "resource_project_id": "p_2"}


def test_an_unreadable_record_is_a_401_and_one_warning_per_process(
    redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged record: 401 invalid_api_key on every request, the warning once while the record stays cached."""
    store = RedisBackend(redis.url)
    app = Starlette(routes=[Route("/me", lambda request: JSONResponse({}))])
    ErrorKit(format="envelope").install(app, auth=APIKeyAuth(store))
    token = "ek_damaged.secret-of-the-damaged-key"
    with caplog.at_level(logging.WARNING, logger="errorkit.auth"), TestClient(app) as client:
        register(client, store, token, workspace_id="ws_1")
        client.portal.call(store.redis.execute, "HSET", "errorkit:apikey:{ek_damaged}", "expires_at", "soon")
        answers = [client.get("/me", headers={"X-API-Key": token}) for _ in range(3)]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(401, "invalid_api_key")] * 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "errorkit.auth"]
    assert warnings == [
        "API key ek_damaged has a stored record errorkit cannot read (expires_at is not a number): "
        "it is refused as invalid_api_key until the key is registered again"
    ]


def test_websockets_bypass_every_stage() -> None:
    """What "Not covered: WebSockets" says: a WebSocket route of an app with auth= and a limiter takes no key."""

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    store = MemoryBackend()
    app = Starlette(routes=[Route("/me", lambda request: JSONResponse({})), WebSocketRoute("/ws", echo)])
    ErrorKit().install(app, auth=APIKeyAuth(store), rate_limit=RateLimiter(store, limits="1/minute"))
    with TestClient(app) as client:
        assert client.get("/me").status_code == 401
        for _ in range(3):  # no key, and past the limit
            with client.websocket_connect("/ws") as socket:
                socket.send_text("hello")
                assert socket.receive_text() == "hello"
