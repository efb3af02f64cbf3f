"""errorkit's pytest plugin (the `pytest11` entry point `errorkit`): one option and three fixtures.

pytest imports every installed plugin at each start, in every project that has errorkit installed,
so this module sits outside the `errorkit` package and imports nothing of it at import time:
importing `errorkit` (FastAPI, pydantic, OpenTelemetry...) costs about 240 ms, this module about 1 ms.
The fixtures import what they need when a test asks for them. The helpers, and these fixtures
under their documented names, are `errorkit.testing`'s.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from errorkit._stores.memory import MemoryBackend
    from errorkit._stores.redis.backend import RedisBackend

REDIS_URL_VARIABLE = "ERRORKIT_TEST_REDIS_URL"
"""The environment variable naming the Redis `errorkit_redis_backend` tests against (`--errorkit-redis-url` wins)."""
OPTION = "--errorkit-redis-url"
HOW = (
    f"errorkit_redis_backend needs a Redis to test against: run pytest with {OPTION} redis://127.0.0.1:6379/15 "
    f"or set {REDIS_URL_VARIABLE}=redis://127.0.0.1:6379/15 (a database no one serves from: each test writes "
    "under a key prefix of its own and deletes its keys afterwards)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("errorkit")
    group.addoption(
        OPTION,
        metavar="URL",
        default=None,
        help=f"the Redis for the errorkit_redis_backend fixture (else ${REDIS_URL_VARIABLE})",
    )


@pytest.fixture
def errorkit_memory_backend() -> MemoryBackend:
    """A fresh `MemoryBackend` for each test: no key, counter, idempotency record or quota carried over."""
    from errorkit._stores.memory import MemoryBackend

    return MemoryBackend()


@pytest.fixture(scope="session")
def errorkit_redis_url(pytestconfig: pytest.Config) -> str:
    """The Redis URL the tests run against: `--errorkit-redis-url`, else `$ERRORKIT_TEST_REDIS_URL`.

    Neither given (or `memory://`): the test asking for it fails with a message saying how to give one,
    rather than being skipped where no one looks. A value that is no Redis URL fails the same way.
    """
    from errorkit._common.exceptions import ConfigurationError
    from errorkit._stores import redis_url_of

    given = pytestconfig.getoption(OPTION, default=None)  # (None with `-p no:errorkit`: the environment only)
    name, value = (OPTION, given) if given else (REDIS_URL_VARIABLE, os.environ.get(REDIS_URL_VARIABLE, ""))
    if not value.strip():
        pytest.fail(HOW, pytrace=False)
    problem = ""
    try:
        url = redis_url_of(name, value)
    except ConfigurationError as exc:  # not a URL errorkit can use (failed outside this block: no chained trace)
        url, problem = None, f"{exc}\n"
    if url is None:
        pytest.fail((problem or f"{name} is memory://, which is no Redis: ") + HOW, pytrace=False)
    return url


@pytest.fixture
def errorkit_redis_backend(errorkit_redis_url: str) -> Iterator[RedisBackend]:
    """A `RedisBackend` of the test's own on the Redis `errorkit_redis_url` names.

    Its keys start with a prefix no other test uses (`errorkit-test-<12 hex digits>`), so tests never
    see each other's counters, even run at once (pytest-xdist); it is marked as holding errorkit's data
    (as `errorkit store init` would), so a first lookup is an unknown key rather than a lost store. Its
    command deadline is 1 s, not production's 50 ms. After the test, passed or failed, every key under
    its prefix is deleted (on each primary of a Cluster), and its connection closed if the event loop it
    lives on is still there; a `TestClient` block's loop ends with the block, so close the store there
    first (`client.portal.call(store.close)`), else its socket is closed when Python collects it. The
    keys are deleted even when closing fails (a loop too busy to answer within 10 s).
    """
    from errorkit._stores.redis.backend import RedisBackend
    from errorkit.testing import _FIXTURE_TIMEOUTS, _close, _delete_all, _run

    backend = RedisBackend(
        errorkit_redis_url, prefix=f"errorkit-test-{uuid.uuid4().hex[:12]}", timeout=_FIXTURE_TIMEOUTS
    )
    _run(backend, lambda own: own.initialize())
    try:
        yield backend
    finally:
        try:
            _close(backend)
        finally:  # the keys go even when closing failed (a portal loop too busy to answer, a loop closed meanwhile)
            _delete_all(backend)
