"""docs/recipes/testing.md: the recipe's own pytest suite runs, in memory and on a real Redis, as its
run.sh says (testing/widgets_app.py, testing/conftest.py, testing/test_widgets.py, testing/test_on_redis.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import ConfigurationError, ErrorKit, MemoryBackend, RateLimiter
from tests.docs.support import DOCS_SRC, commands, load

FOLDER = DOCS_SRC / "testing"


def pytest_run(line: str, redis_url: str | None) -> tuple[int, dict[str, int], str]:
    """One line of run.sh, in the recipe's folder: its exit status and its outcome counts."""
    *assignments, program, option = line.split()
    assert (program, option) == ("pytest", "-q")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for assignment in assignments:
        name, value = assignment.split("=", 1)
        assert name == "REDIS_URL" and value == "redis://127.0.0.1:6379/15"
        assert redis_url is not None
        env[name] = redis_url  # the test's own redis-server, database 15 as the page says
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="],
        cwd=FOLDER, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|errors?)", summary)}
    return done.returncode, counts, done.stdout


def test_the_suite_passes_in_memory_and_skips_the_redis_test() -> None:
    memory, _ = commands("testing/run.sh")
    status, counts, output = pytest_run(memory, None)
    assert (status, counts) == (0, {"passed": 5, "skipped": 1}), output


def test_the_suite_passes_on_a_real_redis(redis_url: str) -> None:
    _, on_redis = commands("testing/run.sh")
    status, counts, output = pytest_run(on_redis, redis_url.replace("/0", "/15"))
    assert (status, counts) == (0, {"passed": 6}), output


def test_the_suite_fails_when_the_app_answers_otherwise(tmp_path: Path) -> None:
    """The recipe's assertions are exact: the same tests on an app whose error message changed fail."""
    copy = tmp_path / "suite"
    copy.mkdir()
    for name in ("widgets_app.py", "conftest.py", "test_widgets.py"):
        text = (FOLDER / name).read_text()
        if name == "widgets_app.py":
            text = text.replace('"Widget {widget_id} does not exist"', '"No widget {widget_id}"')
        (copy / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="],
        cwd=copy, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.strip().splitlines()[-1].startswith("1 failed, 4 passed")


def test_the_app_module_serves_the_store_redis_url_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    module = load("testing/widgets_app.py")
    with TestClient(module["app"]) as client:
        answer = client.get("/widgets/w_1", headers={"X-Request-ID": "r"})
    assert answer.status_code == 401
    assert answer.json() == {"error": {"code": "unauthorized", "message": "Unauthorized", "request_id": "r"}}


def test_entering_the_client_runs_the_route_checks() -> None:
    """What the page says `with TestClient(...)` catches: a route entry that names no route."""

    async def create(request: object) -> None: ...

    app = Starlette(routes=[Route("/widgets", create, methods=["POST"])])
    ErrorKit().install(app, rate_limit=RateLimiter(MemoryBackend(), routes={"POST /widgetz": "1/minute"}))
    with pytest.raises(ConfigurationError, match="'POST /widgetz' names no route of the app"), TestClient(app):
        pass
