"""The storage interface every backend implements: a few small steps, each atomic."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

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

    def rate_limit(self, algorithm: str, keys: Sequence[str], args: Sequence[int], cost: int) -> Awaitable[list[int]]:
        """Count `cost` against every limit, all or nothing: `[now_us, admitted (0/1), value per key]`.

        `args` is `(period_us, limit)` per key. GCRA keeps a theoretical arrival time per
        key (the value); "fixed" a (window, count) pair (the count is the value). Values
        are the new state when admitted, the unchanged state when refused. The clock is
        the store's own (Redis `TIME`), so every worker uses the same one.
        """
        ...

    def idempotency_claim(self, key: str, fingerprint: str, owner: str, lease_ms: int) -> Awaitable[list[Any]]:
        """Claim `key` (absent -> in progress, owned by `owner`, expiring after the lease).

        Returns `[b"claimed"]`, `[b"completed", fingerprint, response]` or
        `[b"in_progress", fingerprint]`. A crashed owner's claim expires with its lease.
        """
        ...

    def idempotency_complete(self, key: str, owner: str, response: bytes, ttl_ms: int) -> Awaitable[int]:
        """In progress -> completed with `response`, kept `ttl_ms`; only by its owner (1 done, 0 not owner)."""
        ...

    def idempotency_release(self, key: str, owner: str) -> Awaitable[int]:
        """Forget an in-progress claim so a retry may run; only by its owner."""
        ...

    def idempotency_renew(self, key: str, owner: str, lease_ms: int) -> Awaitable[int]:
        """Extend the owner's lease while its handler still runs."""
        ...
