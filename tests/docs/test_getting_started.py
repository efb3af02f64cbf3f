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
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from errorkit import register_api_key
from tests.docs.support import (
    VENV_BIN,
    all_fences,
    assert_response,
    commands,
    fences,
    load,
    output_after,
    page,
    parse_response,
    run,
    shell,
    snippet_path,
    snippet_section,
)
from tests.support.servers import free_port, redis_server, uvicorn

PAGE = "index.md"
PAGE_REDIS = "redis://127.0.0.1:6379/0"  # the URL the page uses; the test's redis-server has its own port
STARTUP = "## If the server does not start"


def check(include: str, response: str, *, all_headers: bool = True) -> Any:
    """The response (what `curl -i` printed) is the block after the page's `include`; its JSON body."""
    assert_response(output_after(PAGE, include), response, all_headers=all_headers)
    return json.loads(parse_response(response).body)


def curl(command: str, port: int, key: str = "") -> str:
    """Run a curl command of the page against the test's server (`$KEY` the key); what it printed."""
    assert command.startswith("curl -i ") and "localhost:8000/" in command, command
    assert shutil.which("curl"), "curl is not installed: the page's requests are curl commands"
    ran = run(command.replace("localhost:8000/", f"127.0.0.1:{port}/"), {"KEY": key})
    assert ran.status == 0, (command, ran.out, ran.err)
    return ran.out


# --- the page -------------------------------------------------------------------------------------


def requests(name: str) -> list[str]:
    """The commands of a section of requests.sh (`# --8<-- [start:name]`), which the page shows by name."""
    return snippet_section("getting_started/requests.sh", name)


def test_install_lines_are_the_ones_documented() -> None:
    assert commands("getting_started/install.sh") == [
        "pip install errorkit",
        'pip install "errorkit[fastapi]" "uvicorn[standard]"',
    ]
    assert "Python 3.11 or later" in page(PAGE)
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
    assert check("getting_started/minimal.sh", response)["error"]["details"] == {"campaign_id": "c_1"}


def test_minimal_app_answers_every_other_error_in_the_same_format() -> None:
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
    another body 422 idempotency_key_reused; /health is public and not counted, /docs needs the key."""
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
        healths = [client.get("/health") for _ in range(110)]  # more than the 100/minute of every other route
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "invalid_api_key")
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "expired_api_key")
    assert (first.status_code, other.status_code, other.json()["error"]["code"]) == (201, 422, "idempotency_key_reused")
    assert (docs.status_code, docs.json()["error"]["code"]) == (401, "unauthorized")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert "x-ratelimit-limit" not in health.headers
    assert {r.status_code for r in healths} == {200}
    assert with_key.status_code == 200


def test_the_whole_stack_runs_as_written(tmp_path: Path) -> None:
    """app.py in a folder of its own, a real Redis, the key from `errorkit keys issue`, uvicorn with
    two workers, and every curl of the page, compared with the page's output blocks."""
    # (the Redis snippets are checked by test_redis_snippets; this test starts its own redis-server)
    export, issue, serve = commands("getting_started/run.sh")
    assert export == f"export REDIS_URL={PAGE_REDIS}"
    assert issue == "KEY=$(errorkit keys issue --workspace ws_1 --plan free)"
    assert serve == "uvicorn app:app --workers 4 &"  # run below with 2 workers, on a free port
    assert (VENV_BIN / "errorkit").is_file()
    (tmp_path / "app.py").write_text(snippet_path("getting_started/app.py").read_text())
    names = ["create", "no_key", "health", "replay", "more", "quota", "rate_limit"]
    assert [c for name in names for c in requests(name)] == commands("getting_started/requests.sh")

    with redis_server() as redis:
        issued = shell([export.replace(PAGE_REDIS, redis.url), issue], {}, show=["KEY"])
        assert [r.status for r in issued] == [0, 0, 0], issued
        key = issued[2].out
        assert re.fullmatch(r"ek_[0-9a-f]{16}\.[\w-]{43}", key), key
        with uvicorn("app:app", workers=2, env={"REDIS_URL": redis.url}, options=["--app-dir", str(tmp_path)]) as s:
            started = time.monotonic()
            answers = {name: [curl(c, s.port, key) for c in requests(name)] for name in names}
            elapsed = time.monotonic() - started

    check("getting_started/requests.sh:create", answers["create"][0])
    # the 401 is counted for the client's address (127.0.0.1): its own bucket of the route's 5 a minute
    check("getting_started/requests.sh:no_key", answers["no_key"][0])
    assert check("getting_started/requests.sh:health", answers["health"][0]) == {"status": "ok"}
    assert check("getting_started/requests.sh:replay", answers["replay"][0]) == {"name": "first"}
    assert [parse_response(a).status for a in answers["more"]] == [201, 201]
    check("getting_started/requests.sh:quota", answers["quota"][0])

    # The page shows a wait of 12 s: the sixth request came within a second of the first. On a slow
    # machine it may come later, and the wait is then shorter by the whole seconds that passed.
    response = answers["rate_limit"][0]
    waited = int(re.search(r"^retry-after: (\d+)$", response, re.M).group(1))  # type: ignore[union-attr]
    assert 12 - math.floor(elapsed) <= waited <= 12
    as_shown = response.replace(f"retry-after: {waited}\n", "retry-after: 12\n")
    as_shown = as_shown.replace(f'"retry_after_seconds":{waited},', '"retry_after_seconds":12,')
    check("getting_started/requests.sh:rate_limit", as_shown)


def test_redis_snippets(tmp_path: Path) -> None:
    """The apt tab: the package (whose service is not started here) and `redis-cli ping`, run against a real
    redis-server; where no service runs, `redis-server --daemonize yes` starts one that answers PONG."""
    assert commands("getting_started/redis.sh") == ["sudo apt-get install redis-server", "redis-cli ping"]
    assert commands("getting_started/redis-docker.sh") == ["docker run -d -p 6379:6379 redis:7"]
    start, ping = commands("getting_started/redis-start.sh")
    assert (start, ping) == ("redis-server --daemonize yes", "redis-cli ping")

    def on(port: int) -> str:  # the page's `redis-cli ping`, to a Redis on the test's port
        return ping.replace("redis-cli ", f"redis-cli -p {port} ")

    with redis_server() as redis:  # (the service the package starts, on the test's own port)
        pinged = run(on(redis.port), {})
        assert (pinged.status, pinged.out) == (0, "PONG\n")
    port = free_port()
    nowhere = run(on(port), {})  # no server yet: no PONG
    assert nowhere.status != 0 and "PONG" not in nowhere.out
    # the page's command, on a free port and without writing to disk
    options = (
        f"--port {port} --bind 127.0.0.1 --save '' --appendonly no --dir {tmp_path} --pidfile {tmp_path}/redis.pid"
    )
    started = run(f"{start} {options}", {})
    assert started.status == 0, started.err
    try:
        for _ in range(50):
            pinged = run(on(port), {})
            if pinged.out == "PONG\n":
                break
            time.sleep(0.1)
        assert pinged.out == "PONG\n"
    finally:
        run(f"redis-cli -p {port} shutdown nosave", {})


def test_startup_failures_read_as_shown(tmp_path: Path) -> None:
    """With check_stores=True, uvicorn stops with the page's lines: Redis unreachable, then a Redis
    on which no key was issued yet."""
    (tmp_path / "app.py").write_text(snippet_path("getting_started/app.py").read_text())
    unreachable, no_marker = fences(PAGE, "text", under=STARTUP)

    def start(url: str) -> str:
        done = run(f"uvicorn app:app --port {free_port()} --app-dir {tmp_path}", {"REDIS_URL": url})
        assert done.status == 3, done.err
        return "".join(line + "\n" for line in done.err.splitlines() if line.startswith("ERROR:"))

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    assert start(nowhere) == unreachable.replace(PAGE_REDIS, nowhere)
    with redis_server() as redis:
        assert start(redis.url) == no_marker.replace(PAGE_REDIS, redis.url)


def test_every_output_block_is_checked_above() -> None:
    """The page's output blocks are the ones the tests above compare: none goes unchecked."""
    checked = ["minimal.sh", "requests.sh:create", "requests.sh:no_key", "requests.sh:health", "requests.sh:replay"]
    checked += ["requests.sh:quota", "requests.sh:rate_limit"]
    outputs = [body for lang, body in all_fences(page(PAGE)) if lang not in ("python", "bash")]
    texts = fences(PAGE, "text", under=STARTUP)
    assert sorted(outputs) == sorted([output_after(PAGE, f"getting_started/{name}") for name in checked] + texts)
