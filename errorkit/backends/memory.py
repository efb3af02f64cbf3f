"""The in-memory backend: one process, no Redis (the demo, tests, single-process apps)."""

from __future__ import annotations

from errorkit.auth.keys import ApiKeyRecord


class MemoryBackend:
    """Keeps keys, counters and idempotency records in this process's memory."""

    name = "memory"

    def __init__(self) -> None:
        self._keys: dict[str, ApiKeyRecord] = {}

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    async def put_api_key(self, record: ApiKeyRecord) -> None:
        self._keys[record.key_id] = record

    async def list_api_keys(self, workspace_id: str) -> list[ApiKeyRecord]:
        return [r for r in self._keys.values() if r.workspace_id == workspace_id]
