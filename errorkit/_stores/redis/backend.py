"""The Redis store: state shared by every worker process, one atomic command per step.

This store owns the key layout. Every key is `<prefix>:<kind>:{<tag>}...`, the hash tag
being the identity a step works on, so each step touches one slot (Redis Cluster-safe):

| kind | key | holds |
|---|---|---|
| API key | `<prefix>:apikey:{<key id>}` | hash of the record's fields (the secret's SHA-256, never the secret) |
| workspace index | `<prefix>:workspace-keys:{<workspace>}` | set of key ids |
| rate limit | `<prefix>:rl:{<identity>}:<bucket>` | the algorithm's state (GCRA: a timestamp; fixed: window, count) |
| idempotency | `<prefix>:ik:{<tenant>}:<BLAKE2b-128 of the key>` | one string: state, fingerprint, owner or response |
| quota usage | `<prefix>:quota:{ws:<workspace>}` | hash: quota group -> units counted (no expiry) |
| quota holds | `<prefix>:quota-held:{ws:<workspace>}:<group>` | sorted set: token -> lease end (ms, Redis's clock) |
| quota settled | `<prefix>:quota-settled:{ws:<workspace>}` | sorted set: token -> when counted or deleted (1 h) |
| concurrency | `<prefix>:cc:{<identity>}:<bucket>` | sorted set: slot token -> lease end (ms, Redis's clock) |
| dataset marker | `<prefix>:dataset`; on Cluster `<prefix>:dataset:{<tag>}` in each slot | time first written |

A rate-limit bucket is `*` (the default and plan limits) or the route entry, then `:fixed` for a
fixed window, then `:<limit>/<period>`. A hash tag is the identity with `%`, `{` and `}` written
as `%25`, `%7B` and `%7D` (one identity, one tag: `acme{eu}` and `acme(eu)` never share a counter).

The dataset marker tells a Redis that lost errorkit's data (restarted without persistence,
flushed, evicting) from one that simply does not know a key: a key lookup or an idempotency
claim that finds neither the record nor its slot's marker raises `StoreDataLost` (a 503)
instead of answering 401 or running a request a second time. Registering a key writes the
marker; `initialize()` writes it for stores that hold no keys (idempotency on its own), and
so does `errorkit store init --url ...` from a shell; every `StoreDataLost` names that remedy
with this store's URL (redacted). `check()` tells at start-up what a first request would
find: Redis unreachable (`StoreUnavailable`) or a marker missing (`StoreDataLost`).
"""

from __future__ import annotations

import abc
import asyncio
import binascii
import functools
import hashlib
import logging
import os
import shlex
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any

from errorkit._common.background import Background, keep_trying
from errorkit._common.exceptions import RedisError, StoreDataLost, StoreUnavailable
from errorkit._common.principal import APIKeyRecord, check_update
from errorkit._observe.log_context import log_extra
from errorkit._observe.observer import Observer
from errorkit._stores.protocols import (
    SETTLE_RETRY_MS,
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
from errorkit._stores.redis.connection import EvalshaLayout, Prepared, Redis, Script, Timeouts
from errorkit._stores.redis.topology import SLOTS, ClusterClient, SentinelClient, connect, hash_slot, slot_tags
from errorkit._stores.redis.tracking import KeyWatch

logger = logging.getLogger("errorkit.store")


def _script(name: str) -> Script:
    return Script.from_file("errorkit._stores.redis.lua", name)


_PUT_KEY = _script("apikey_put.lua")
_UPDATE_KEY = _script("apikey_update.lua")
_CLAIM = _script("idempotency_claim.lua")
_LIMIT_THEN_CLAIM = (
    resources.files("errorkit._stores.redis.lua").joinpath("limit_then_claim.lua").read_text(encoding="utf-8")
)
_COMPLETE = _script("idempotency_complete.lua")
_RELEASE = _script("idempotency_release.lua")
_COMPLETING = EvalshaLayout(_COMPLETE, (), 1, 3, ())  # (the record; owner, ttl_ms, response)
_RENEW = _script("idempotency_renew.lua")
_RESERVE = _script("quota_reserve.lua")
_CONFIRM = _script("quota_confirm.lua")
_UNRESERVE = _script("quota_unreserve.lua")
_USAGE = _script("quota_usage.lua")
_ACQUIRE = _script("slot_acquire.lua")
_RENEW_SLOT = _script("slot_renew.lua")
_CLAIMED = Claim(ClaimState.CLAIMED)
_CLAIM_STATES = {
    b"completed": ClaimState.COMPLETED,
    b"unstored": ClaimState.COMPLETED_UNSTORED,
    b"in_progress": ClaimState.IN_PROGRESS,
}


# The converters that can find a lost dataset take the store's remedy first (bound once per store
# with functools.partial), so the message names the command to run against this very Redis.


# A NamedTuple's own constructor is a Python function: built through `tuple.__new__` instead, a
# reply's result costs one frame fewer (0.27 µs against 0.42 µs, `python -m timeit`)
_new = tuple.__new__


def _claim(remedy: str, reply: list[Any]) -> Claim:
    if reply[0] == b"claimed":
        return _CLAIMED
    if reply[0] == b"lost":
        raise StoreDataLost(_lost("an idempotency record", remedy))
    return _new(Claim, (_CLAIM_STATES[reply[0]], reply[1], reply[2] if len(reply) > 2 else b""))


def _lost(what: str, remedy: str) -> str:
    return (
        f"Redis holds neither {what} nor errorkit's dataset marker: it lost errorkit's data (a restart "
        "without persistence, FLUSHALL, eviction) or was never initialized; each stage answers as its "
        "failure policy says until the data is restored or keys are registered again, "
        f"or until {remedy} adopts this Redis as it is"
    )


_MARKERS_AT_ONCE = 256
#: The limiter's packed count commands kept per store (one per identity, policy and cost; about 300 bytes each).
COUNTS_KEPT = 10_000
#: What every stage needs of Redis besides reading: running a script that writes.
_WRITE_CHECK = Script("return redis.call('SET', KEYS[1], '1', 'PX', 1000)")
_SAFE_EVICTION = {b"noeviction", b"volatile-lru", b"volatile-lfu", b"volatile-random", b"volatile-ttl"}


def _counted(reply: list[int]) -> Counted:
    return _new(Counted, (reply[0], reply[1] == 1, reply[3:], reply[2]))


def _reserved(remedy: str, reply: list[Any]) -> Reserved:
    if reply[0] == b"lost":
        raise StoreDataLost(_lost("a workspace's quota usage", remedy))
    return Reserved(reply[0] == 1, reply[1])


def _unreserved(remedy: str, reply: Any) -> int:
    if isinstance(reply, list):
        raise StoreDataLost(_lost("a workspace's quota usage", remedy))
    return int(reply)


def _usage(remedy: str, reply: list[Any]) -> list[int]:
    if reply and reply[0] == b"lost":
        raise StoreDataLost(_lost("a workspace's quota usage", remedy))
    return [int(value) for value in reply]


def _slot(reply: list[int]) -> Slot:
    return Slot(reply[0] == 1, reply[1])


def _counted_and_claimed(remedy: str, reply: list[Any]) -> tuple[Counted, Claim | None]:
    counted = _counted(reply[0])
    if len(reply) == 1:
        return counted, None
    try:
        return counted, _claim(remedy, reply[1])
    except StoreDataLost as lost:
        lost.counted = counted  # (the limit did count: its headers and its refusal still stand)
        raise


def _reason(error: StoreUnavailable, timeouts: Timeouts) -> str:
    """Why a connection failed, in a few words: the socket's own ("Connection refused"), the connect
    deadline, Redis's refusal (WRONGPASS), or the failure's message when it says nothing more precise."""
    cause = error.__cause__ or error.__context__  # (the connection raises its own error `from None`)
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeouts.connect:g} s"
    if isinstance(cause, socket.gaierror):  # the host name: "Name or service not known"
        return f"cannot resolve the host: {cause.strerror}"
    if isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError) and cause.errno and cause.errno > 0:
        return os.strerror(cause.errno)  # asyncio's own text names the address again: the system's is shorter
    if isinstance(cause, OSError | RedisError | StoreUnavailable):
        return str(cause)
    return str(error)


_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64's alphabet to base64url's


@functools.lru_cache(maxsize=4096)
def _record_name(prefix: str, tenant: str, key: str) -> str:
    """An idempotency record's key: 128 bits of BLAKE2b of the client's key, base64url (22 characters).

    Cached, so the claim and the completion of one request name it once.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    # `base64.urlsafe_b64encode` spelled out: the same characters, without its two Python calls
    name = binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).rstrip(b"=")
    return f"{prefix}:ik:{{{_tag(tenant)}}}:{name.decode()}"


def _tag(value: str) -> str:
    """An identity as a hash tag: braces inside it would move the tag, so `%`, `{` and `}` are escaped
    as `%25`, `%7B` and `%7D` (injective: two identities never share a tag; one without them is kept)."""
    if "{" not in value and "}" not in value and "%" not in value:
        return value
    return value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def _untag(tag: str) -> str:
    """The identity a hash tag was made from."""
    return tag.replace("%7D", "}").replace("%7B", "{").replace("%25", "%")


def _remedy(url: str, prefix: str) -> str:
    """The one command that adopts the Redis at `url` (redacted) for `prefix`, and its Python twin."""
    command = f"errorkit store init --url {shlex.quote(url)}"
    if prefix != "errorkit":
        command += f" --prefix {shlex.quote(prefix)}"
    password = " (with the password in place of ***)" if "***" in url else ""
    return f"`{command}`{password} or `await store.initialize()`"


def _key_record(key_id: str, flat: list[bytes]) -> APIKeyRecord:
    """The record in an HGETALL reply, or an unreadable one: a damaged record never raises here,
    so it cannot fail a request (401 `invalid_api_key`) or hide a workspace's other keys."""
    it = iter(flat)
    try:
        fields = {name.decode(): value.decode() for name, value in zip(it, it, strict=True)}
    except UnicodeDecodeError:
        return APIKeyRecord.unreadable_record(key_id, "a field is not UTF-8 text")

    try:
        return APIKeyRecord.from_fields(fields)
    except ValueError as exc:
        return APIKeyRecord.unreadable_record(key_id, str(exc), fields.get("workspace_id", ""))


class RedisBackend:
    """Stores keys, counters and idempotency records in Redis.

    `url` is any form of [Redis URL](https://errorkit.github.io/errorkit/guides/redis/#redis-urls)
    errorkit reads (one server over TCP, TLS or a unix socket, Sentinel, Cluster); a malformed URL
    or an unknown option is a `ValueError` here, never on the first request. `timeout` is the
    per-command deadline in seconds, or a `Timeouts` for every deadline; `prefix` starts every key
    this store writes (two apps sharing a Redis each take their own). `connection` shares another
    `RedisBackend`'s connection (its `redis` attribute) instead of opening one; errorkit runs on
    its own Redis client, not on redis-py's.
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
                f"connection must be errorkit's own Redis client (errorkit._stores.redis.topology.connect(url)), "
                f"not {type(connection).__module__}.{type(connection).__qualname__}: errorkit does not run on redis-py"
            )

        self.redis = connection if connection is not None else connect(url, timeout=timeout)
        self.prefix = prefix
        self._scripts: dict[str, Script] = {}
        self._counts: dict[tuple[CounterAlgorithm, str, Sequence[str], Sequence[int], int], Prepared] = {}
        self._claims: dict[tuple[CounterAlgorithm, str, Sequence[str], Sequence[int], int, int], EvalshaLayout] = {}
        self._tasks = Background()
        self._clustered = isinstance(self.redis, ClusterClient)
        self._watches: list[KeyWatch] = []
        self._seen_markers: set[str] = set()
        self._initialized = False

        self.remedy = _remedy(self.redis.url, prefix)
        self._to_claim = functools.partial(_claim, self.remedy)
        self._to_reserved = functools.partial(_reserved, self.remedy)
        self._to_unreserved = functools.partial(_unreserved, self.remedy)
        self._to_usage = functools.partial(_usage, self.remedy)
        self._to_counted_and_claimed = functools.partial(_counted_and_claimed, self.remedy)

    # -- the dataset marker -------------------------------------------------------------------

    def _marker(self, key: str) -> str:
        """The dataset marker of `key`'s slot (a single marker off Cluster)."""
        if not self._clustered:
            return f"{self.prefix}:dataset"
        return f"{self.prefix}:dataset:{{{slot_tags()[hash_slot(key)]}}}"

    def _markers(self) -> list[str]:
        """Every dataset marker of this store: one, or one per slot on Cluster."""
        if self._clustered:
            return [f"{self.prefix}:dataset:{{{tag}}}" for tag in slot_tags()]
        return [f"{self.prefix}:dataset"]

    async def _each_marker(self, *command: str) -> list[Any]:
        """`command marker` for every marker, a batch at a time (each batch well inside the deadline)."""
        markers = self._markers()
        replies: list[Any] = []
        for start in range(0, len(markers), _MARKERS_AT_ONCE):
            batch = markers[start : start + _MARKERS_AT_ONCE]
            replies += await asyncio.gather(*(self.redis.execute(command[0], m, *command[1:]) for m in batch))
        return replies

    async def initialize(self) -> int:
        """Mark this Redis as holding errorkit's data; returns how many markers were missing.

        Registering a key does this by itself. Call it once when a deployment first uses a
        Redis for idempotency alone, or to adopt a Redis that lost its data as it is now
        (its idempotency records are gone: requests repeated from before will run again);
        `errorkit store init --url ...` does the same from a shell.
        Also warns when Redis may evict errorkit's keys (`maxmemory-policy` allkeys-*).
        """
        written = await self._each_marker("SET", str(int(time.time())), "NX")
        created = sum(reply is not None for reply in written)

        if created:
            written_markers = "1 dataset marker" if created == 1 else f"{created} dataset markers"
            logger.warning(
                "marked %s as holding errorkit's data (%s written)", self, written_markers, extra=log_extra()
            )

        await self._check_eviction()
        self._seen_markers.update(self._markers())
        self._initialized = True
        return created

    async def reach(self) -> None:
        """Connect and PING, within this store's timeouts: `StoreUnavailable` naming the URL (redacted)
        and why not (`CLUSTER SLOTS` first on Cluster, the sentinels first on Sentinel)."""
        try:
            await self.redis.execute("PING")
        except (StoreUnavailable, RedisError) as exc:
            raise self._unreachable(exc) from None

    async def check(self, *, marker: bool = True) -> None:
        """What a first request would find, told at start-up: `StoreUnavailable` when Redis cannot be
        reached (naming the URL, its password hidden, and why) or will not run errorkit's scripts and
        writes (an ACL without them, a read-only replica), and with `marker`, `StoreDataLost` naming
        the remedy when a dataset marker is missing.

        Writes one key of its own (`<prefix>:check`, gone after a second) through a script; on Cluster
        it asks for every slot's marker, in batches as `initialize()` writes them. Each command has the
        store's own deadline, so a Redis that never answers fails it, never hangs it.
        """
        await self.reach()
        try:
            await self.redis.run(_WRITE_CHECK, [f"{self.prefix}:check"], ())
        except (StoreUnavailable, RedisError) as exc:
            raise self._unreachable(exc) from None
        if not marker:
            return
        try:
            found = await self._each_marker("EXISTS")
        except (StoreUnavailable, RedisError) as exc:
            raise self._unreachable(exc) from None

        missing = found.count(0)
        if not missing:
            return
        where = f" in {missing} of {SLOTS} slots" if self._clustered else ""
        raise StoreDataLost(
            f"the store {self.redis.url} lacks errorkit's dataset marker{where} (prefix {self.prefix!r}): it lost "
            "errorkit's data (a restart without persistence, FLUSHALL, eviction) or was never initialized; "
            f"run {self.remedy} to adopt it as it is (requests repeated from before the loss then run again)"
        )

    def _unreachable(self, error: StoreUnavailable | RedisError) -> StoreUnavailable:
        """The failure of a check: the URL (redacted) and the reason; a refused command (NOPERM) too,
        since a store that refuses errorkit's commands cannot serve it either."""
        if isinstance(error, RedisError):
            return StoreUnavailable(f"the store {self.redis.url} refused errorkit's check: {error}")
        return StoreUnavailable(f"cannot reach the store {self.redis.url}: {_reason(error, self.timeouts)}")

    @property
    def timeouts(self) -> Timeouts:
        """How long this store waits for Redis (its connection's)."""
        return self.redis.timeouts

    async def _check_eviction(self) -> None:
        try:  # managed services often rename or forbid CONFIG: then there is nothing to learn
            reply = await self.redis.execute("CONFIG", "GET", "maxmemory-policy")
        except RedisError:
            return

        policy = reply[1] if len(reply) == 2 else b"noeviction"
        if policy not in _SAFE_EVICTION:
            logger.warning(
                "%s runs with maxmemory-policy %s: Redis may evict API keys and idempotency records "
                "when full; set noeviction "
                "(see https://errorkit.github.io/errorkit/guides/redis/#what-errorkit-needs-from-redis)",
                self,
                policy.decode(),
                extra=log_extra(),
            )

    # -- API keys -------------------------------------------------------------------------

    def _api_key(self, key_id: str) -> str:
        return f"{self.prefix}:apikey:{{{_tag(key_id)}}}"

    def _workspace_keys(self, workspace_id: str) -> str:
        return f"{self.prefix}:workspace-keys:{{{_tag(workspace_id)}}}"

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        # a plain HGETALL (0.7 us of Redis time against 4.5 us for a script doing the same): only
        # a miss asks for the marker, in a second command, to tell an unknown key from a lost store
        key = self._api_key(key_id)
        flat = await self.redis.execute("HGETALL", key)
        if not flat:
            if not await self.redis.execute("EXISTS", self._marker(key)):
                raise StoreDataLost(_lost("an API key", self.remedy))
            return None

        marker = self._marker(key)
        if marker not in self._seen_markers:  # a record that is there proves its slot's data is: mark it
            self._seen_markers.add(marker)  # (once per slot and process; keys stored before markers existed)
            mark = functools.partial(self.redis.execute, "SET", marker, str(int(time.time())), "NX")
            self._background(mark, 10_000, "marking a slot as holding errorkit's data")

        return _key_record(key_id, flat)

    def watch_keys(self, on_change: Callable[[str | None], None]) -> KeyWatch:
        """Hear of every change to an API key record at once: `on_change(key_id)`, or None for "all".

        One subscribed connection per primary, told by Redis of every change (`CLIENT TRACKING`);
        the caller starts it (`start()`) inside its event loop, and `close()` stops it.
        """
        start = f"{self.prefix}:apikey:{{".encode()

        def changed(name: bytes | None) -> None:
            if name is None or not name.startswith(start) or not name.endswith(b"}"):
                on_change(None)
                return
            on_change(_untag(name[len(start) : -1].decode(errors="replace")))

        watch = KeyWatch(self.redis, f"{self.prefix}:apikey:", changed)
        self._watches.append(watch)
        return watch

    async def put_api_key(self, record: APIKeyRecord) -> None:
        if not self._initialized:
            await self.initialize()

        fields = [p for item in record.to_fields().items() for p in item]
        key = self._api_key(record.key_id)
        keys = [key, self._marker(key)]

        await self.redis.run(_PUT_KEY, keys, (str(int(time.time())), *fields))
        self._seen_markers.add(keys[1])
        await self.redis.execute("SADD", self._workspace_keys(record.workspace_id), record.key_id)

    async def update_api_key(self, key_id: str, fields: Mapping[str, str | None]) -> bool:
        """HSET (and HDEL) of just these fields, in a script that first checks the record exists."""
        check_update(fields)
        kept = {name: value for name, value in fields.items() if value is not None}
        written = [part for item in kept.items() for part in item]
        removed = [name for name, value in fields.items() if value is None]

        key = self._api_key(key_id)
        changed = await self.redis.run(_UPDATE_KEY, [key, self._marker(key)], (len(written) // 2, *written, *removed))
        if changed == -1:
            raise StoreDataLost(_lost("an API key", self.remedy))
        return bool(changed == 1)

    async def list_api_keys(self, workspace_id: str) -> list[APIKeyRecord]:
        """The workspace's records, with the unreadable ones listed in its index whose workspace is unknown."""
        key_ids = await self.redis.execute("SMEMBERS", self._workspace_keys(workspace_id))
        records = [await self.get_api_key(key_id.decode(errors="replace")) for key_id in key_ids]
        found = [record for record in records if record is not None]
        return [r for r in found if r.workspace_id == workspace_id or (r.unreadable and r.workspace_id == "")]

    # -- rate limiting --------------------------------------------------------------------

    def count(
        self, algorithm: CounterAlgorithm, identity: str, buckets: Sequence[str], args: Sequence[int], cost: int
    ) -> Awaitable[Counted]:
        try:
            prepared = self._counts.get((algorithm, identity, buckets, args, cost))
        except TypeError:  # (lists, from a caller of its own: the limiter's policies give tuples)
            return self.count(algorithm, identity, tuple(buckets), tuple(args), cost)
        if prepared is None:
            prepared = self._prepare_count(algorithm, identity, buckets, args, cost)
        return self.redis.run_prepared(prepared)  # a future: no extra frame

    def _prepare_count(
        self, algorithm: CounterAlgorithm, identity: str, buckets: Sequence[str], args: Sequence[int], cost: int
    ) -> Prepared:
        """The count's command, packed and kept (the oldest goes first past `COUNTS_KEPT`)."""
        script = self._scripts.get(algorithm.name)
        if script is None:
            script = self._scripts[algorithm.name] = Script(algorithm.lua)

        base = f"{self.prefix}:rl:{{{_tag(identity)}}}:"
        prepared = Prepared(script, [base + bucket for bucket in buckets], (cost, *args), _counted)
        counts = self._counts
        if len(counts) >= COUNTS_KEPT:
            del counts[next(iter(counts))]
        counts[algorithm, identity, buckets, args, cost] = prepared
        return prepared

    # -- both: a limit and a claim in one step -----------------------------------------------

    def count_and_claim(
        self,
        algorithm: CounterAlgorithm,
        identity: str,
        buckets: Sequence[str],
        args: Sequence[int],
        cost: int,
        claim: ClaimRequest,
    ) -> Awaitable[tuple[Counted, Claim | None]]:
        """Count, and claim only if admitted: one script when `identity` and the claim's tenant
        share their hash tag (the slot), else the two steps one after the other."""
        if len(claim.fingerprint) > 255:
            raise ValueError("an idempotency fingerprint is at most 255 bytes")

        if not identity or identity != claim.tenant:
            # (`_tag` gives each identity a tag of its own, so only the same identity shares the slot;
            # "{}" is no hash tag: Redis would hash whole keys)
            return count_then_claim(self, algorithm, identity, buckets, args, cost, claim)

        try:
            layout = self._claims.get((algorithm, identity, buckets, args, cost, claim.lease_ms))
        except TypeError:  # (lists, from a caller of its own: the limiter's policies give tuples)
            return self.count_and_claim(algorithm, identity, tuple(buckets), tuple(args), cost, claim)
        if layout is None:
            layout = self._claim_layout(algorithm, identity, buckets, args, cost, claim.lease_ms)

        record = _record_name(self.prefix, claim.tenant, claim.key)  # (not `_record`: a call fewer)
        marker = self._marker(record)
        owner = claim.owner
        keys = (*layout.keys, record, marker)
        values = (claim.fingerprint, owner, *layout.args)
        packed = layout.pack(record.encode(), marker.encode(), claim.fingerprint, owner.encode())

        late = _FreeIfClaimed(self, claim.tenant, claim.key, owner, claim.lease_ms, counted=True)
        return self.redis.run(layout.script, keys, values, self._to_counted_and_claimed, late, packed=packed)

    def _claim_layout(
        self,
        algorithm: CounterAlgorithm,
        identity: str,
        buckets: Sequence[str],
        args: Sequence[int],
        cost: int,
        lease_ms: int,
    ) -> EvalshaLayout:
        """What the count-and-claim of one identity, policy and cost always sends: the limit's keys
        first, its arguments last (the oldest goes first past `COUNTS_KEPT`)."""
        name = f"{algorithm.name}+claim"
        script = self._scripts.get(name)
        if script is None:
            source = _LIMIT_THEN_CLAIM.replace("--[[ the algorithm ]]", algorithm.lua, 1)
            source = source.replace("--[[ the claim ]]", _CLAIM.source, 1)
            script = self._scripts[name] = Script(source)

        base = f"{self.prefix}:rl:{{{_tag(identity)}}}:"
        keys = [base + bucket for bucket in buckets]
        # the request's own keys (the record, its marker) and arguments (fingerprint, owner) go in between
        layout = EvalshaLayout(script, keys, 2, 2, (lease_ms, len(buckets), cost, *args))
        claims = self._claims
        if len(claims) >= COUNTS_KEPT:
            del claims[next(iter(claims))]
        claims[algorithm, identity, buckets, args, cost, lease_ms] = layout
        return layout

    # -- idempotency ------------------------------------------------------------------------

    def _record(self, tenant: str, key: str) -> str:
        return _record_name(self.prefix, tenant, key)

    def claim(self, tenant: str, key: str, fingerprint: bytes, owner: str, lease_ms: int) -> Awaitable[Claim]:
        if len(fingerprint) > 255:  # a record keeps its fingerprint's length in one byte
            raise ValueError("an idempotency fingerprint is at most 255 bytes")

        record = self._record(tenant, key)
        keys = [record, self._marker(record)]
        late = _FreeIfClaimed(self, tenant, key, owner, lease_ms, counted=False)
        return self.redis.run(_CLAIM, keys, (fingerprint, owner, lease_ms), self._to_claim, late)

    def _background(
        self, step: Callable[[], Awaitable[Any]], within_ms: int, what: str, *, again_after: float | None = None
    ) -> None:
        """Run a step that may safely run twice (a give-back by token) until Redis takes it, for at
        most `within_ms` (after that, the lease it gives back has lapsed anyway); see `keep_trying`."""
        self._tasks.spawn(keep_trying(step, within_ms / 1000, what, again_after=again_after))

    def complete(self, tenant: str, key: str, owner: str, response: bytes | None, ttl_ms: int) -> Awaitable[bool]:
        record = _record_name(self.prefix, tenant, key)  # (not `_record`: a call fewer)
        if response is None:
            return self.redis.run(_COMPLETE, [record], (owner, ttl_ms), bool)

        packed = _COMPLETING.pack(record.encode(), owner.encode(), b"%d" % ttl_ms, response)  # (a response: bytes)
        return self.redis.run(_COMPLETE, [record], (owner, ttl_ms, response), bool, packed=packed)

    def release(self, tenant: str, key: str, owner: str) -> Awaitable[bool]:
        return self.redis.run(_RELEASE, [self._record(tenant, key)], (owner,), bool)

    def renew(self, tenant: str, key: str, owner: str, lease_ms: int) -> Awaitable[bool]:
        return self.redis.run(_RENEW, [self._record(tenant, key)], (owner, lease_ms), bool)

    # -- quotas -------------------------------------------------------------------------------

    def _quota(self, workspace: str) -> str:
        return f"{self.prefix}:quota:{{{_tag('ws:' + workspace)}}}"  # the workspace's slot, as its rate limits

    def _holds(self, workspace: str, group: str) -> str:
        return f"{self.prefix}:quota-held:{{{_tag('ws:' + workspace)}}}:{group}"

    def _settled(self, workspace: str) -> str:
        return f"{self.prefix}:quota-settled:{{{_tag('ws:' + workspace)}}}"

    def reserve(self, workspace: str, group: str, limit: int | None, token: str, lease_ms: int) -> Awaitable[Reserved]:
        key = self._quota(workspace)
        keys = [key, self._marker(key), self._holds(workspace, group)]
        args = (group, -1 if limit is None else limit, token, lease_ms)
        late = _CancelHold(self, workspace, group, token, lease_ms)
        return self.redis.run(_RESERVE, keys, args, self._to_reserved, late)

    def confirm(self, workspace: str, group: str, token: str) -> Awaitable[int]:
        key = self._quota(workspace)
        keys = [key, self._marker(key), self._holds(workspace, group), self._settled(workspace)]
        return self.redis.run(_CONFIRM, keys, (group, token, SETTLED_MS), self._to_unreserved)

    async def cancel(self, workspace: str, group: str, token: str) -> bool:
        return bool(await self.redis.execute("ZREM", self._holds(workspace, group), token))

    def renew_hold(self, workspace: str, group: str, token: str, lease_ms: int) -> Awaitable[bool]:
        return self.redis.run(_RENEW_SLOT, [self._holds(workspace, group)], (token, lease_ms), bool)

    def unreserve(self, workspace: str, group: str, token: str) -> Awaitable[int]:
        key = self._quota(workspace)
        keys = [key, self._marker(key), self._settled(workspace)]
        return self.redis.run(_UNRESERVE, keys, (group, token, SETTLED_MS), self._to_unreserved)

    async def usage(self, workspace: str, groups: Sequence[str]) -> list[int]:
        if not groups:  # (HMGET needs a field)
            return []

        key = self._quota(workspace)
        keys = [key, self._marker(key), *(self._holds(workspace, group) for group in groups)]
        usage: list[int] = await self.redis.run(_USAGE, keys, tuple(groups), self._to_usage)
        return usage

    async def set_usage(self, workspace: str, group: str, usage: int) -> None:
        await self.redis.execute("HSET", self._quota(workspace), group, usage)

    # -- concurrency slots ----------------------------------------------------------------------

    def _slots(self, identity: str, bucket: str) -> str:
        return f"{self.prefix}:cc:{{{_tag(identity)}}}:{bucket}"

    def acquire(self, identity: str, bucket: str, limit: int, token: str, lease_ms: int) -> Awaitable[Slot]:
        late = _ReleaseSlot(self, identity, bucket, token, lease_ms)
        return self.redis.run(_ACQUIRE, [self._slots(identity, bucket)], (limit, token, lease_ms), _slot, late)

    async def release_slot(self, identity: str, bucket: str, token: str) -> bool:
        return bool(await self.redis.execute("ZREM", self._slots(identity, bucket), token))

    def renew_slot(self, identity: str, bucket: str, token: str, lease_ms: int) -> Awaitable[bool]:
        return self.redis.run(_RENEW_SLOT, [self._slots(identity, bucket)], (token, lease_ms), bool)

    def observe(self, observer: Observer | None) -> None:
        """Report Redis replies (timed), failures and connection state to `observer` (None: stop)."""
        self.redis.observe(observer)

    async def close(self) -> None:
        for watch in self._watches:
            await watch.close()
        await self.redis.close()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.redis!r} prefix={self.prefix!r}>"

    def __str__(self) -> str:
        """`redis://127.0.0.1:6379/0 (prefix 'errorkit')`: the store as log lines and commands name it."""
        return f"{self.redis.url} (prefix {self.prefix!r})"


class _GiveBack(abc.ABC):
    """The `late` hook of a step that takes something by token (a claim, a quota hold, a slot): when
    its caller cannot, it gives back what the step took.

    - the reply came after the caller gave up (deadline): if the step took something, give it back;
    - the connection went before any reply: the step may have run, or may still run (a stalled
      Redis reads it when it resumes), so give back by token now, and once more a second later,
      for a give-back that reached Redis first.
    Subclasses say what a reply means (`took`) and how to give back (`step`). (Objects, not
    closures: one object per step for the garbage collector, not a function and its cells.)
    """

    __slots__ = ("backend", "lease_ms")
    what = "giving back"

    def __init__(self, backend: RedisBackend, lease_ms: int) -> None:
        self.backend = backend
        self.lease_ms = lease_ms

    @abc.abstractmethod
    def took(self, result: Any) -> bool:
        """Whether the reply says the step took something."""

    @abc.abstractmethod
    def step(self) -> Awaitable[Any]:
        """The give-back, by token."""

    def __call__(self, result: Any) -> None:
        if self.took(result):
            self.backend._background(self.step, self.lease_ms, self.what)

    def unknown(self) -> None:
        # tried for 10 minutes, not just the lease: Redis runs the step only when it resumes, which
        # may be after a lease's worth of stall, and the step's own lease starts only then
        within_ms = max(self.lease_ms, SETTLE_RETRY_MS)
        self.backend._background(self.step, within_ms, self.what, again_after=1.0)


class _FreeIfClaimed(_GiveBack):
    """A claim: free the key (by owner) if it was claimed."""

    __slots__ = ("counted", "key", "owner", "tenant")
    what = "releasing an idempotency key nobody waits for"

    def __init__(
        self, backend: RedisBackend, tenant: str, key: str, owner: str, lease_ms: int, *, counted: bool
    ) -> None:
        super().__init__(backend, lease_ms)
        self.tenant, self.key = tenant, key
        self.owner = owner
        self.counted = counted

    def took(self, result: Any) -> bool:
        claim: Claim | None = result[1] if self.counted else result  # (Counted, Claim | None) or a Claim
        return claim is not None and claim.state is ClaimState.CLAIMED

    def step(self) -> Awaitable[bool]:
        return self.backend.release(self.tenant, self.key, self.owner)


class _CancelHold(_GiveBack):
    """A quota hold: give the unit back (by token) if one was held."""

    __slots__ = ("group", "token", "workspace")
    what = "giving back a quota unit nobody waits for"

    def __init__(self, backend: RedisBackend, workspace: str, group: str, token: str, lease_ms: int) -> None:
        super().__init__(backend, lease_ms)
        self.workspace, self.group = workspace, group
        self.token = token

    def took(self, result: Any) -> bool:
        return bool(result.admitted)

    def step(self) -> Awaitable[bool]:
        return self.backend.cancel(self.workspace, self.group, self.token)


class _ReleaseSlot(_GiveBack):
    """A concurrency slot: give it back (by token) if one was taken."""

    __slots__ = ("bucket", "identity", "token")
    what = "releasing a concurrency slot nobody waits for"

    def __init__(self, backend: RedisBackend, identity: str, bucket: str, token: str, lease_ms: int) -> None:
        super().__init__(backend, lease_ms)
        self.identity, self.bucket = identity, bucket
        self.token = token

    def took(self, result: Any) -> bool:
        return bool(result.acquired)

    def step(self) -> Awaitable[bool]:
        return self.backend.release_slot(self.identity, self.bucket, self.token)
