"""guides/api-keys.md: its snippets run (FastAPI and Starlette, in memory and on a real Redis under
uvicorn, keys issued and revoked with the real `errorkit keys` command), and every output block
on the page is what the code answers.

The helpers at the top (`fences`, `check_http`, `check_lines`, `shell`) are shared by the other
guides' tests of this set.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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
    catalogs,
    issue_api_key,
    register_api_key,
    revoke_api_key,
)
from tests.docs.support import DOCS_SRC, commands, load, page
from tests.support.servers import free_port, redis_server, uvicorn

PAGE = "guides/api-keys.md"
VENV_BIN = str(Path(sys.executable).parent)

# -- shared helpers ----------------------------------------------------------------------------

FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```\s*$", re.S | re.M)
#: Headers the server adds on its own (uvicorn's date and server) or that only measure the body.
NOT_SHOWN = {"date", "server", "content-length"}


def fences(name: str, lang: str) -> list[str]:
    """The bodies of a page's fenced blocks of `lang`, in order."""
    return [m["body"] for m in FENCE.finditer(page(name)) if m["lang"] == lang]


def matches(pattern: str, text: str) -> bool:
    """`text` is `pattern`, where each "…" of the pattern stands for any text (ids, times)."""
    return re.fullmatch(".*?".join(re.escape(part) for part in pattern.split("…")), text, re.S) is not None


def same_json(shown: Any, real: Any, where: str = "body") -> None:
    """The JSON a page shows is the real JSON, "…" in a string standing for any text."""
    if isinstance(shown, str) and "…" in shown:
        assert isinstance(real, str) and matches(shown, real), f"{where}: {real!r} is not {shown!r}"
    elif isinstance(shown, dict):
        assert isinstance(real, dict) and list(shown) == list(real), f"{where}: {real!r} is not {shown!r}"
        for key in shown:
            same_json(shown[key], real[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(shown) == len(real), f"{where}: {real!r} is not {shown!r}"
        for i, (a, b) in enumerate(zip(shown, real, strict=True)):
            same_json(a, b, f"{where}[{i}]")
    else:
        assert shown == real and type(shown) is type(real), f"{where}: {real!r} is not {shown!r}"


@dataclass
class Answer:
    """An HTTP response as a page shows it: status line, headers, body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: str

    @classmethod
    def of(cls, response: httpx.Response) -> "Answer":
        return cls(response.status_code, response.reason_phrase, dict(response.headers), response.text)

    @classmethod
    def parse(cls, raw: str) -> "Answer":
        """`curl -i`'s output (or a page's block): `HTTP/1.1 200 OK`, headers, a blank line, the body."""
        head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
        status_line, *lines = head.splitlines()
        _, status, reason = status_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return cls(int(status), reason, headers, body)


def check_http(block: str, real: Answer) -> None:
    """A page's ```http block is `real`: the same status and reason, the same headers (all but
    date, server and content-length, which the page leaves out), the same JSON (or text) body."""
    shown = Answer.parse(block)
    assert (real.status, real.reason) == (shown.status, shown.reason)
    assert set(shown.headers) == set(real.headers) - NOT_SHOWN, (shown.headers, real.headers)
    for name, value in shown.headers.items():
        assert matches(value, real.headers[name]), (name, value, real.headers[name])
    if shown.body.lstrip().startswith(("{", "[")):
        same_json(json.loads(shown.body), json.loads(real.body))
    else:  # a body in plain text, as it is
        assert matches(shown.body.rstrip("\n"), real.body), (shown.body, real.body)


def check_lines(block: str, real: Sequence[str], *, any_order: bool = False) -> None:
    """A page's ```text block is these lines ("…" standing for any text); `any_order`: in any order."""
    shown = block.rstrip("\n").split("\n")
    assert len(shown) == len(real), (shown, real)
    if not any_order:
        for pattern, line in zip(shown, real, strict=True):
            assert matches(pattern, line), (pattern, line)
        return
    left = list(real)
    for pattern in shown:
        found = [line for line in left if matches(pattern, line)]
        assert found, (pattern, left)
        left.remove(found[0])


@dataclass
class Ran:
    out: str
    err: str
    status: int


def shell(
    lines: Sequence[str], env: Mapping[str, str], *, show: Sequence[str] = (), cwd: str | None = None
) -> list[Ran]:
    """Run `lines` in one bash session (so `TOKEN=$(...)` carries over), in `cwd`, with the venv's
    `errorkit` and `python` first on PATH; each line's output and status, then one `Ran` per
    `show` variable's value."""
    marker = "@@errorkit-docs@@"
    script = []
    for line in [*lines, *(f'printf %s "${name}"' for name in show)]:
        script += [line, f'echo "{marker}$?" ; echo "{marker}" >&2']
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PATH": VENV_BIN + os.pathsep + os.environ["PATH"]},
        timeout=60,
        check=True,
        cwd=cwd,
    )
    outs = done.stdout.split(marker)  # [out 0, "status 0\nout 1", ..., "status n\n"]
    errs = done.stderr.split(f"{marker}\n")
    ran = []
    for i in range(len(script) // 2):
        out = outs[i] if i == 0 else outs[i].split("\n", 1)[1]
        ran.append(Ran(out, errs[i], int(outs[i + 1].split("\n", 1)[0])))
    return ran


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
    check_lines(fences(PAGE, "text")[0], printed.splitlines())
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
    backend = snippet["backend"]
    writer, reader = "ek_writer.secret-of-writer", "ek_reader.secret-of-reader"
    with TestClient(snippet["app"]) as client:
        client.portal.call(lambda: register_api_key(backend, writer, workspace_id="ws_1", scopes={"campaigns:write"}))
        client.portal.call(lambda: register_api_key(backend, reader, workspace_id="ws_1", scopes={"campaigns:read"}))
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

    backend = MemoryBackend()
    app = Starlette(routes=[Route("/x", ok)])
    ErrorKit().install(app, auth=APIKeyAuth(backend))
    token = "ek_final.secret-of-final"
    with TestClient(app) as client:
        client.portal.call(lambda: register_api_key(backend, token, workspace_id="ws_1"))
        client.portal.call(lambda: revoke_api_key(backend, "ek_final"))
        client.portal.call(lambda: register_api_key(backend, token, workspace_id="ws_1"))
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
        check_lines(texts[1], said.splitlines())  # the first key on a new Redis marks it
        check_lines(texts[1].split("\n", 1)[1], issued[2].err.splitlines())
        check_lines(texts[2], issued[3].out.splitlines(), any_order=True)
        assert issued[3].out.count(token.split(".")[0]) == 1 and issued[3].out.count(reader.split(".")[0]) == 1

        app_dir = str(DOCS_SRC / "api_keys")
        with uvicorn("app:app", workers=2, env=env, options=["--app-dir", app_dir]) as server:
            host = server.url.removeprefix("http://")
            sent = shell([line.replace("localhost:8000", host) for line in requests], {**env, "TOKEN": token})
            for ran in sent:
                assert ran.status == 0
                answer = Answer.parse(ran.out)
                check_http(https[0], answer)
                assert json.loads(answer.body)["created_by"] == token.split(".")[0]

            url = f"{server.url}/workspaces/ws_1/campaigns"
            with httpx.Client() as client:
                check_http(https[1], Answer.of(client.post(url)))
                wrong = client.post(f"{server.url}/workspaces/ws_2/campaigns", headers={"X-API-Key": token})
                check_http(https[3], Answer.of(wrong))
                check_http(https[4], Answer.of(client.post(url, headers={"X-API-Key": reader})))
                for _ in range(10):  # (both workers know the key: it is served from their memory)
                    assert client.get(f"{server.url}/me", headers={"X-API-Key": token}).status_code == 200

                said = []
                ran = shell(revoke[:1], {**env, "TOKEN": token})[0]
                said.append(ran.err.strip())
                for _ in range(10):  # every worker, at once
                    check_http(https[2], Answer.of(client.post(url, headers={"X-API-Key": token})))

                ran = shell(revoke[1:2], env)[0]
                said.append(ran.err.strip())
                for _ in range(10):
                    disabled = client.get(f"{server.url}/me", headers={"X-API-Key": reader})
                    assert disabled.json()["error"]["code"] == "workspace_disabled"
                check_http(https[5], Answer.of(client.post(url, headers={"X-API-Key": reader})))
                assert client.post(url, headers={"X-API-Key": token}).json()["error"]["code"] == "invalid_api_key"

                ran = shell(revoke[2:3], env)[0]
                said.append(ran.err.strip())
                for _ in range(10):
                    assert client.get(f"{server.url}/me", headers={"X-API-Key": reader}).status_code == 200
                    assert client.get(f"{server.url}/me", headers={"X-API-Key": token}).status_code == 401
        check_lines(texts[3], said)
        assert said[0] == f"revoked {token.split('.')[0]}"

        missing = shell(["errorkit keys revoke ek_nothing"], env)[0]
        assert (missing.status, missing.err) == (1, "errorkit keys: no key 'ek_nothing'\n")
        away = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
        unreachable = shell([f"errorkit keys list --workspace ws_1 --redis-url {away}"], {})[0]
        assert unreachable.status == 3 and "hunter2" not in unreachable.err and "Traceback" not in unreachable.err
        bad = shell(["errorkit keys issue --workspace 'ws 1'"], env)[0]
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
    backend, app = snippet["backend"], snippet["app"]
    project_key, old_key = "ek_project.secret-of-project", "ek_old.secret-of-old-key"
    with TestClient(app) as client:
        client.portal.call(
            lambda: register_api_key(
                backend, project_key, workspace_id="ws_1", project_id="p_1", scopes={"campaigns:write"}
            )
        )
        expired_at = datetime(2020, 1, 1, tzinfo=UTC)
        client.portal.call(lambda: register_api_key(backend, old_key, workspace_id="ws_1", expires_at=expired_at))
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

    auth = APIKeyAuth(backend)
    projects = Starlette(routes=[Route("/projects/{project_id}/report", auth.requires()(report))])
    ErrorKit(format="envelope").install(projects, auth=auth)
    with TestClient(projects) as client:
        own = client.get("/projects/p_1/report", headers={"X-API-Key": project_key})
        other = client.get("/projects/p_2/report", headers={"X-API-Key": project_key})
    assert own.status_code == 200
    assert (other.status_code, other.json()["error"]["code"]) == (403, "wrong_project")
    assert other.json()["error"]["details"] == {"key_project_id": "p_1", "resource_project_id": "p_2"}
