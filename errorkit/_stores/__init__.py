"""Stores: the storage protocols, the in-memory store and the Redis store."""

import os

from errorkit._stores.memory import MemoryBackend
from errorkit._stores.protocols import Backend
from errorkit._stores.redis.backend import RedisBackend


def backend_from_env(variable: str = "REDIS_URL") -> Backend:
    """`RedisBackend` when the environment variable names a Redis URL, else `MemoryBackend`."""
    url = os.environ.get(variable)
    return RedisBackend(url) if url else MemoryBackend()
