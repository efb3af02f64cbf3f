"""Fixtures every test module may ask for: the framework, one real Redis for the session, a
fresh redis-server of a test's own, and fresh stores of each kind (the contract every suite
runs over both)."""

import uuid
from collections.abc import Iterator

import pytest

from errorkit import Backend, MemoryBackend, RedisBackend
from tests.support.servers import Redis, redis_server
from tests.support.stores import NewBackend


@pytest.fixture(params=["starlette", "fastapi"])
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One real redis-server for the session; tests use distinct keys."""
    with redis_server() as server:
        yield server.url


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A redis-server of this test's own (for faults: SIGSTOP, SIGKILL, FLUSHALL), stopped after it."""
    with redis_server() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def new_backend(request: pytest.FixtureRequest, redis_url: str) -> NewBackend:
    """Makes fresh stores of one kind: in memory, or on the session's Redis under a key prefix of their own."""

    def make() -> Backend:
        if request.param == "memory":
            return MemoryBackend()
        return RedisBackend(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")

    return make


@pytest.fixture
def backend(new_backend: NewBackend) -> Backend:
    """A fresh store, once in memory and once on Redis."""
    return new_backend()
