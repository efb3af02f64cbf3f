"""The Getting started page (docs/index.md), run as a reader runs it.

The page's shell snippets are run for real: `errorkit keys issue` through the virtualenv's own
`errorkit` command against a real redis-server, `app.py` served by uvicorn with two workers, and
the `curl` commands with the `curl` binary. Each ```http block on the page is compared with the
response of the command it follows: the status line, the headers it shows and the exact JSON body
("…" on the page stands for a request id or a time, which changes on every run).
"""

import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from errorkit import register_api_key
from tests.docs.support import commands, load, page, snippet_path
from tests.support.servers import free_port, redis_server, uvicorn

PAGE = page("index.md")
VENV_BIN = Path(sys.executable).parent  # the virtualenv's bin/: its errorkit, uvicorn
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.S | re.M)
PAGE_REDIS = "redis://127.0.0.1:6379/0"  # the URL the page uses; the test's redis-server has its own port


# --- reading the page ---------------------------------------------------------------------------


def output_after(include: str) -> str:
    """The ```http or ```text block that directly follows the fence including `include`."""
    fences = list(FENCE.finditer(PAGE))
    for i, fence in enumerate(fences):
        if f'--8<-- "{include}"' in fence["body"]:
            following = fences[i + 1]
            assert following["lang"] in ("http", "text"), f"no output block after {include}"
            return following["body"]
    raise AssertionError(f"the page includes no {include}")


def section(name: str) -> list[str]:
    """The commands between `# --8<-- [start:name]` and `[end:name]` of requests.sh."""
    text = snippet_path("getting_started/requests.sh").read_text()
    body = text.split(f"# --8<-- [start:{name}]\n", 1)[1].split(f"# --8<-- [end:{name}]", 1)[0]
    lines = (line.split(" #", 1)[0].strip() for line in body.replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]  # (as `commands()` reads a file)


# --- comparing an output block with a real response -----------------------------------------------


def like(shown: str, real: str) -> bool:
    """`real` is what the page shows, "…" standing for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))
    return re.fullmatch(pattern, real, re.S) is not None


def same_json(shown: Any, real: Any, where: str = "body") -> None:
    if isinstance(shown, dict):
        assert isinstance(real, dict) and list(shown) == list(real), (where, shown, real)
        for key in shown:
            same_json(shown[key], real[key], f"{where}.{key}")
    elif isinstance(shown, str) and "…" in shown:
        assert isinstance(real, str) and like(shown, real), (where, shown, real)
    else:
        assert shown == real and type(shown) is type(real), (where, shown, real)


def parse_http(text: str) -> tuple[str, list[tuple[str, str]], str]:
    """Status line, headers and body of an HTTP response as the page writes it or `curl -i` prints it."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    status, *lines = head.splitlines()
    headers = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]
    return status, headers, body


def check(block: str, response: str) -> dict[str, Any]:
    """The response matches the page's block; returns the response's JSON body."""
    shown_status, shown_headers, shown_body = parse_http(block)
    status, headers, body = parse_http(response)
    real = dict(headers)
    assert len(real) == len(headers), f"a header sent twice: {headers}"
    assert status == shown_status
    for name, value in shown_headers:
        assert name in real, f"{shown_status}: the page shows {name}, the response has none: {headers}"
        assert like(value, real[name]), (shown_status, name, value, real[name])
    data = json.loads(body)
    same_json(json.loads(shown_body), data)
    if "x-request-id" in real and isinstance(data, dict) and "error" in data:
        assert data["error"]["request_id"] == real["x-request-id"]
    return data


# --- running the page's commands ----------------------------------------------------------------


def shell(command: str, env: dict[str, str]) -> str:
    """Run one command of the page in bash, with the virtualenv's commands first on the PATH."""
    path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env={**os.environ, "PATH": path, **env}, timeout=30
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def curl(command: str, port: int, key: str = "") -> str:
    assert command.startswith("curl -i ") and "localhost:8000/" in command, command
    assert shutil.which("curl"), "curl is not installed: the page's requests are curl commands"
    return shell(command.replace("localhost:8000/", f"127.0.0.1:{port}/"), {"KEY": key})


# --- the page -------------------------------------------------------------------------------------


def test_install_lines_are_the_ones_documented() -> None:
    assert commands("getting_started/install.sh") == [
        "pip install errorkit",
        'pip install "errorkit[fastapi]" "uvicorn[standard]"',
    ]
    assert "Python 3.11 or later" in PAGE
    pyproject = (Path(__file__).parent.parent.parent / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11"' in pyproject
    for extra, package in [("fastapi", "fastapi"), ("metrics", "prometheus-client"), ("openapi", "pyyaml")]:
        assert re.search(rf'^{extra} = \["{package}>=', pyproject, re.M), extra


def test_minimal_app_answers_as_shown() -> None:
    """`uvicorn minimal:app` and the page's curl: the 409 exactly as the page shows it."""
    run, request = commands("getting_started/minimal.sh")
    assert run == "uvicorn minimal:app"
    with uvicorn("minimal:app", options=["--app-dir", str(snippet_path("getting_started/minimal.py").parent)]) as s:
        response = curl(request, s.port)
    assert check(output_after("getting_started/minimal.sh"), response)["error"]["details"] == {"campaign_id": "c_1"}


def test_minimal_app_answers_every_other_error_in_the_same_shape() -> None:
    """What the page says of the other errors: 404 not_found, 400 invalid_request_body, 500 internal_error."""
    from pydantic import BaseModel

    app = load("getting_started/minimal.py")["app"]

    class Body(BaseModel):
        name: str

    @app.post("/things")
    async def things(body: Body) -> Body:
        return body

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a crash")

    client = TestClient(app, raise_server_exceptions=False)
    answers = [client.get("/nowhere"), client.post("/things", json={}), client.get("/boom")]
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [
        (404, "not_found"),
        (400, "invalid_request_body"),
        (500, "internal_error"),
    ]


def test_the_app_refuses_as_the_page_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown key 401 invalid_api_key, expired 401 expired_api_key; the same Idempotency-Key with
    another body 422 idempotency_key_reused; /health is public (this app has none: 404), /docs needs the key."""
    monkeypatch.setenv("REDIS_URL", "memory://")
    module = load("getting_started/app.py")
    store = module["store"]
    with TestClient(module["app"]) as client:
        client.portal.call(functools.partial(register_api_key, store, "ek_gs.secret-1", workspace_id="ws_1"))
        past = datetime(2025, 1, 1, tzinfo=UTC)
        client.portal.call(
            functools.partial(register_api_key, store, "ek_old.secret-3", workspace_id="ws_1", expires_at=past)
        )
        unknown = client.post("/widgets", headers={"X-API-Key": "ek_nope.secret-2"}, json={"name": "a"})
        expired = client.post("/widgets", headers={"X-API-Key": "ek_old.secret-3"}, json={"name": "a"})
        key = {"X-API-Key": "ek_gs.secret-1", "Idempotency-Key": "w-1"}
        first, other = (
            client.post("/widgets", headers=key, json={"name": "a"}),
            client.post("/widgets", headers=key, json={"name": "b"}),
        )
        docs, health = client.get("/docs"), client.get("/health")
        with_key = client.get("/docs", headers={"X-API-Key": "ek_gs.secret-1"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "invalid_api_key")
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "expired_api_key")
    assert (first.status_code, other.status_code, other.json()["error"]["code"]) == (201, 422, "idempotency_key_reused")
    assert (docs.status_code, docs.json()["error"]["code"]) == (401, "unauthorized")
    assert (health.status_code, health.json()["error"]["code"]) == (404, "not_found")
    assert with_key.status_code == 200


def test_the_whole_stack_runs_as_written(tmp_path: Path) -> None:
    """app.py in a folder of its own, a real Redis, the key from `errorkit keys issue`, uvicorn with
    two workers, and every curl of the page, compared with the page's output blocks."""
    assert commands("getting_started/redis.sh") == [
        "sudo apt-get install redis-server",
        "redis-server --daemonize yes",
    ]  # (the test starts its own redis-server, on a free port)
    assert commands("getting_started/redis-docker.sh") == ["docker run -d -p 6379:6379 redis:7"]
    export, issue, serve = commands("getting_started/run.sh")
    assert export == f"export REDIS_URL={PAGE_REDIS}"
    assert issue == "KEY=$(errorkit keys issue --workspace ws_1 --plan free)"
    assert serve == "uvicorn app:app --workers 4 &"  # run below with 2 workers, on a free port
    assert (VENV_BIN / "errorkit").is_file()
    (tmp_path / "app.py").write_text(snippet_path("getting_started/app.py").read_text())
    names = ["create", "no_key", "replay", "more", "quota", "rate_limit"]
    assert [c for name in names for c in section(name)] == commands("getting_started/requests.sh")

    with redis_server() as redis:
        key = shell(f'{export.replace(PAGE_REDIS, redis.url)}; {issue}; printf %s "$KEY"', {})
        assert re.fullmatch(r"ek_[0-9a-f]{16}\.[\w-]{43}", key), key
        with uvicorn("app:app", workers=2, env={"REDIS_URL": redis.url}, options=["--app-dir", str(tmp_path)]) as s:
            started = time.monotonic()
            answers = {name: [curl(c, s.port, key) for c in section(name)] for name in names}
            elapsed = time.monotonic() - started

    check(output_after("getting_started/requests.sh:create"), answers["create"][0])
    check(output_after("getting_started/requests.sh:no_key"), answers["no_key"][0])
    assert check(output_after("getting_started/requests.sh:replay"), answers["replay"][0]) == {"name": "first"}
    assert [parse_http(a)[0] for a in answers["more"]] == ["HTTP/1.1 201 Created"] * 2
    check(output_after("getting_started/requests.sh:quota"), answers["quota"][0])

    # The page shows a wait of 12 s: the sixth request came within a second of the first. On a slow
    # machine it may come later, and the wait is then shorter by the whole seconds that passed.
    response = answers["rate_limit"][0]
    waited = int(re.search(r"^retry-after: (\d+)$", response, re.M).group(1))  # type: ignore[union-attr]
    assert 12 - math.floor(elapsed) <= waited <= 12
    as_shown = response.replace(f"retry-after: {waited}\n", "retry-after: 12\n")
    as_shown = as_shown.replace(f'"retry_after_seconds":{waited},', '"retry_after_seconds":12,')
    check(output_after("getting_started/requests.sh:rate_limit"), as_shown)


def test_startup_failures_read_as_shown(tmp_path: Path) -> None:
    """With check_stores=True, uvicorn stops with the page's lines: Redis unreachable, then a Redis
    on which no key was issued yet."""
    (tmp_path / "app.py").write_text(snippet_path("getting_started/app.py").read_text())
    unreachable, no_marker = [
        m["body"] for m in FENCE.finditer(PAGE.split("## If the server does not start", 1)[1]) if m["lang"] == "text"
    ]

    def start(url: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(free_port()), "--app-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "REDIS_URL": url},
            timeout=60,
        )
        assert done.returncode == 3, done.stderr
        return "".join(line + "\n" for line in done.stderr.splitlines() if line.startswith("ERROR:"))

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    assert start(nowhere) == unreachable.replace(PAGE_REDIS, nowhere)
    with redis_server() as redis:
        assert start(redis.url) == no_marker.replace(PAGE_REDIS, redis.url)


def test_every_output_block_is_checked_above() -> None:
    """The page's output blocks are the ones the tests above compare: none goes unchecked."""
    checked = ["minimal.sh", "requests.sh:create", "requests.sh:no_key", "requests.sh:replay", "requests.sh:quota"]
    checked += ["requests.sh:rate_limit"]
    outputs = [m["body"] for m in FENCE.finditer(PAGE) if m["lang"] not in ("python", "bash")]
    startup = PAGE.split("## If the server does not start", 1)[1]
    texts = [m["body"] for m in FENCE.finditer(startup) if m["lang"] == "text"]
    assert sorted(outputs) == sorted([output_after(f"getting_started/{name}") for name in checked] + texts)
