"""The Redis backend: state shared by every worker process, one atomic command per step.

Keys carry a hash tag (`{...}`) so each step touches one slot and works on Redis Cluster.
"""

from __future__ import annotations

from errorkit.auth.keys import ApiKeyRecord
from errorkit.backends.connection import Redis, Script

# Replace a hash in one step, so a reader never sees it half written or missing.
_REPLACE_HASH = Script("redis.call('DEL', KEYS[1]) return redis.call('HSET', KEYS[1], unpack(ARGV))")


class RedisBackend:
    """Stores keys, counters and idempotency records in Redis.

    `url` (or an existing `connection`) says where; `timeout` bounds each command
    (see `errorkit.backends.connection.Redis`); `prefix` namespaces every key.
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout: float = 0.05,
        prefix: str = "errorkit",
        connection: Redis | None = None,
    ) -> None:
        self.redis = connection or Redis(url, timeout=timeout)
        self.prefix = prefix

    def _key(self, kind: str, tag: str) -> str:
        return f"{self.prefix}:{kind}:{{{tag}}}"

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        flat = await self.redis.execute("HGETALL", self._key("apikey", key_id))
        if not flat:
            return None
        it = iter(flat)
        return ApiKeyRecord.from_fields({k.decode(): v.decode() for k, v in zip(it, it, strict=True)})

    async def put_api_key(self, record: ApiKeyRecord) -> None:
        key = self._key("apikey", record.key_id)
        fields = record.to_fields()
        await self.redis.run(_REPLACE_HASH, [key], [part for item in fields.items() for part in item])
        await self.redis.execute("SADD", self._key("workspace-keys", record.workspace_id), record.key_id)

    async def list_api_keys(self, workspace_id: str) -> list[ApiKeyRecord]:
        key_ids = await self.redis.execute("SMEMBERS", self._key("workspace-keys", workspace_id))
        records = [await self.get_api_key(key_id.decode()) for key_id in key_ids]
        return [r for r in records if r is not None and r.workspace_id == workspace_id]

    async def close(self) -> None:
        await self.redis.close()
