"""What the stages need of a store, split by concern, with typed results.

A store only stores: it owns the layout of its keys (prefix, hash tag) and runs each
step atomically (one Lua script on Redis, a step with no `await` inside in memory).
Stages pass logical identities (a key id, a workspace, a tenant and an idempotency key)
and get small typed results back (named tuples: they are built on every request).
`MemoryBackend` and `RedisBackend` implement every protocol; one contract suite
(`tests/test_store_contract.py`) runs over both. Optional capabilities are protocols of their
own, checked with `isinstance` (`WatchesKeys`, `CountsAndClaims`, `Observed`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from errorkit._common.exceptions import StoreDataLost
from errorkit._common.principal import APIKeyRecord
from errorkit._observe.observer import Observer


class KeyWatchLike(Protocol):
    """What a cache needs of a store's change feed (`errorkit._stores.redis.tracking.KeyWatch`)."""

    live: bool
    epoch: int
    changes: int

    def start(self) -> None: ...


class KeyStore(Protocol):
    """API-key records by key id, and the keys of each workspace.

    `get_api_key` gives None for a key the store does not hold, and raises `StoreDataLost`
    when the store cannot tell (it lost its data), so a lost store is never a wrong key. A
    record it holds but cannot read comes back as `APIKeyRecord.unreadable_record(...)`.

    A stored record changes only in atomic steps: `put_api_key` writes a whole record,
    `update_api_key` some of its fields and nothing else (never a read and a write back),
    so concurrent changes to different fields all land. A revocation wins over everything:
    nothing clears `revoked`, and a record put over a revoked one stays revoked.
    """

    name: str

    def get_api_key(self, key_id: str) -> Awaitable[APIKeyRecord | None]:
        """The record of `key_id` (the token's part before the dot); None when the store holds no such
        key. `StoreDataLost` when the store cannot tell (it lost its data); a record it holds but
        cannot read comes back as `APIKeyRecord.unreadable_record(...)`, and is refused as `invalid_api_key`."""
        ...

    async def put_api_key(self, record: APIKeyRecord) -> None:
        """Write the whole record (it stays revoked if the one it replaces was)."""
        ...

    async def update_api_key(self, key_id: str, fields: Mapping[str, str | None]) -> bool:
        """Set these fields of an existing record in one atomic step (None removes one); False,
        changing nothing, when there is no such record.

        Fields are named and written as `APIKeyRecord.to_fields()` writes them. A change no record
        may take is a `ValueError`: one to a field that is fixed (`key_id`, `secret_hash`,
        `workspace_id`), `revoked` set to anything but "1", or a value no record can hold.
        """
        ...

    async def list_api_keys(self, workspace_id: str) -> list[APIKeyRecord]:
        """Every record of the workspace's keys, revoked and expired ones included (what
        `errorkit keys list` shows); unreadable records as `get_api_key` gives them."""
        ...


class Cells(Protocol):
    """Expiring values, as a rate-limit algorithm's Python twin sees the memory store."""

    def get(self, key: str, now_us: int) -> Any: ...

    def set(self, key: str, value: Any, expires_at_us: int) -> None: ...


class CounterAlgorithm(Protocol):
    """A rate-limit algorithm as a store runs it: a Lua script and its Python twin.

    Both take, per limit, `(period_us, limit)` in `args` and a `cost`, charge every limit
    or none, and give per limit the algorithm's state value (new when admitted, unchanged
    when refused). A negative limit is a shadow limit: it never refuses, is charged only
    when it would have admitted, and is reported in `shadowed` when it would have refused.
    The header arithmetic on those values lives with the algorithm too.
    """

    name: str
    lua: str

    def step(
        self, cells: Cells, keys: Sequence[str], args: Sequence[int], cost: int, now_us: int
    ) -> tuple[bool, int, list[int]]: ...


# (built field by field through `tuple.__new__` in `errorkit._stores.redis.backend._counted`:
# a field added here goes there too)
class Counted(NamedTuple):
    """A rate-limit decision: the store's clock, whether the cost was charged, the state per limit,
    and the shadow limits that would have refused (bit `i` for limit `i`)."""

    now_us: int
    admitted: bool
    values: Sequence[int]
    shadowed: int = 0


class RateLimitStore(Protocol):
    """Counters per identity and bucket, charged by an algorithm in one atomic step."""

    name: str

    def count(
        self,
        algorithm: CounterAlgorithm,
        identity: str,
        buckets: Sequence[str],
        args: Sequence[int],
        cost: int,
    ) -> Awaitable[Counted]:
        """Charge `cost` to every bucket of `identity`, all or nothing, on the store's own clock."""
        ...


class ClaimState(enum.Enum):
    """What `IdempotencyStore.claim` found."""

    CLAIMED = "claimed"  # nobody had the key: the caller owns it now and runs the request
    IN_PROGRESS = "in_progress"  # another request holds it
    COMPLETED = "completed"  # done; `response` is what to replay
    COMPLETED_UNSTORED = "completed_unstored"  # done, but its response was too big to keep


# (built field by field through `tuple.__new__` in `errorkit._stores.redis.backend._claim`:
# a field added here goes there too)
class Claim(NamedTuple):
    """The outcome of a claim; `fingerprint` and `response` describe the existing record."""

    state: ClaimState
    fingerprint: bytes = b""
    response: bytes = b""


class IdempotencyStore(Protocol):
    """Idempotency records per tenant and key: claim, then complete or release (owner only).

    `claim` raises `StoreDataLost` instead of claiming when the store lost its data (the
    key may have been used before the loss), so a lost store never runs a request twice.
    """

    name: str

    def claim(self, tenant: str, key: str, fingerprint: bytes, owner: str, lease_ms: int) -> Awaitable[Claim]:
        """Absent -> in progress (owned by `owner`, expiring after the lease); else what is there.

        `fingerprint` identifies the request (at most 255 bytes; the stage sends 16).
        """
        ...

    def complete(self, tenant: str, key: str, owner: str, response: bytes | None, ttl_ms: int) -> Awaitable[bool]:
        """In progress -> completed with `response` (None: ran, not replayable), kept `ttl_ms`; owner only."""
        ...

    def release(self, tenant: str, key: str, owner: str) -> Awaitable[bool]:
        """Forget an in-progress claim so a retry may run; owner only."""
        ...

    def renew(self, tenant: str, key: str, owner: str, lease_ms: int) -> Awaitable[bool]:
        """Extend the owner's lease while its handler still runs."""
        ...


class Reserved(NamedTuple):
    """A quota reservation: whether the unit fits, and the usage with it (or as found, when refused)."""

    admitted: bool
    usage: int


#: How long a store remembers that a token settled (confirmed, or a deletion counted), so that the
#: same step sent again (its first outcome unknown: the connection dropped) changes nothing. Steps
#: are sent again for at most `SETTLE_RETRY_MS`, well inside it.
SETTLED_MS = 3_600_000
SETTLE_RETRY_MS = 600_000


class QuotaStore(Protocol):
    """Usage per workspace and quota group: units counted (they mirror resources: no expiry) and units
    held, each under a token with a lease, by creations still running.

    A creation `reserve`s a unit (held), then `confirm`s it when its resource exists, or `cancel`s
    it; a hold neither confirmed nor renewed lapses after its lease (the worker died), so usage never
    counts a resource that was not created for longer than the lease. `confirm` and `unreserve` act
    once per token (the same step sent twice changes nothing), `cancel` and `renew_hold` are
    idempotent by nature. `reserve`, `confirm`, `unreserve` and `usage` raise `StoreDataLost` for a
    group with no count when the store lost its data (a reset counter would let a workspace past its
    plan), as an idempotency claim does; `set_usage` is the repair, and its count is trusted again.
    """

    name: str

    def reserve(self, workspace: str, group: str, limit: int | None, token: str, lease_ms: int) -> Awaitable[Reserved]:
        """counted + held + 1 <= limit (None: unlimited) -> hold one unit as `token` for `lease_ms`."""
        ...

    def confirm(self, workspace: str, group: str, token: str) -> Awaitable[int]:
        """The hold becomes a counted unit (also after it lapsed: the resource exists); returns the units counted."""
        ...

    def cancel(self, workspace: str, group: str, token: str) -> Awaitable[bool]:
        """Give a hold back (False: it had lapsed, or was never taken)."""
        ...

    def renew_hold(self, workspace: str, group: str, token: str, lease_ms: int) -> Awaitable[bool]:
        """Extend a hold's lease (False: it had lapsed, and is not taken again)."""
        ...

    def unreserve(self, workspace: str, group: str, token: str) -> Awaitable[int]:
        """A resource was deleted: counted -= 1, never below 0, once per `token`; returns the units counted."""
        ...

    def usage(self, workspace: str, groups: Sequence[str]) -> Awaitable[list[int]]:
        """The usage of each group, counted and held (0 for one never used)."""
        ...

    async def set_usage(self, workspace: str, group: str, usage: int) -> None:
        """Overwrite one group's counted usage (from the application's database, to repair drift)."""
        ...


class Slot(NamedTuple):
    """A concurrency slot request: whether a slot was taken, and how many are held (this one included)."""

    acquired: bool
    in_flight: int


class ConcurrencyStore(Protocol):
    """Leased slots per identity and bucket: at most `limit` held at once; a lapsed lease frees its slot."""

    name: str

    def acquire(self, identity: str, bucket: str, limit: int, token: str, lease_ms: int) -> Awaitable[Slot]:
        """Take a slot named `token` for `lease_ms` if fewer than `limit` live ones are held (by the store's clock)."""
        ...

    def release_slot(self, identity: str, bucket: str, token: str) -> Awaitable[bool]:
        """Give the slot back (False: it had lapsed already)."""
        ...

    def renew_slot(self, identity: str, bucket: str, token: str, lease_ms: int) -> Awaitable[bool]:
        """Extend a held slot's lease (False: it had lapsed, and is not taken again)."""
        ...


# (built field by field through `tuple.__new__` in `errorkit._stages.idempotency`:
# a field added here goes there too)
class ClaimRequest(NamedTuple):
    """An idempotency claim to make in the same step as a rate-limit charge."""

    tenant: str
    key: str
    fingerprint: bytes
    owner: str
    lease_ms: int


@runtime_checkable
class WatchesKeys(Protocol):
    """A key store that pushes changes to key records (Redis), so records can be served from memory
    until one changes."""

    def watch_keys(self, on_change: Callable[[str | None], None]) -> KeyWatchLike | None:
        """A live feed of changed key ids (None: forget all), or None if the store has none."""
        ...


@runtime_checkable
class CountsAndClaims(Protocol):
    """A store that can count a rate limit and make an idempotency claim in one atomic step, so a
    first-time idempotent request costs one command instead of two (`install()` then runs the
    limiter's count inside the claim)."""

    def count_and_claim(
        self,
        algorithm: CounterAlgorithm,
        identity: str,
        buckets: Sequence[str],
        args: Sequence[int],
        cost: int,
        claim: ClaimRequest,
    ) -> Awaitable[tuple[Counted, Claim | None]]:
        """`count`, then `claim` only if admitted, as one atomic step (claim None: refused, nothing claimed)."""
        ...


@runtime_checkable
class Observed(Protocol):
    """A store that reports its connections' replies, failures and state to an observer (Redis)."""

    def observe(self, observer: Observer | None) -> None:
        """Report to `observer` from now on (None: stop)."""
        ...


class Backend(
    KeyStore, RateLimitStore, IdempotencyStore, QuotaStore, ConcurrencyStore, WatchesKeys, CountsAndClaims, Protocol
):
    """A store for every concern (what `backend_from_env()` returns)."""

    async def initialize(self) -> int:
        """Mark the store as holding errorkit's data (so its loss is told from unknown keys); how many marks."""
        ...

    async def check(self, *, marker: bool = True) -> None:
        """Reach the store within its timeouts: `StoreUnavailable` (unreachable) or, with `marker`,
        `StoreDataLost` (no dataset marker) naming the store and the remedy, as a first request would
        find (`check_stores`)."""
        ...


async def count_then_claim(
    store: Backend,
    algorithm: CounterAlgorithm,
    identity: str,
    buckets: Sequence[str],
    args: Sequence[int],
    cost: int,
    claim: ClaimRequest,
) -> tuple[Counted, Claim | None]:
    """`count_and_claim` as two steps: count, then claim only if admitted (for a store, or slots, without one)."""
    counted = await store.count(algorithm, identity, buckets, args, cost)
    if not counted.admitted:
        return counted, None
    try:
        return counted, await store.claim(claim.tenant, claim.key, claim.fingerprint, claim.owner, claim.lease_ms)
    except StoreDataLost as lost:
        lost.counted = counted  # (as one step: the count stands)
        raise
