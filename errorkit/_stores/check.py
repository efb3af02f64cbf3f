"""The start-up check of stores: reach every store the stages hold before the first request does.

`install(..., check_stores=True)` calls `check_stores()` when the app starts (lifespan) with the
stores of its stages (`auth.keys`, `rate_limit.counters`, `idempotency.records`,
`concurrency.slots`, `quotas.store`). Without it, a wrong `REDIS_URL` starts cleanly and fails
only at the first keyed request, and a flushed Redis answers 503 until someone reads the log.

Each store checks itself (`check()`: `RedisBackend` connects, PINGs and looks for its dataset
markers within its own timeouts; `MemoryBackend` passes), so this is a loop: each distinct store
once (by identity; None skipped), in order, and the first failure raised as it is,
`StoreUnavailable` (unreachable: the URL, redacted, and why) or `StoreDataLost` (no dataset
marker: the command that adopts the Redis). A store of the application's own without a
`check()` is not checked: there is nothing errorkit could ask of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Checked(Protocol):
    """A store that can tell at start-up whether it will serve (`errorkit._stores.protocols.Backend`)."""

    def check(self, *, marker: bool = True) -> Awaitable[None]: ...


async def check_stores(stores: Iterable[object], *, reached: Iterable[object] = ()) -> None:
    """Check each distinct store (None and repeats skipped); the first failure is raised.

    `stores` must hold errorkit's dataset marker: what they keep (keys, claims, quota usage) is
    refused while it may be lost. `reached` are only reached: rate-limit counters and concurrency
    slots start afresh on an emptied Redis, which is no reason to refuse a start-up."""
    marked = [store for store in stores if store is not None]
    checks = {id(store): (store, True) for store in marked}
    for store in reached:
        if store is not None and id(store) not in checks:
            checks[id(store)] = (store, False)

    for store, marker in checks.values():  # (one backend usually serves every stage: it is reached once)
        if isinstance(store, Checked):
            await store.check(marker=marker)


__all__ = ["Checked", "check_stores"]
