"""Fixtures the documentation's tests share (tests/conftest.py's, such as `redis` and `redis_url`, too)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import make_certificates


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """REDIS_URL as a reader sets it, for `backend_from_env()` in the snippets: memory://, or the URL of
    a fresh redis-server of the test's own. The test runs once with each."""
    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis").url
    monkeypatch.setenv("REDIS_URL", url)
    yield url


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """TLS files made for real (`make_certificates`): a CA, a server certificate for 127.0.0.1 and
    localhost, a client certificate, another CA; by name (`"ca_crt"`, `"server_key"`, ...)."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))
