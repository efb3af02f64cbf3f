"""The storage interface every backend implements: a few small steps, each atomic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from errorkit.auth.keys import ApiKeyRecord


class BackendUnavailable(ConnectionError):
    """The store could not answer (Redis down or slow); callers apply their failure policy."""


class Backend(Protocol):
    """Storage for API keys, rate-limit counters and idempotency records.

    `MemoryBackend` keeps everything in this process; `RedisBackend` shares it between
    processes. Everything around these steps (policies, headers, errors) is shared code.
    """

    name: str

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def put_api_key(self, record: ApiKeyRecord) -> None: ...

    async def list_api_keys(self, workspace_id: str) -> list[ApiKeyRecord]: ...
