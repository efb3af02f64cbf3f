"""API-key authentication through real HTTP to uvicorn, for both documents, frameworks and backends."""

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import (
    APIKeyAuth,
    ErrorKit,
    KeyCache,
    MemoryBackend,
    RedisBackend,
    catalogs,
    register_api_key,
    revoke_api_key,
)
from tests.apps.auth import KEYS
from tests.support.servers import Uvicorn, free_port, redis_server, uvicorn

SECRETS = [token.split(".", 1)[1] for token in KEYS]
ADMIN, READER, PUBLIC, PROJECT = (
    "ek_admin.admin-secret-1",
    "ek_reader.reader-secret-1",
    "ek_public.public-secret-1",
    "ek_project.project-secret-1",
)
EXPIRED, REVOKED, DISABLED = (
    "ek_expired.expired-secret-1",
    "ek_revoked.revoked-secret-1",
    "ek_disabled.disabled-secret-1",
)


class Server:
    def __init__(self, uvicorn: Uvicorn, document: str) -> None:
        self.uvicorn, self.document = uvicorn, document
        self.client = httpx.Client(base_url=uvicorn.url, headers={"X-Request-ID": "auth-test"})
        self.seen: list[httpx.Response] = []

    def get(self, path: str, key: str | None = None, *, bearer: bool = False, **kw: Any) -> httpx.Response:
        return self.request("GET", path, key, bearer=bearer, **kw)

    def request(
        self, method: str, path: str, key: str | None = None, *, bearer: bool = False, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization" if bearer else "X-API-Key"] = f"Bearer {key}" if bearer else key
        response = self.client.request(method, path, headers=headers, **kw)
        self.seen.append(response)
        return response

    def expect(
        self, response: httpx.Response, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        assert response.status_code == status, response.text
        if self.document == "detail_api":
            assert response.json() == {"detail": message, "code": code, "request_id": "auth-test"}
        else:
            error: dict[str, Any] = {"code": code, "message": message, "doc_url": f"https://docs.orq.ai/errors/{code}"}
            if details:
                error["details"] = details
            error["request_id"] = "auth-test"
            assert response.json() == {"error": error}


@pytest.fixture(
    scope="module",
    params=[
        (f, d, b) for f in ("starlette", "fastapi") for d in ("detail_api", "envelope_api") for b in ("memory", "redis")
    ],
    ids=lambda p: "-".join(p),
)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    framework, document, backend = request.param
    env = {"EK_FRAMEWORK": framework, "EK_DOCUMENT": document}
    if backend == "redis":
        with (
            redis_server() as redis,
            uvicorn("tests.apps.auth:app", env={**env, "REDIS_URL": redis.url}, access_log=True) as running,
        ):
            yield Server(running, document)
    else:
        with uvicorn("tests.apps.auth:app", env={**env, "REDIS_URL": ""}, access_log=True) as running:
            yield Server(running, document)


def by_document(server: Server, detail: tuple[str, str], envelope: tuple[str, str]) -> tuple[str, str]:
    return detail if server.document == "detail_api" else envelope


def test_both_headers_authenticate(server: Server) -> None:
    expected = {
        "key_id": "ek_admin",
        "workspace_id": "ws_1",
        "project_id": None,
        "scopes": ["campaigns:read", "campaigns:write"],
        "key_scope": "WORKSPACE",
    }
    assert server.get("/whoami", ADMIN).json() == expected
    assert server.get("/whoami", ADMIN, bearer=True).json() == expected


def test_missing_key(server: Server) -> None:
    r = server.get("/whoami")
    code, message = by_document(  # the first document: invalid_api_key is "Key is missing, malformed, or revoked"
        server,
        ("invalid_api_key", "Key is missing, malformed, or revoked"),
        ("authentication_required", "The request did not include a valid authentication header."),
    )
    server.expect(r, 401, code, message)
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    # a non-Bearer Authorization header is no key either
    server.expect(server.get("/whoami", headers={"Authorization": "Basic dXNlcjpwdw=="}), 401, code, message)


@pytest.mark.parametrize(
    "key", ["ek_admin.wrong-secret-1", "ek_nobody.some-secret-1", "no-dot-at-all", "ek_admin.short", "x" * 600, REVOKED]
)
def test_invalid_keys(server: Server, key: str) -> None:
    r = server.get("/whoami", key, bearer=True)
    _, message = by_document(
        server, ("", "Key is missing, malformed, or revoked"), ("", "The provided API key is invalid.")
    )
    server.expect(r, 401, "invalid_api_key", message)
    assert r.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"'


def test_expired_key(server: Server) -> None:
    r = server.get("/whoami", EXPIRED)
    server.expect(
        r, 401, "expired_api_key", "The API key has passed its expiration date.", {"expired_at": "2020-01-01T00:00:00Z"}
    )


def test_insufficient_scope(server: Server) -> None:
    r = server.request("POST", "/workspaces/ws_1/campaigns", READER)
    _, message = by_document(
        server,
        ("", "Key is missing a required scope"),
        ("", "The API key does not have the permission required for the requested operation."),
    )
    server.expect(
        r, 403, "insufficient_scope", message, {"required_permission": "campaigns:write", "key_scope": "WORKSPACE"}
    )
    r = server.get("/workspaces/ws_1/campaigns", PUBLIC)
    server.expect(
        r, 403, "insufficient_scope", message, {"required_permission": "campaigns:read", "key_scope": "PUBLIC"}
    )
    assert server.request("POST", "/workspaces/ws_1/campaigns", ADMIN).status_code == 201


def test_workspace_in_path_must_be_the_keys(server: Server) -> None:
    r = server.get("/workspaces/ws_2/campaigns", ADMIN)
    server.expect(
        r,
        403,
        "workspace_forbidden",
        "Workspace not accessible by this API key",
        {"key_workspace_id": "ws_1", "resource_workspace_id": "ws_2"},
    )


def test_client_cannot_pick_its_workspace(server: Server) -> None:
    spoof = {"X-Workspace-ID": "ws_2", "X-Workspace": "ws_2", "X-Forwarded-User": "ek_other"}
    assert server.get("/whoami", ADMIN, headers=spoof).json()["workspace_id"] == "ws_1"
    assert server.get("/workspaces/ws_2/campaigns", ADMIN, headers=spoof).status_code == 403
    assert server.get("/workspaces/ws_1/campaigns", ADMIN, headers=spoof).json() == {
        "workspace_id": "ws_1",
        "by": "ek_admin",
    }
    # the other workspace's own key works there, and only there
    assert server.get("/workspaces/ws_2/campaigns", "ek_other.other-secret-1").status_code == 200
    assert server.get("/workspaces/ws_1/campaigns", "ek_other.other-secret-1").status_code == 403


def test_wrong_project(server: Server) -> None:
    r = server.get("/workspaces/ws_1/projects/proj_b/items", PROJECT)
    server.expect(
        r,
        403,
        "wrong_project",
        "The API key is scoped to a specific project, but the resource being accessed belongs to a different project.",
        {"key_project_id": "proj_a", "resource_project_id": "proj_b"},
    )
    assert server.get("/workspaces/ws_1/projects/proj_a/items", PROJECT).json() == {
        "project_id": "proj_a",
        "by": "ek_project",
    }
    # a workspace-wide key reaches every project
    assert server.get("/workspaces/ws_1/projects/proj_b/items", READER).status_code == 200


def test_workspace_disabled(server: Server) -> None:
    r = server.get("/whoami", DISABLED)
    server.expect(
        r,
        403,
        "workspace_disabled",
        "The workspace associated with the API key has been disabled.",
        {"reason": "billing"},
    )


def test_revocation_applies_at_once_without_cache(server: Server) -> None:
    assert server.get("/whoami", "ek_temp.temporary-secret-1").status_code == 200
    assert server.request("POST", "/_test/revoke/ek_temp", ADMIN).status_code == 200
    _, message = by_document(
        server, ("", "Key is missing, malformed, or revoked"), ("", "The provided API key is invalid.")
    )
    server.expect(server.get("/whoami", "ek_temp.temporary-secret-1"), 401, "invalid_api_key", message)


def test_public_routes_need_no_key_but_get_request_ids(server: Server) -> None:
    r = server.client.get("/health", headers={"X-Request-ID": "pub-1"})
    assert (r.status_code, r.json(), r.headers["x-request-id"]) == (200, {"ok": True, "principal": None}, "pub-1")
    assert server.client.get("/docs/page").status_code == 200
    r = server.client.get("/health/nope")  # not public: formatted 401, not a 404 that reveals routes
    assert r.status_code == 401


def test_secret_never_in_responses_or_logs(server: Server) -> None:
    for key in KEYS:  # every key, good and bad, through both headers
        server.get("/whoami", key)
        server.get("/workspaces/ws_2/campaigns", key, bearer=True)
        server.request("POST", "/workspaces/ws_1/campaigns", key)
    server.get("/whoami", "ek_admin.leaked-guess-123")
    server.get("/whoami?last=1")
    log = server.uvicorn.output(wait_for="/whoami?last=1")  # the last request's access line
    assert "rejected API key ek_nobody" in log or "rejected API key ek_admin" in log  # failures are logged...
    assert '"GET /whoami HTTP/1.1"' in log  # ...and so are requests (the access log is on)
    for secret in [*SECRETS, "leaked-guess-123"]:  # ...but never a secret
        assert secret not in log
        for response in server.seen:
            assert secret not in response.text
            assert all(secret not in value for value in response.headers.values())


def test_key_store_outage_is_503() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    auth = APIKeyAuth(RedisBackend(f"redis://127.0.0.1:{free_port()}/0"))
    app = Starlette(routes=[Route("/x", lambda r: JSONResponse({}))])
    kit.install(app, auth=auth)
    r = TestClient(app).get("/x", headers={"X-API-Key": ADMIN, "X-Request-ID": "r"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.json()["error"]["details"] == {"dependency": "redis"}
    assert r.headers["retry-after"] == "1"  # every 503 for an unreachable store says when to retry


def test_principal_cache_bounds_revocation_latency() -> None:
    kit = ErrorKit()
    backend = MemoryBackend()
    auth = APIKeyAuth(backend, cache=KeyCache(ttl=0.3))

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"key": request.user.key_id})

    app = Starlette(routes=[Route("/whoami", whoami)])
    kit.install(app, auth=auth)
    asyncio.run(register_api_key(backend, ADMIN, workspace_id="ws_1"))
    client = TestClient(app)
    assert client.get("/whoami", headers={"X-API-Key": ADMIN}).status_code == 200
    asyncio.run(revoke_api_key(backend, "ek_admin"))
    assert client.get("/whoami", headers={"X-API-Key": ADMIN}).status_code == 200  # cached
    assert (
        client.get("/whoami", headers={"X-API-Key": "ek_admin.wrong-secret"}).status_code == 401
    )  # secret still checked
    time.sleep(0.35)
    assert client.get("/whoami", headers={"X-API-Key": ADMIN}).status_code == 401


def test_tokens_are_hashed_at_rest(redis_url: str) -> None:
    async def main() -> None:
        backend = RedisBackend(redis_url, prefix="t-hash")
        await register_api_key(backend, "ek_stored.stored-secret-1", workspace_id="ws_9")
        raw = await backend.redis.execute("HGETALL", "t-hash:apikey:{ek_stored}")
        assert b"stored-secret-1" not in b"".join(raw)
        assert re.fullmatch(rb"[0-9a-f]{64}", dict(zip(raw[::2], raw[1::2], strict=True))[b"secret_hash"])
        await backend.close()

    asyncio.run(main())
