"""The Redis store: state shared by every worker process, one atomic command per step.

This store owns the key layout. Every key is `<prefix>:<kind>:{<tag>}...`, the hash tag
being the identity a step works on, so each step touches one slot (Redis Cluster-safe):

| kind | key | holds |
|---|---|---|
| API key | `<prefix>:apikey:{<key id>}` | hash of the record's fields (the secret's SHA-256, never the secret) |
| workspace index | `<prefix>:workspace-keys:{<workspace>}` | set of key ids |
| rate limit | `<prefix>:rl:{<identity>}:<bucket>` | the algorithm's state (GCRA: a timestamp; fixed: window, count) |
| idempotency | `<prefix>:idem:{<tenant>}:<sha1 of the key>` | hash: state, fingerprint, owner or response |
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Sequence
from typing import Any

from errorkit._exceptions import StoreError
from errorkit._principal import APIKeyRecord
from errorkit._stores.connection import Redis, Script, Timeouts
from errorkit._stores.protocols import Claim, ClaimState, Counted, CounterAlgorithm
from errorkit._stores.topology import ClusterClient, SentinelClient, connect


def _script(name: str) -> Script:
    return Script.from_file("errorkit._stores.lua", name)


_REPLACE_HASH = _script("replace_hash.lua")
_CLAIM = _script("idempotency_claim.lua")
_COMPLETE = _script("idempotency_complete.lua")
_RELEASE = _script("idempotency_release.lua")
_RENEW = _script("idempotency_renew.lua")
_CLAIMED = Claim(ClaimState.CLAIMED)
_CLAIM_STATES = {
    b"completed": ClaimState.COMPLETED,
    b"unstored": ClaimState.COMPLETED_UNSTORED,
    b"in_progress": ClaimState.IN_PROGRESS,
}


def _claim(reply: list[Any]) -> Claim:
    if reply[0] == b"claimed":
        return _CLAIMED
    return Claim(_CLAIM_STATES[reply[0]], reply[1], reply[2] if len(reply) > 2 else b"")


def _counted(reply: list[int]) -> Counted:
    return Counted(reply[0], reply[1] == 1, reply[2:])


def _tag(value: str) -> str:
    """Braces inside an identity would move the hash tag: keep them out."""
    return value.replace("{", "(").replace("}", ")")


class RedisBackend:
    """Stores keys, counters and idempotency records in Redis.

    `url` is any form `errorkit._stores.urls` accepts (one server over TCP, TLS or a unix
    socket, Sentinel, Cluster); a malformed URL or an unknown option is a `ValueError` here,
    never on the first request. `timeout` is the per-command deadline in seconds or a
    `Timeouts`; `prefix` starts every key this store writes; `connection` is an errorkit
    client made by `errorkit._stores.topology.connect()` (for sharing one between stores).
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout: float | Timeouts = 0.05,
        prefix: str = "errorkit",
        connection: Redis | SentinelClient | ClusterClient | None = None,
    ) -> None:
        if connection is not None and not isinstance(connection, Redis | SentinelClient | ClusterClient):
            raise TypeError(
                f"connection must be errorkit's own Redis client (errorkit._stores.topology.connect(url)), "
                f"not {type(connection).__module__}.{type(connection).__qualname__}: errorkit does not run on redis-py"
            )
        self.redis = connection if connection is not None else connect(url, timeout=timeout)
        self.prefix = prefix
        self._scripts: dict[str, Script] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- API keys -------------------------------------------------------------------------

    def _api_key(self, key_id: str) -> str:
        return f"{self.prefix}:apikey:{{{_tag(key_id)}}}"

    def _workspace_keys(self, workspace_id: str) -> str:
        return f"{self.prefix}:workspace-keys:{{{_tag(workspace_id)}}}"

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        flat = await self.redis.execute("HGETALL", self._api_key(key_id))
        if not flat:
            return None
        it = iter(flat)
        return APIKeyRecord.from_fields({k.decode(): v.decode() for k, v in zip(it, it, strict=True)})

    async def put_api_key(self, record: APIKeyRecord) -> None:
        fields = record.to_fields()
        await self.redis.run(
            _REPLACE_HASH, [self._api_key(record.key_id)], [p for item in fields.items() for p in item]
        )
        await self.redis.execute("SADD", self._workspace_keys(record.workspace_id), record.key_id)

    async def list_api_keys(self, workspace_id: str) -> list[APIKeyRecord]:
        key_ids = await self.redis.execute("SMEMBERS", self._workspace_keys(workspace_id))
        records = [await self.get_api_key(key_id.decode()) for key_id in key_ids]
        return [r for r in records if r is not None and r.workspace_id == workspace_id]

    # -- rate limiting --------------------------------------------------------------------

    def count(
        self, algorithm: CounterAlgorithm, identity: str, buckets: Sequence[str], args: Sequence[int], cost: int
    ) -> Awaitable[Counted]:
        script = self._scripts.get(algorithm.name)
        if script is None:
            script = self._scripts[algorithm.name] = Script(algorithm.lua)
        base = f"{self.prefix}:rl:{{{_tag(identity)}}}:"
        keys = [base + bucket for bucket in buckets]
        return self.redis.run(script, keys, (cost, *args), _counted)  # a future: no extra frame

    # -- idempotency ------------------------------------------------------------------------

    def _record(self, tenant: str, key: str) -> str:
        return f"{self.prefix}:idem:{{{_tag(tenant)}}}:{hashlib.sha1(key.encode()).hexdigest()}"

    def claim(self, tenant: str, key: str, fingerprint: bytes, owner: str, lease_ms: int) -> Awaitable[Claim]:
        def late(claim: Claim) -> None:  # the caller gave up, but the key was claimed: free it at once
            if claim.state is ClaimState.CLAIMED:
                self._background(self.release(tenant, key, owner))

        return self.redis.run(_CLAIM, [self._record(tenant, key)], (fingerprint, owner, lease_ms), _claim, late)

    def _background(self, step: Awaitable[bool]) -> None:
        async def quietly() -> None:
            with contextlib.suppress(StoreError):
                await step

        task = asyncio.get_running_loop().create_task(quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def complete(self, tenant: str, key: str, owner: str, response: bytes | None, ttl_ms: int) -> Awaitable[bool]:
        args: tuple[Any, ...] = (owner, ttl_ms) if response is None else (owner, ttl_ms, response)
        return self.redis.run(_COMPLETE, [self._record(tenant, key)], args, bool)

    def release(self, tenant: str, key: str, owner: str) -> Awaitable[bool]:
        return self.redis.run(_RELEASE, [self._record(tenant, key)], (owner,), bool)

    def renew(self, tenant: str, key: str, owner: str, lease_ms: int) -> Awaitable[bool]:
        return self.redis.run(_RENEW, [self._record(tenant, key)], (owner, lease_ms), bool)

    async def close(self) -> None:
        await self.redis.close()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.redis!r} prefix={self.prefix!r}>"
