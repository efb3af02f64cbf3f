import asyncio
import functools
import os
import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from widgets_app import create_app

from errorkit import Backend, MemoryBackend, RedisBackend, issue_api_key


@pytest.fixture
def store() -> Backend:
    return MemoryBackend()  # a new one for each test: no counts, keys or records carried over


@pytest.fixture
def client(store: Backend) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as client:  # `with`: the start-up checks run, as under uvicorn
        yield client


@pytest.fixture
def api_key(client: TestClient, store: Backend) -> str:
    # issued on the app's own event loop, where the store's connection lives
    issue = functools.partial(issue_api_key, store, workspace_id="ws_test", plan="free")
    return client.portal.call(issue)


@pytest.fixture
def redis_store() -> Backend:
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        pytest.skip("set REDIS_URL=redis://... to run the tests against a real Redis")
    prefix = f"test-{uuid.uuid4().hex[:8]}"  # keys of this test's own: nothing carried over
    asyncio.run(initialize(url, prefix))  # marked, as `errorkit store init --prefix` would
    return RedisBackend(url, prefix=prefix)


async def initialize(url: str, prefix: str) -> None:
    store = RedisBackend(url, prefix=prefix)
    await store.initialize()
    await store.close()
