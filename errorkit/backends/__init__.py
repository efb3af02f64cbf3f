"""Storage backends behind one small interface: `MemoryBackend` and `RedisBackend`."""

import os

from errorkit.backends.base import Backend, BackendUnavailable
from errorkit.backends.memory import MemoryBackend
from errorkit.backends.redis import RedisBackend


def backend_from_env(variable: str = "REDIS_URL") -> Backend:
    """`RedisBackend` when the environment variable names a Redis URL, else `MemoryBackend`."""
    url = os.environ.get(variable)
    return RedisBackend(url) if url else MemoryBackend()


__all__ = ["Backend", "BackendUnavailable", "MemoryBackend", "RedisBackend", "backend_from_env"]
