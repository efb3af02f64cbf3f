from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from widgets_app import create_app

from errorkit import MemoryBackend
from errorkit.testing import issue_key


@pytest.fixture
def client(errorkit_memory_backend: MemoryBackend) -> Iterator[TestClient]:
    # a fresh store for each test; `with`: the start-up checks run, as under uvicorn
    with TestClient(create_app(errorkit_memory_backend)) as client:
        yield client


@pytest.fixture
def api_key(errorkit_memory_backend: MemoryBackend) -> str:
    return issue_key(errorkit_memory_backend, workspace_id="ws_test", plan="free")
