"""The Redis backend: state shared by every worker process, one atomic command per step.

Keys carry a hash tag (`{...}`) so each step touches one slot and works on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from errorkit.auth.keys import ApiKeyRecord
from errorkit.backends.connection import Redis, Script

# Replace a hash in one step, so a reader never sees it half written or missing.
_REPLACE_HASH = Script("redis.call('DEL', KEYS[1]) return redis.call('HSET', KEYS[1], unpack(ARGV))")

# Rate limiting: the twins of MemoryBackend._gcra and MemoryBackend._fixed. Time is Redis's
# own clock (TIME, in microseconds) so workers with skewed clocks agree. ARGV: cost, then
# (period_us, limit) per key. Returns {now_us, admitted, value per key}.
_GCRA = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out, new = {now, 1}, {}
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  new[i] = math.ceil(tat + cost * period / tonumber(ARGV[2 * i + 1]))
  if new[i] - period > now then out[2] = 0 end
  out[i + 2] = tat
end
if out[2] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%d', new[i]), 'PX', math.ceil((new[i] - now) / 1000))
    out[i + 2] = new[i]
  end
end
return out
""")
_FIXED = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local out, windows = {now, 1}, {}
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i])
  windows[i] = math.floor(now / period)
  local state = redis.call('HMGET', KEYS[i], 'w', 'c')
  local count = tonumber(state[1]) == windows[i] and tonumber(state[2]) or 0
  if count + cost > tonumber(ARGV[2 * i + 1]) then out[2] = 0 end
  out[i + 2] = count
end
if out[2] == 1 then
  for i = 1, #KEYS do
    out[i + 2] = out[i + 2] + cost
    redis.call('HSET', KEYS[i], 'w', string.format('%d', windows[i]), 'c', out[i + 2])
    redis.call('PEXPIREAT', KEYS[i], math.ceil((windows[i] + 1) * tonumber(ARGV[2 * i]) / 1000))
  end
end
return out
""")
_RATE_LIMIT_SCRIPTS = {"gcra": _GCRA, "fixed": _FIXED}

# Idempotency: the twins of MemoryBackend.idempotency_*. A record is a hash
# {state = p|c, fp, owner, resp}; while in progress its expiry is the owner's lease.
_CLAIM = Script("""
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'resp')
if r[1] == 'c' then return {'completed', r[2], r[3]} end
if r[1] == 'p' then return {'in_progress', r[2]} end
redis.call('HSET', KEYS[1], 'state', 'p', 'fp', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'claimed'}
""")
_COMPLETE = Script("""
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'c', 'resp', ARGV[2])
redis.call('HDEL', KEYS[1], 'owner')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
""")
_RELEASE = Script("""
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
""")
_RENEW = Script("""
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
""")


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

    def rate_limit(self, algorithm: str, keys: Sequence[str], args: Sequence[int], cost: int) -> Awaitable[list[int]]:
        return self.redis.run(_RATE_LIMIT_SCRIPTS[algorithm], keys, (cost, *args))  # a future: no extra frame

    def idempotency_claim(self, key: str, fingerprint: str, owner: str, lease_ms: int) -> Awaitable[list[Any]]:
        return self.redis.run(_CLAIM, [key], (fingerprint, owner, lease_ms))

    def idempotency_complete(self, key: str, owner: str, response: bytes, ttl_ms: int) -> Awaitable[int]:
        return self.redis.run(_COMPLETE, [key], (owner, response, ttl_ms))

    def idempotency_release(self, key: str, owner: str) -> Awaitable[int]:
        return self.redis.run(_RELEASE, [key], (owner,))

    def idempotency_renew(self, key: str, owner: str, lease_ms: int) -> Awaitable[int]:
        return self.redis.run(_RENEW, [key], (owner, lease_ms))

    async def close(self) -> None:
        await self.redis.close()
