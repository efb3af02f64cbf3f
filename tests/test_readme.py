"""The README's quick start runs as written."""

import re
from pathlib import Path

from starlette.testclient import TestClient

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quick_start_runs() -> None:
    code = re.search(r"## Quick start\n\n```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    r = TestClient(namespace["app"]).post("/campaigns/c_1/report", headers={"X-Request-ID": "q"})  # type: ignore[arg-type]
    assert r.status_code == 409
    assert r.json() == {
        "error": {
            "code": "synthesis_pending",
            "message": "Campaign c_1 hasn't completed synthesis yet",
            "doc_url": "https://docs.example.com/errors/synthesis_pending",
            "details": {"campaign_id": "c_1"},
            "request_id": "q",
        }
    }


def test_json_logging_set_up_prints_the_request_fields() -> None:
    import io
    import json
    import logging

    from starlette.applications import Starlette
    from starlette.routing import Route

    from errorkit import ErrorKit

    code = re.search(r"A JSON set-up with the standard library alone:\n\n```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # (basicConfig does nothing: pytest's handlers are on root)
    handler = namespace["handler"]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(io.StringIO())
    logger = logging.getLogger("errorkit")
    logger.addHandler(handler)
    try:

        async def boom(request: object) -> None:
            raise RuntimeError("the password is hunter2")

        app = Starlette(routes=[Route("/boom", boom)])
        ErrorKit().install(app)
        response = TestClient(app, raise_server_exceptions=False).get("/boom", headers={"X-Request-ID": "json-1"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500 and "hunter2" not in response.text
    (line,) = handler.stream.getvalue().splitlines()[:1]
    record = json.loads(line)
    assert {k: record[k] for k in ("level", "logger", "message", "request_id", "code", "workspace_id")} == {
        "level": "ERROR",
        "logger": "errorkit",
        "message": "Unhandled RuntimeError in GET /boom (request id json-1)",
        "request_id": "json-1",
        "code": "internal_error",
        "workspace_id": None,
    }
    assert record["exception"].startswith("Traceback") and record["exception"].endswith(
        "RuntimeError: the password is hunter2"
    )


def _blocks(heading: str, language: str = "python") -> list[str]:
    """The fenced blocks of `language` under a README heading, in order."""
    section = README.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```")[1::2]  # (what lies between an opening and a closing fence)
    return [block.split("\n", 1)[1] for block in blocks if block.split("\n", 1)[0] == language]


def _block(heading: str, language: str = "python") -> str:
    """The first fenced block of `language` under a README heading."""
    return _blocks(heading, language)[0]


def test_the_whole_stack_runs_as_written(tmp_path: Path) -> None:
    """The quick path, as a new user runs it: app.py, a key from the CLI, uvicorn with two workers."""
    import subprocess
    import sys

    import httpx

    from tests.support.servers import redis_server, uvicorn

    (tmp_path / "app.py").write_text(_block("## The whole stack, on Redis"))
    commands = _block("## The whole stack, on Redis", "").splitlines()
    assert (
        commands[2] == "KEY=$(errorkit keys issue --workspace ws_1 --plan free)   # a key of workspace ws_1, shown once"
    )
    assert commands[3] == "uvicorn app:app --workers 4"

    with redis_server() as redis:
        env = {"REDIS_URL": redis.url}
        issued = subprocess.run(
            [sys.executable, "-m", "errorkit", "keys", "issue", "--workspace", "ws_1", "--plan", "free"],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, **env},
            check=True,
        )
        key = issued.stdout.strip()
        with uvicorn("app:app", workers=2, env=env, options=["--app-dir", str(tmp_path)]) as server:
            answers = []
            for idempotency_key in ["w-1", "w-1", "w-2", "w-3", "w-4", "w-5"]:
                answers.append(
                    httpx.post(
                        f"{server.url}/widgets",
                        headers={"X-API-Key": key, "Idempotency-Key": idempotency_key},
                        json={"name": idempotency_key},
                    )
                )

    assert [a.status_code for a in answers] == [201, 201, 201, 201, 402, 429]
    assert answers[1].headers["idempotent-replayed"] == "true" and answers[1].json() == {"name": "w-1"}
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert answers[4].json()["error"]["code"] == "quota_exceeded"
    assert answers[5].json()["error"]["code"] == "rate_limit_exceeded"  # (the generic catalog's 429)


def test_the_defaults_tables_are_the_signatures() -> None:
    """Every option of every stage is in its table, with its default exactly."""
    import inspect
    import time

    import errorkit

    tables = {
        "### `kit.install(app, ...)`": errorkit.ErrorKit.install,
        "### `APIKeyAuth(store, ...)`": errorkit.APIKeyAuth,
        "### `RateLimiter(store, ...)`": errorkit.RateLimiter,
        "### `Idempotency(store, ...)`": errorkit.Idempotency,
        "### `Quotas(store, limits=..., ...)`": errorkit.Quotas,
        "### `ConcurrencyLimit(store, ...)`": errorkit.ConcurrencyLimit,
        "### `FailurePolicy(mode, ...)` (every `on_failure=`)": errorkit.FailurePolicy,
    }
    section = README.split("\n## Defaults, stage by stage\n", 1)[1].split("\n## ", 1)[0]
    for heading, target in tables.items():
        table = section.split(f"\n{heading}\n", 1)[1].split("\n### ", 1)[0]
        rows = re.findall(r"^\| `(\w+)` \| (.+?) \| .+ \|$", table, re.M)
        written = {name: default for name, default in rows}

        parameters = list(inspect.signature(target).parameters.values())
        options = [p for p in parameters if p.kind is p.KEYWORD_ONLY or p.name == "mode"]
        assert list(written) == [p.name for p in options], heading
        for option in options:
            if option.default is inspect.Parameter.empty:
                assert written[option.name] == "(required)", (heading, option.name)
            else:
                value = eval(written[option.name].strip("`"), {**vars(errorkit), "time": time})
                assert value == option.default, (heading, option.name)


def test_the_rate_limits_snippets_run_as_written() -> None:
    """The decorator, the dependency form and the central form, on the app the README assumes."""
    from fastapi import Depends, FastAPI

    import errorkit
    from errorkit import APIKeyAuth, ErrorKit, Limit, MemoryBackend

    store = MemoryBackend()
    namespace: dict[str, object] = {
        "app": FastAPI(),
        "Depends": Depends,
        "store": store,
        "kit": ErrorKit(),
        "auth": APIKeyAuth(store),
        "Limit": Limit,
    }
    declared, central = _blocks("## Rate limits")
    exec(compile(declared, "README.md", "exec"), namespace)
    key = {"X-API-Key": "ek_readme.readme-secret-1"}
    with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
        client.portal.call(register_readme_key, store)  # type: ignore[union-attr]
        starts = [client.post("/campaigns/c_1/start", headers=key) for _ in range(6)]
        exports = [client.post("/exports", headers=key) for _ in range(3)]
    assert [r.status_code for r in starts] == [200] * 5 + [429]
    assert starts[0].headers["x-ratelimit-limit"] == "5"
    assert [r.status_code for r in exports] == [200, 200, 429]

    exec(compile(central, "README.md", "exec"), namespace)
    limiter = namespace["limiter"]
    assert isinstance(limiter, errorkit.RateLimiter)
    assert sorted(limiter.routes) == ["/internal/metrics", "POST /campaigns/{campaign_id}/start"]


async def register_readme_key(store: object) -> None:
    from errorkit import register_api_key

    await register_api_key(store, "ek_readme.readme-secret-1", workspace_id="ws_1")  # type: ignore[arg-type]


def test_the_one_piece_snippet_runs_as_written() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from errorkit import ErrorKit, Idempotency, MemoryBackend

    async def my_404(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("mine", status_code=404)

    async def my_500(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("my 500", status_code=500)

    async def create(request: Request) -> Response:
        return JSONResponse({"id": "o_1"}, status_code=201)

    namespace: dict[str, object] = {
        "routes": [Route("/orders", create, methods=["POST"])],
        "my_404": my_404,
        "my_500": my_500,
        "store": MemoryBackend(),
        "Starlette": Starlette,
        "ErrorKit": ErrorKit,
        "Idempotency": Idempotency,
    }
    exec(compile(_blocks("## One piece at a time")[0], "README.md", "exec"), namespace)
    with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
        missing = client.get("/nowhere")
        first, again = [client.post("/orders", headers={"Idempotency-Key": "o-1"}) for _ in range(2)]
    assert (missing.status_code, missing.text) == (404, "mine")
    assert (first.status_code, again.headers["idempotent-replayed"]) == (201, "true")
