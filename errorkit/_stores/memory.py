"""The in-memory store: one process, no Redis (demos, tests, single-process apps).

Each step runs without an `await` inside, so it is atomic within the event loop, and
mirrors the Redis store's Lua script step for step; the contract suite runs over both.
Rate-limit steps are the algorithms' own Python twins, run on this store's cells.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from errorkit._common.principal import APIKeyRecord, check_update
from errorkit._stores.protocols import (
    SETTLED_MS,
    Claim,
    ClaimRequest,
    ClaimState,
    Counted,
    CounterAlgorithm,
    Reserved,
    Slot,
    count_then_claim,
)

_SWEEP_EVERY = 10_000
_CLAIMED = Claim(ClaimState.CLAIMED)


class MemoryBackend:
    """Keeps keys, counters and idempotency records in this process's memory."""

    name = "memory"

    def __init__(self) -> None:
        self._keys: dict[str, APIKeyRecord] = {}
        self._values: dict[Any, tuple[int, Any]] = {}  # key -> (expires_at_us, value)
        self._operations = 0
        self._usage: dict[tuple[str, str], int] = {}  # (workspace, quota group) -> units counted; never expires
        self._holds: dict[tuple[str, str], dict[str, int]] = {}  # (workspace, group) -> token -> lease end (µs)
        self._settled: dict[str, OrderedDict[str, int]] = {}  # workspace -> token -> when settled (µs), oldest first
        self._slots: dict[tuple[str, str], dict[str, int]] = {}  # (identity, bucket) -> token -> lease end (µs)

    def _reset_traffic(self) -> None:
        """Forget what requests left (rate-limit counters, idempotency records, quota usage and holds,
        concurrency slots), keeping the API keys: `errorkit.testing.reset` for a store that outlives a test.
        Here, next to the attributes it must know: a new one that requests write belongs in this list."""
        self._values.clear()
        self._usage.clear()
        self._holds.clear()
        self._settled.clear()
        self._slots.clear()

    # -- cells: expiring values, the state every step reads and writes ---------------------

    def get(self, key: Any, now_us: int) -> Any:
        entry = self._values.get(key)
        return entry[1] if entry is not None and entry[0] > now_us else None

    def set(self, key: Any, value: Any, expires_at_us: int) -> None:
        self._values[key] = (expires_at_us, value)

    def _now_us(self) -> int:
        """The clock, swept now and then so that expired entries go, as Redis expiry would."""
        now = time.time_ns() // 1000
        self._operations += 1

        if self._operations % _SWEEP_EVERY == 0:
            expired = [k for k, (expires, _) in self._values.items() if expires <= now]
            for key in expired:
                del self._values[key]
            for settled in self._settled.values():
                _forget_settled(settled, now)
        return now

    async def initialize(self) -> int:
        """Nothing to mark: this store's data lives and dies with the process (0 markers written)."""
        return 0

    async def check(self, *, marker: bool = True) -> None:
        """Nothing to reach: this process's memory is always there, and never lost while it runs."""
        return None

    # -- API keys -------------------------------------------------------------------------

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        return self._keys.get(key_id)

    def watch_keys(self, on_change: Callable[[str | None], None]) -> None:
        """No watch: lookups here cost a dict read, so callers simply ask every time."""
        return None

    async def put_api_key(self, record: APIKeyRecord) -> None:
        replaced = self._keys.get(record.key_id)
        if replaced is not None and replaced.revoked:  # once revoked, always revoked
            record = replace(record, revoked=True)
        self._keys[record.key_id] = record

    async def update_api_key(self, key_id: str, fields: Mapping[str, str | None]) -> bool:
        """Change these fields of the record in one step (nothing awaited between reading and writing)."""
        check_update(fields)
        record = self._keys.get(key_id)
        if record is None:
            return False

        flat = record.to_fields()
        for name, value in fields.items():
            if value is None:
                flat.pop(name, None)
            else:
                flat[name] = value
        self._keys[key_id] = APIKeyRecord.from_fields(flat)
        return True

    async def list_api_keys(self, workspace_id: str) -> list[APIKeyRecord]:
        return [r for r in self._keys.values() if r.workspace_id == workspace_id]

    # -- rate limiting --------------------------------------------------------------------

    async def count(
        self, algorithm: CounterAlgorithm, identity: str, buckets: Sequence[str], args: Sequence[int], cost: int
    ) -> Counted:
        now = self._now_us()
        keys = [f"rl:{identity}:{bucket}" for bucket in buckets]
        admitted, shadowed, values = algorithm.step(self, keys, args, cost, now)
        return Counted(now, admitted, values, shadowed)

    async def count_and_claim(
        self,
        algorithm: CounterAlgorithm,
        identity: str,
        buckets: Sequence[str],
        args: Sequence[int],
        cost: int,
        claim: ClaimRequest,
    ) -> tuple[Counted, Claim | None]:
        """Count, and claim only if admitted (atomic here: neither step awaits anything)."""
        return await count_then_claim(self, algorithm, identity, buckets, args, cost, claim)

    # -- idempotency ------------------------------------------------------------------------

    async def claim(self, tenant: str, key: str, fingerprint: bytes, owner: str, lease_ms: int) -> Claim:
        now = self._now_us()
        record = self.get(("idem", tenant, key), now)
        if record is None:
            self.set(("idem", tenant, key), {"state": "p", "fp": fingerprint, "owner": owner}, now + lease_ms * 1000)
            return _CLAIMED

        if record["state"] == "c":
            return Claim(ClaimState.COMPLETED, record["fp"], record["resp"])
        if record["state"] == "u":
            return Claim(ClaimState.COMPLETED_UNSTORED, record["fp"])
        return Claim(ClaimState.IN_PROGRESS, record["fp"])

    async def complete(self, tenant: str, key: str, owner: str, response: bytes | None, ttl_ms: int) -> bool:
        now = self._now_us()
        record = self.get(("idem", tenant, key), now)
        if record is None or record.get("owner") != owner:
            return False

        done = (
            {"state": "u", "fp": record["fp"]}
            if response is None
            else {"state": "c", "fp": record["fp"], "resp": response}
        )
        self.set(("idem", tenant, key), done, now + ttl_ms * 1000)
        return True

    async def release(self, tenant: str, key: str, owner: str) -> bool:
        record = self.get(("idem", tenant, key), self._now_us())
        if record is None or record.get("owner") != owner:
            return False
        del self._values["idem", tenant, key]
        return True

    async def renew(self, tenant: str, key: str, owner: str, lease_ms: int) -> bool:
        now = self._now_us()
        record = self.get(("idem", tenant, key), now)
        if record is None or record.get("owner") != owner:
            return False
        self.set(("idem", tenant, key), record, now + lease_ms * 1000)
        return True

    # -- quotas -------------------------------------------------------------------------------

    def _live_holds(self, workspace: str, group: str, now: int) -> dict[str, int]:
        return _live(self._holds, (workspace, group), now)

    def _settle(self, workspace: str, token: str, now: int) -> bool:
        """Remember that `token` settled; False when it had already (the step is not done twice)."""
        settled = _forget_settled(self._settled.setdefault(workspace, OrderedDict()), now)
        if token in settled:
            return False
        settled[token] = now
        return True

    async def reserve(self, workspace: str, group: str, limit: int | None, token: str, lease_ms: int) -> Reserved:
        now = self._now_us()
        holds = self._live_holds(workspace, group, now)
        usage = self._usage.get((workspace, group), 0) + len(holds)
        if limit is not None and usage + 1 > limit:
            return Reserved(False, usage)

        holds[token] = now + lease_ms * 1000
        return Reserved(True, usage + 1)

    async def confirm(self, workspace: str, group: str, token: str) -> int:
        now = self._now_us()
        if self._settle(workspace, token, now):
            self._live_holds(workspace, group, now).pop(token, None)
            self._usage[workspace, group] = self._usage.get((workspace, group), 0) + 1
        return self._usage.get((workspace, group), 0)

    async def cancel(self, workspace: str, group: str, token: str) -> bool:
        return self._live_holds(workspace, group, self._now_us()).pop(token, None) is not None

    async def renew_hold(self, workspace: str, group: str, token: str, lease_ms: int) -> bool:
        now = self._now_us()
        return _renew(self._live_holds(workspace, group, now), token, now, lease_ms)

    async def unreserve(self, workspace: str, group: str, token: str) -> int:
        if self._settle(workspace, token, self._now_us()):
            self._usage[workspace, group] = max(0, self._usage.get((workspace, group), 0) - 1)
        return self._usage.get((workspace, group), 0)

    async def usage(self, workspace: str, groups: Sequence[str]) -> list[int]:
        now = self._now_us()
        return [self._usage.get((workspace, g), 0) + len(self._live_holds(workspace, g, now)) for g in groups]

    async def set_usage(self, workspace: str, group: str, usage: int) -> None:
        self._usage[workspace, group] = max(0, usage)

    # -- concurrency slots --------------------------------------------------------------------

    def _live_slots(self, identity: str, bucket: str, now: int) -> dict[str, int]:
        return _live(self._slots, (identity, bucket), now)

    async def acquire(self, identity: str, bucket: str, limit: int, token: str, lease_ms: int) -> Slot:
        now = self._now_us()
        slots = self._live_slots(identity, bucket, now)
        if len(slots) >= limit:
            return Slot(False, len(slots))
        slots[token] = now + lease_ms * 1000
        return Slot(True, len(slots))

    async def release_slot(self, identity: str, bucket: str, token: str) -> bool:
        slots = self._live_slots(identity, bucket, self._now_us())
        return slots.pop(token, None) is not None

    async def renew_slot(self, identity: str, bucket: str, token: str, lease_ms: int) -> bool:
        now = self._now_us()
        return _renew(self._live_slots(identity, bucket, now), token, now, lease_ms)


def _forget_settled(settled: OrderedDict[str, int], now: int) -> OrderedDict[str, int]:
    """Drop the tokens settled longer ago than `SETTLED_MS`: they are kept in the order they settled,
    so this stops at the first one kept (each token is dropped once: no scan of the rest)."""
    while settled and next(iter(settled.values())) <= now - SETTLED_MS * 1000:
        settled.popitem(last=False)
    return settled


def _live(leases: dict[tuple[str, str], dict[str, int]], owner: tuple[str, str], now: int) -> dict[str, int]:
    """The tokens of `owner` whose lease has not ended (token -> lease end, µs); lapsed ones are dropped."""
    tokens = leases.setdefault(owner, {})
    lapsed = [t for t, ends in tokens.items() if ends <= now]
    for token in lapsed:
        del tokens[token]
    return tokens


def _renew(tokens: dict[str, int], token: str, now: int, lease_ms: int) -> bool:
    """Extend a live token's lease (False: it had lapsed, and is not taken again)."""
    if token not in tokens:
        return False
    tokens[token] = now + lease_ms * 1000
    return True
