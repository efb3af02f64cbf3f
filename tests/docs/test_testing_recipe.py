"""docs/recipes/testing.md: the recipe's own pytest suite runs, in memory and on a real Redis, as its
run.sh says (testing/widgets_app.py, testing/conftest.py, testing/test_widgets.py, testing/test_on_redis.py),
and a failing assertion prints what the page shows."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from errorkit import ConfigurationError, ErrorKit, MemoryBackend, RateLimiter
from tests.docs.support import DOCS_SRC, assert_lines, commands, fences, load

FOLDER = DOCS_SRC / "testing"
SUITE = ("widgets_app.py", "conftest.py", "test_widgets.py", "test_on_redis.py")


def pytest_run(line: str, cwd: Path = FOLDER, redis_url: str | None = None) -> tuple[int, dict[str, int], str]:
    """One line of run.sh, in the recipe's folder (or a copy of it): its exit status, outcome counts and output.
    The page's Redis URL becomes `redis_url`, the test's own redis-server (database 15 as the page says)."""
    program, option, *args = line.split()
    assert (program, option) == ("pytest", "-q")
    if "--errorkit-redis-url" in args:
        at = args.index("--errorkit-redis-url") + 1
        assert args[at] == "redis://127.0.0.1:6379/15" and redis_url is not None
        args[at] = redis_url
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ERRORKIT_TEST_REDIS_URL")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|errors?)", summary)}
    return done.returncode, counts, done.stdout


def copy_of_the_suite(tmp_path: Path) -> Path:
    copy = tmp_path / "suite"
    copy.mkdir()
    for name in SUITE:
        shutil.copy(FOLDER / name, copy / name)
    return copy


def test_the_in_memory_tests_pass() -> None:
    memory, _ = commands("testing/run.sh")
    status, counts, output = pytest_run(memory)
    assert (status, counts) == (0, {"passed": 6}), output


def test_every_test_passes_on_a_real_redis_and_leaves_no_key(redis_url: str) -> None:
    _, on_redis = commands("testing/run.sh")
    database = redis_url.replace("/0", "/15")
    status, counts, output = pytest_run(on_redis, redis_url=database)
    assert (status, counts) == (0, {"passed": 7}), output
    port = database.rsplit(":", 1)[1].split("/")[0]
    left = subprocess.run(["redis-cli", "-p", port, "-n", "15", "--scan"], capture_output=True, text=True, check=True)
    assert left.stdout.split() == []  # the test's keys (its prefix) deleted after it


def test_without_a_redis_the_redis_test_fails_saying_how() -> None:
    """The page: a test asking for the Redis fixture without a URL fails, saying how; it is not skipped."""
    status, counts, output = pytest_run("pytest -q")
    assert (status, counts) == (1, {"passed": 6, "error": 1}), output
    assert "run pytest with --errorkit-redis-url redis://127.0.0.1:6379/15 or set ERRORKIT_TEST_REDIS_URL=" in output


def test_a_failing_assertion_prints_what_the_page_shows(tmp_path: Path) -> None:
    """The page's failure: the same suite, its first test expecting another widget id."""
    copy = copy_of_the_suite(tmp_path)
    test = copy / "test_widgets.py"
    text = test.read_text()
    assert text.count('widget_id="w_404")') == 1
    test.write_text(text.replace('widget_id="w_404")', 'widget_id="w_405")'))
    memory, _ = commands("testing/run.sh")
    status, counts, output = pytest_run(memory, cwd=copy)
    assert (status, counts) == (1, {"failed": 1, "passed": 5}), output

    lines = output.splitlines()
    start = lines.index('>       assert_error(response, WidgetNotFound, widget_id="w_405")')
    end = start + 1
    while lines[end].startswith("E "):
        end += 1
    [block] = [body for body in fences("recipes/testing.md", "text", under="## The tests") if body.startswith(">")]
    assert_lines(block, lines[start:end])


def test_the_suite_fails_when_the_app_answers_otherwise(tmp_path: Path) -> None:
    """The recipe's assertions are exact: an app that puts another id in the error's details fails them."""
    copy = copy_of_the_suite(tmp_path)
    app = copy / "widgets_app.py"
    text = app.read_text()
    assert text.count('widget_id=request.path_params["widget_id"]') == 1
    app.write_text(text.replace('widget_id=request.path_params["widget_id"]', 'widget_id="w_1"'))
    memory, _ = commands("testing/run.sh")
    status, counts, output = pytest_run(memory, cwd=copy)
    assert (status, counts) == (1, {"failed": 1, "passed": 5}), output
    assert 'details.widget_id: expected "w_404", got "w_1"' in output


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
