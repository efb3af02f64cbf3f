"""The in-memory backend: one process, no Redis (the demo, tests, single-process apps).

Each step is the Python twin of a Lua script in `errorkit.backends.redis`; one
behavioural test suite runs over both to keep them equal. No `await` happens inside a
step, so each is atomic within the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from errorkit.auth.keys import ApiKeyRecord

_SWEEP_EVERY = 10_000


class MemoryBackend:
    """Keeps keys, counters and idempotency records in this process's memory."""

    name = "memory"

    def __init__(self) -> None:
        self._keys: dict[str, ApiKeyRecord] = {}
        self._values: dict[str, tuple[int, Any]] = {}  # key -> (expires_at_us, value)
        self._operations = 0

    def _now_us(self) -> int:
        return time.time_ns() // 1000

    def _get(self, key: str, now: int) -> Any:
        entry = self._values.get(key)
        return entry[1] if entry is not None and entry[0] > now else None

    def _set(self, key: str, value: Any, expires_at_us: int) -> None:
        self._values[key] = (expires_at_us, value)

    def _sweep(self, now: int) -> None:
        """Drop expired entries now and then, as Redis expiry would."""
        self._operations += 1
        if self._operations % _SWEEP_EVERY == 0:
            for key in [k for k, (expires, _) in self._values.items() if expires <= now]:
                del self._values[key]

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    async def put_api_key(self, record: ApiKeyRecord) -> None:
        self._keys[record.key_id] = record

    async def list_api_keys(self, workspace_id: str) -> list[ApiKeyRecord]:
        return [r for r in self._keys.values() if r.workspace_id == workspace_id]

    async def rate_limit(self, algorithm: str, keys: Sequence[str], args: Sequence[int], cost: int) -> list[int]:
        now = self._now_us()
        self._sweep(now)
        step = self._gcra if algorithm == "gcra" else self._fixed
        return step(keys, args, cost, now)

    def _gcra(self, keys: Sequence[str], args: Sequence[int], cost: int, now: int) -> list[int]:
        admitted, old, new = True, [], []
        for i, key in enumerate(keys):
            period, limit = args[2 * i], args[2 * i + 1]
            tat = max(self._get(key, now) or now, now)
            new.append(math.ceil(tat + cost * period / limit))
            admitted = admitted and new[i] - period <= now
            old.append(tat)
        if not admitted:
            return [now, 0, *old]
        for key, tat in zip(keys, new, strict=True):
            self._set(key, tat, tat)
        return [now, 1, *new]

    def _fixed(self, keys: Sequence[str], args: Sequence[int], cost: int, now: int) -> list[int]:
        admitted, windows, counts = True, [], []
        for i, key in enumerate(keys):
            period, limit = args[2 * i], args[2 * i + 1]
            windows.append(now // period)
            state = self._get(key, now)
            count = state[1] if state is not None and state[0] == windows[i] else 0
            admitted = admitted and count + cost <= limit
            counts.append(count)
        if not admitted:
            return [now, 0, *counts]
        counts = [c + cost for c in counts]
        for i, key in enumerate(keys):
            self._set(key, (windows[i], counts[i]), (windows[i] + 1) * args[2 * i])
        return [now, 1, *counts]

    async def idempotency_claim(self, key: str, fingerprint: str, owner: str, lease_ms: int) -> list[Any]:
        now = self._now_us()
        self._sweep(now)
        record = self._get(key, now)
        if record is not None and record["state"] == b"c":
            return [b"completed", record["fp"], record["resp"]]
        if record is not None:
            return [b"in_progress", record["fp"]]
        self._set(key, {"state": b"p", "fp": fingerprint.encode(), "owner": owner}, now + lease_ms * 1000)
        return [b"claimed"]

    async def idempotency_complete(self, key: str, owner: str, response: bytes, ttl_ms: int) -> int:
        now = self._now_us()
        record = self._get(key, now)
        if record is None or record.get("owner") != owner:
            return 0
        self._set(key, {"state": b"c", "fp": record["fp"], "resp": response}, now + ttl_ms * 1000)
        return 1

    async def idempotency_release(self, key: str, owner: str) -> int:
        record = self._get(key, self._now_us())
        if record is None or record.get("owner") != owner:
            return 0
        del self._values[key]
        return 1

    async def idempotency_renew(self, key: str, owner: str, lease_ms: int) -> int:
        now = self._now_us()
        record = self._get(key, now)
        if record is None or record.get("owner") != owner:
            return 0
        self._set(key, record, now + lease_ms * 1000)
        return 1
