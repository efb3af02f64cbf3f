from collections.abc import Iterator

import pytest

from tests.servers import redis_server


@pytest.fixture(params=["starlette", "fastapi"])
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One real redis-server for the session; tests use distinct keys."""
    with redis_server() as server:
        yield server.url
