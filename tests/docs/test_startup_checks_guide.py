"""guides/startup-checks.md: a real uvicorn refusing to start (its real output), the messages of
the page's tables, the warning for a mount errorkit cannot see into, the checks of an app served
without the lifespan, and `check_stores=True` on a real Redis."""

import logging
import re
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import errorkit
from errorkit import ConfigurationError, ErrorKit, MemoryBackend, StoreDataLost, StoreUnavailable
from tests.docs.support import DOCS_SRC, assert_lines, commands, fences, load, run, section, shell
from tests.support.servers import Redis, free_port

PAGE = "guides/startup-checks.md"
FOLDER = str(DOCS_SRC / "startup_checks")
TYPO = "RateLimiter(routes=...): 'POST /widgetz' names no route of the app; the nearest is 'POST /widgets'"


def rows(heading: str) -> list[tuple[str, str]]:
    """The two cells (their code) of each row of the first table under `heading`."""
    found = re.findall(r"^\| `(.+?)` \| `(.+?)` \|$", section(PAGE, heading), re.M)
    assert found
    return found


def test_uvicorn_prints_the_mistake_and_exits_with_status_3() -> None:
    lines = commands("startup_checks/serve.sh")
    assert lines == ["export REDIS_URL=memory://", "uvicorn widgets:app"]
    served = shell(lines, {}, cwd=FOLDER)
    assert served[1].status == 3
    assert_lines(fences(PAGE, "text")[0], served[1].err.splitlines())
    assert served[1].err.splitlines()[2] == f"ERROR:    ConfigurationError: {TYPO}"


def test_with_workers_each_worker_says_it_and_the_supervisor_exits_0() -> None:
    served = run(f"uvicorn widgets:app --workers 2 --port {free_port()}", {"REDIS_URL": "memory://"}, cwd=FOLDER)
    assert served.status == 0
    assert served.err.count(f"ERROR:    ConfigurationError: {TYPO}") == 2


def test_a_test_client_raises_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    app = load("startup_checks/widgets.py")["app"]
    with pytest.raises(ConfigurationError) as raised, TestClient(app):
        pass
    assert str(raised.value) == TYPO


def widgets_app(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """A new app with the routes of startup_checks/widgets.py, nothing installed yet."""
    monkeypatch.setenv("REDIS_URL", "memory://")
    routes = load("startup_checks/widgets.py")["app"].routes
    app = FastAPI()
    app.router.routes += [
        r for r in routes if getattr(r, "path", "") in ("/health", "/widgets", "/widgets/{widget_id}")
    ]
    return app


def test_the_start_up_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    table = rows("Some of the messages, on the app above:")
    assert len(table) == 6
    for code, message in table:
        app = widgets_app(monkeypatch)
        stages = eval(f"dict({code})", {**vars(errorkit), "store": MemoryBackend()})
        ErrorKit().install(app, **stages)
        with pytest.raises(ConfigurationError) as raised, TestClient(app):
            pass
        assert str(raised.value) == message


def test_a_lower_case_method_is_upper_cased(monkeypatch: pytest.MonkeyPatch) -> None:
    app = widgets_app(monkeypatch)
    ErrorKit().install(app, rate_limit=errorkit.RateLimiter(MemoryBackend(), routes={"post /widgets": "1/minute"}))
    with TestClient(app) as client:
        assert [client.post("/widgets").status_code for _ in range(2)] == [201, 429]


def test_the_mistakes_refused_at_construction() -> None:
    table = rows("Mistakes no app could mean fail where they are written, when the stage is built:")
    assert len(table) == 10
    for code, raised_text in table:
        kind, message = raised_text.split(": ", 1)
        with pytest.raises(Exception) as raised:
            eval(code, {**vars(errorkit), "store": MemoryBackend()})
        assert (type(raised.value).__name__, str(raised.value)) == (kind, message), code


def test_a_mount_errorkit_cannot_see_into_is_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    with (
        caplog.at_level(logging.WARNING, logger="errorkit"),
        TestClient(load("startup_checks/mounted.py")["app"]) as client,
    ):
        assert client.get("/widgets").json() == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "errorkit"]
    assert_lines(fences(PAGE, "text")[1], warnings)


def test_without_the_lifespan_the_first_request_or_the_openapi_document_checks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    app = load("startup_checks/widgets.py")["app"]
    with pytest.raises(ConfigurationError) as raised:
        app.openapi()
    assert str(raised.value) == TYPO

    client = TestClient(load("startup_checks/widgets.py")["app"], raise_server_exceptions=False)  # (outside `with`)
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        answers = [client.get("/health") for _ in range(2)]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(500, "internal_error")] * 2
    crashes = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ConfigurationError)]
    assert len(crashes) == 2


def start(app: Any) -> None:
    with TestClient(app):
        pass


def test_check_stores(monkeypatch: pytest.MonkeyPatch, redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", nowhere)
    with pytest.raises(StoreUnavailable) as unreachable:
        start(load("startup_checks/check_stores.py")["app"])
    said = f"{type(unreachable.value).__name__}: {unreachable.value}".replace(nowhere, "redis://127.0.0.1:6379/0")
    assert_lines(fences(PAGE, "text")[2], [said])

    monkeypatch.setenv("REDIS_URL", redis.url)
    with pytest.raises(StoreDataLost):  # a new Redis: no dataset marker for the idempotency store
        start(load("startup_checks/check_stores.py")["app"])
    assert run(f"errorkit store init --url {redis.url}", {}).status == 0
    start(load("startup_checks/check_stores.py")["app"])

    monkeypatch.setenv("REDIS_URL", nowhere)
    client = TestClient(load("startup_checks/check_stores.py")["app"])  # without the lifespan: not reached
    with caplog.at_level(logging.WARNING, logger="errorkit"):
        client.get("/nowhere")
    assert any("its stores were not reached at start-up" in r.getMessage() for r in caplog.records)
