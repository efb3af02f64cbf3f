"""How the auth stage remembers the key records it looked up (`KeyCache` configures it).

Records are served from memory while the store's change feed is live and has heard nothing
of them (Redis pushes every change to a key record: a revocation reaches every worker within
a round trip), or for `KeyCache.ttl` seconds without a feed; while the store cannot answer,
a record verified in the last `stale_for` seconds may stand in. Unknown key ids are never
kept, so guessing cannot fill the memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.authentication import AuthCredentials

from errorkit._common.principal import APIKeyRecord, Principal
from errorkit._stores.protocols import KeyStore, KeyWatchLike, WatchesKeys


@dataclass(frozen=True, slots=True)
class KeyCache:
    """How this process remembers key records it looked up (bounded: `size` entries, LRU).

    - `track`: with a store that pushes changes (Redis: `RedisBackend.watch_keys`), a
      record is served from memory until the store says it changed, so a revocation or
      a disabled workspace reaches every worker within a round trip. While that feed is
      down (starting, reconnecting, a failover) nothing is trusted from it and `ttl`
      applies instead;
    - `ttl`: seconds a record is served from memory without asking the store when it
      is not tracked (0, the default, asks on every request, so a revocation applies at
      once; with a ttl it takes up to that long in each worker);
    - `stale_for`: seconds a record verified earlier may still be used while the store is
      unavailable, when the auth stage fails open (its default).
    The presented secret is checked against the record's hash on every request either
    way; unknown key ids are never cached, so guessing cannot fill the cache.
    """

    ttl: float = 0.0
    size: int = 10_000
    stale_for: float = 60.0
    track: bool = True

    def __post_init__(self) -> None:
        if self.ttl < 0 or self.stale_for < 0 or self.size < 1:
            raise ValueError(f"KeyCache needs ttl >= 0, stale_for >= 0 and size >= 1, not {self}")


@dataclass(slots=True)
class Known:
    """A record as this process last saw it, with the principal it stands for."""

    record: APIKeyRecord
    principal: Principal
    credentials: AuthCredentials
    fetched_at: float
    trusted_in: int = -1  # the key watch's epoch this record may be served in without asking
    warned: bool = False  # an unreadable record: its warning was logged


class KnownKeys:
    """This process's memory of key records, bounded (`cache.size`, least recently used goes first)."""

    def __init__(self, keys: KeyStore, cache: KeyCache) -> None:
        self.keys = keys
        self.cache = cache
        self.known: OrderedDict[str, Known] = OrderedDict()
        self.watch: KeyWatchLike | None = None
        self._watch_asked = False

    def served(self, key_id: str) -> Known | None:
        """The key's record from memory, when it may be served without asking the store: tracked
        (the change feed is live and has heard nothing of it), or fresh (`cache.ttl`)."""
        known = self.known.get(key_id)
        if known is None:
            return None

        watch = self.watch
        if watch is not None and watch.live and known.trusted_in == watch.epoch:
            return known
        if time.monotonic() - known.fetched_at < self.cache.ttl:
            return known
        return None

    async def lookup(self, key_id: str) -> Known | None:
        """The key's record: from memory while it may be served (`served`), else from the store."""
        served = self.served(key_id)
        if served is not None:
            return served

        known = self.known.get(key_id)
        watch = self.watch
        if watch is None and self.cache.track and not self._watch_asked:
            self._watch_asked = True  # once: a store without a feed has no `watch_keys`, or gives None
            if isinstance(self.keys, WatchesKeys):
                watch = self.watch = self.keys.watch_keys(self.forget)
        epoch = -1
        changes = 0
        if watch is not None:
            watch.start()  # no-op while running
            epoch = watch.epoch if watch.live else -1
            changes = watch.changes

        record = await self.keys.get_api_key(key_id)
        now = time.monotonic()
        if record is None:  # unknown ids are not cached: guessing cannot fill the cache
            self.known.pop(key_id, None)
            return None

        if known is None or known.record != record:
            principal = record.principal()
            known = Known(record, principal, AuthCredentials(sorted(principal.scopes)), now)
        else:
            known.fetched_at = now
        # trusted only if the feed was live throughout the fetch and heard no change meanwhile
        unchanged = watch is not None and watch.live and watch.epoch == epoch and watch.changes == changes
        known.trusted_in = epoch if unchanged else -1

        self.known[key_id] = known
        self.known.move_to_end(key_id)
        if len(self.known) > self.cache.size:
            self.known.popitem(last=False)
        return known

    def forget(self, key_id: str | None) -> None:
        """The store says this key changed (None: anything may have): ask it next time."""
        if key_id is None:
            for known in self.known.values():
                known.trusted_in = -1
            return
        changed = self.known.get(key_id)
        if changed is not None:
            changed.trusted_in = -1

    def stale(self, key_id: str) -> Known | None:
        """A record verified in the last `cache.stale_for` seconds (for when the store cannot answer)."""
        known = self.known.get(key_id)
        if known is None or time.monotonic() - known.fetched_at > self.cache.stale_for:
            return None
        return known
