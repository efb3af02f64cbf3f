"""Sentinel and Cluster clients, built from errorkit's own connection (`Redis`), one per server.

`connect(url)` returns the client a URL names; all three kinds answer `execute()` and
`run()` like a single `Redis` connection does, so the store never knows which it has.

- **Sentinel**: the master is asked of the sentinels (`SENTINEL get-master-addr-by-name`),
  its role checked during the handshake, and re-discovered when its connection is lost or
  answers `READONLY`, `LOADING` or `MASTERDOWN`. A watcher also asks a sentinel every
  `check_interval` seconds, so writes move to a new primary within seconds of the sentinels
  naming it, even while the demoted one still accepts connections.
- **Cluster**: slots are discovered from any node (`CLUSTER SLOTS`); one multiplexed
  connection per primary (still one write per node per loop tick); each command goes to
  the primary of its first key's hash slot. `MOVED` refreshes the map and resends (Redis ran
  nothing); `ASK` resends once to the named node after `ASKING`. A lost node connection
  refreshes the map, so a primary's failover to its replica is followed by itself.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import contextvars
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from errorkit._common.exceptions import RedisError, StoreUnavailable
from errorkit._observe.observer import Observer
from errorkit._stores.redis.connection import Arg, Convert, Late, Prepared, Redirect, Redis, Script, Timeouts
from errorkit._stores.redis.urls import Address, RedisURL, parse_url


class RedisClient(Protocol):
    """What the Redis store needs: one server, a Sentinel-managed master or a Cluster."""

    url: str

    async def execute(self, *args: Arg) -> Any: ...

    def run(
        self,
        script: Script,
        keys: Sequence[Arg],
        args: Sequence[Arg],
        convert: Convert | None = None,
        late: Late | None = None,
        *,
        packed: bytes | None = None,
    ) -> Awaitable[Any]: ...

    def run_prepared(self, prepared: Prepared) -> Awaitable[Any]: ...

    def observe(self, observer: Observer | None) -> None: ...

    async def close(self) -> None: ...


def connect(url: str | RedisURL, *, timeout: float | Timeouts = 0.05) -> Redis | SentinelClient | ClusterClient:
    """The client for `url`: a `Redis` connection, a `SentinelClient` or a `ClusterClient`."""
    config = parse_url(url) if isinstance(url, str) else url
    if config.topology == "sentinel":
        return SentinelClient(config, timeout=timeout)
    if config.topology == "cluster":
        return ClusterClient(config, timeout=timeout)
    return Redis(config, timeout=timeout)


class SentinelClient:
    """The master a set of sentinels names, followed through failovers."""

    def __init__(self, config: RedisURL, *, timeout: float | Timeouts = 0.05, check_interval: float = 1.0) -> None:
        assert config.topology == "sentinel" and config.service_name is not None
        self.config = config
        self.url = config.text
        self.timeouts = Timeouts.of(timeout)
        self.check_interval = check_interval
        self.service = config.service_name

        self._sentinels = list(config.addresses)
        self._connections: dict[Address, Redis] = {}
        self._master: Redis | None = None
        self._lock: asyncio.Lock | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.discoveries = 0
        self.observer: Observer | None = None

    def observe(self, observer: Observer | None) -> None:
        """Report every connection's replies, failures and state to `observer` (None: stop)."""
        self.observer = observer
        for connection in [self._master, *self._connections.values()]:
            if connection is not None:
                connection.observe(observer)

    @property
    def commands_sent(self) -> int:
        return self._master.commands_sent if self._master is not None else 0

    async def execute(self, *args: Arg) -> Any:
        master = self._master if self._loop is asyncio.get_running_loop() else None
        if master is None:
            master = await self._discover()
        return await master.execute(*args)

    def run(
        self,
        script: Script,
        keys: Sequence[Arg],
        args: Sequence[Arg],
        convert: Convert | None = None,
        late: Late | None = None,
        *,
        packed: bytes | None = None,
    ) -> Awaitable[Any]:
        master = self._master
        if master is None or self._loop is not asyncio.get_running_loop():
            return self._run_discovering(script, keys, args, convert, late)
        return master.run(script, keys, args, convert, late, packed=packed)

    async def _run_discovering(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], convert: Convert | None, late: Late | None
    ) -> Any:
        master = await self._discover()
        return await master.run(script, keys, args, convert, late)

    def run_prepared(self, prepared: Prepared) -> Awaitable[Any]:
        master = self._master
        if master is None or self._loop is not asyncio.get_running_loop():
            return self._run_discovering(prepared.script, prepared.keys, prepared.args, prepared.convert, None)
        return master.run_prepared(prepared)

    async def master_address(self) -> Address:
        """Ask the sentinels, in turn, where the master is (one kept connection per sentinel)."""
        problems = []
        for index, address in enumerate(list(self._sentinels)):
            sentinel = self._connections.get(address)
            if sentinel is None:
                sentinel = self._connections[address] = self._sentinel(address)

            try:
                reply = await sentinel.execute("SENTINEL", "get-master-addr-by-name", self.service)
            except (StoreUnavailable, RedisError) as exc:
                problems.append(f"{address[0]}:{address[1]}: {exc}")
                await self._connections.pop(address).close()
                continue
            if reply is None:
                problems.append(f"{address[0]}:{address[1]}: no master named {self.service!r}")
                continue

            if index:  # remember which sentinel answered: ask it first next time
                self._sentinels.insert(0, self._sentinels.pop(index))
            return reply[0].decode(), int(reply[1])

        raise StoreUnavailable(f"no sentinel named the master of {self.service!r}: {'; '.join(problems)}")

    def _sentinel(self, address: Address) -> Redis:
        # a sentinel: its own password (if any), no database, the same TLS
        config = dataclasses.replace(
            self.config, topology="single", addresses=(address,), username=None,
            password=self.config.sentinel_password, db=0, service_name=None, text=f"sentinel {address[0]}:{address[1]}",
        )  # fmt: skip
        timeouts = Timeouts(command=self.timeouts.connect, connect=self.timeouts.connect)
        return Redis(config, timeout=timeouts, observer=self.observer)

    async def _discover(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests, a forked worker)
            for gone in [self._master, *self._connections.values()]:
                if gone is not None:
                    gone.abandon()
            self._loop, self._lock = loop, asyncio.Lock()
            self._master, self._watcher = None, None
            self._connections = {}

        assert self._lock is not None
        async with self._lock:
            if self._master is not None:
                return self._master

            address = await self.master_address()
            master = Redis(
                self.config,
                timeout=self.timeouts,
                address=address,
                role="master",
                on_lost=self._forget,
                observer=self.observer,
            )
            await master._connect()  # the handshake checks the role: a stale answer fails here

            self.discoveries += 1
            self._master = master
            if self._watcher is None or self._watcher.done():  # (no request's context: it outlives them all)
                self._watcher = loop.create_task(self._watch(), context=contextvars.Context())
            return master

    async def primary_addresses(self, *, fresh: bool = False) -> list[Address | None]:
        """Where the master is now, as the sentinels say (for a `KeyWatch`; always asked afresh)."""
        if self._loop is not asyncio.get_running_loop():
            await self._discover()
        return [await self.master_address()]

    def dedicated(
        self, address: Address | None, *, on_push: Callable[[Any], None], on_lost: Callable[[], None]
    ) -> Redis:
        """A connection of its own to the master at `address` (role checked), for subscribing."""
        return Redis(
            self.config,
            timeout=self.timeouts,
            address=address,
            role="master",
            on_push=on_push,
            on_lost=on_lost,
            observer=self.observer,
        )

    def _forget(self) -> None:
        """The master's connection was lost or misdirected: ask the sentinels again next time."""
        self._master = None

    async def _watch(self) -> None:
        """Follow a failover the sentinels announce, even while the old master still answers."""
        while True:
            await asyncio.sleep(self.check_interval)
            master = self._master
            if master is None:
                continue

            try:
                address = await self.master_address()
            except StoreUnavailable:
                continue

            if address != master.address and self._master is master:
                self._master = None
                await master.close()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._watcher

        master, self._master = self._master, None
        if master is not None:
            await master.close()
        for sentinel in self._connections.values():
            await sentinel.close()
        self._connections = {}

    def __repr__(self) -> str:
        return f"<SentinelClient {self.url}>"


SLOTS = 16384


@functools.lru_cache(maxsize=65536)
def hash_slot(key: str) -> int:
    """The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (`{...}`) or of the whole key."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key.encode(), 0) % SLOTS


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """For each slot, a short hash tag that lands in it (`hash_slot("{" + tags[s] + "}") == s`).

    Found once by counting upwards (about 180,000 CRCs, some 60 ms); lets a store keep one
    key in every slot, next to whatever else lives there.
    """
    tags: list[str | None] = [None] * SLOTS
    missing, number = SLOTS, 0
    while missing:
        tag = format(number, "x")
        slot = binascii.crc_hqx(tag.encode(), 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        number += 1
    return tuple(tag for tag in tags if tag is not None)


_MAX_REDIRECTS = 5


class ClusterClient:
    """A Redis Cluster: each command to the primary of its key's slot, one connection per primary."""

    def __init__(self, config: RedisURL, *, timeout: float | Timeouts = 0.05) -> None:
        assert config.topology == "cluster"
        self.config = config
        self.url = config.text
        self.timeouts = Timeouts.of(timeout)

        self._seeds = list(config.addresses)
        self._slots: list[Address | None] = [None] * SLOTS
        self._nodes: dict[Address, Redis] = {}
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refreshed_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self.refreshes = 0
        self.observer: Observer | None = None

    def observe(self, observer: Observer | None) -> None:
        """Report every node's replies, failures and state to `observer` (None: stop)."""
        self.observer = observer
        for node in self._nodes.values():
            node.observe(observer)

    @property
    def commands_sent(self) -> int:
        return sum(node.commands_sent for node in self._nodes.values())

    def node(self, address: Address) -> Redis:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = Redis(
                self.config,
                timeout=self.timeouts,
                address=address,
                select_db=False,
                on_lost=self._stale,
                observer=self.observer,
            )
        return node

    def node_for(self, key: str) -> Redis | None:
        address = self._slots[hash_slot(key)]
        return self.node(address) if address is not None else None

    async def execute(self, *args: Arg) -> Any:
        key = args[1] if len(args) > 1 else ""
        return await self._routed(str(key), lambda node, asking: node.execute(*args, asking=asking))

    def run(
        self,
        script: Script,
        keys: Sequence[Arg],
        args: Sequence[Arg],
        convert: Convert | None = None,
        late: Late | None = None,
        *,
        packed: bytes | None = None,
    ) -> Awaitable[Any]:
        return self._routed(
            str(keys[0]),
            lambda node, asking: node.run(script, keys, args, convert, late, asking=asking, packed=packed),
        )

    def run_prepared(self, prepared: Prepared) -> Awaitable[Any]:
        return self._routed(str(prepared.keys[0]), lambda node, asking: node.run_prepared(prepared, asking=asking))

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests, a forked worker)
            for gone in self._nodes.values():
                gone.abandon()
            self._loop, self._lock = loop, asyncio.Lock()
            self._nodes, self._refreshing = {}, None
            self._slots = [None] * SLOTS

    async def primary_addresses(self, *, fresh: bool = False) -> list[Address | None]:
        """Every primary of the slot map, in order (for a `KeyWatch`); `fresh`: read the map again first."""
        self._bind()
        if fresh or not any(self._slots):
            await self.refresh()
        return list(sorted({address for address in self._slots if address is not None}))

    def dedicated(
        self, address: Address | None, *, on_push: Callable[[Any], None], on_lost: Callable[[], None]
    ) -> Redis:
        """A connection of its own to the node at `address`, for subscribing."""
        assert address is not None  # (a Cluster's primaries always have one)
        return self.node(address).dedicated(address, on_push=on_push, on_lost=on_lost)

    async def _routed(self, key: str, send: Any) -> Any:
        self._bind()
        node = self.node_for(key)
        if node is None:
            await self.refresh()
            node = self.node_for(key)
            if node is None:
                raise StoreUnavailable(f"no Redis Cluster node serves the slot of {key!r}")

        asking = False
        for _ in range(_MAX_REDIRECTS):
            try:
                return await send(node, asking)
            except StoreUnavailable:  # a node down or failing over: read the slot map again soon
                self._stale()
                raise
            except Redirect as redirect:  # nothing ran: send it where the cluster says
                if redirect.kind == "MOVED":
                    self._slots[redirect.slot] = redirect.address
                    self._stale()
                asking = redirect.kind == "ASK"
                node = self.node(redirect.address)

        raise StoreUnavailable(f"Redis Cluster redirected the slot of {key!r} more than {_MAX_REDIRECTS} times")

    def _stale(self) -> None:
        """A node was lost or a slot moved: refresh the slot map soon (not more than 10 times a second)."""
        if self._loop is None or (self._refreshing is not None and not self._refreshing.done()):
            return
        self._refreshing = self._loop.create_task(self._refresh_soon())

    async def _refresh_soon(self) -> None:
        wait = self._refreshed_at + 0.1 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        with contextlib.suppress(StoreUnavailable):
            await self.refresh()

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers `CLUSTER SLOTS`."""
        assert self._lock is not None
        async with self._lock:
            candidates = list(dict.fromkeys([*self._nodes, *self._seeds]))
            problems = []
            for address in candidates:
                node = self.node(address)
                try:
                    reply = await node.execute("CLUSTER", "SLOTS")
                except (StoreUnavailable, RedisError) as exc:
                    problems.append(f"{address[0]}:{address[1]}: {exc}")
                    continue

                slots: list[Address | None] = [None] * SLOTS
                for start, end, primary, *_ in reply:
                    address_of_primary = (primary[0].decode() or address[0], int(primary[1]))
                    for slot in range(start, end + 1):
                        slots[slot] = address_of_primary
                self._slots = slots
                self._refreshed_at = time.monotonic()
                self.refreshes += 1

                primaries = set(slots)
                gone = [a for a in self._nodes if a not in primaries and a not in self._seeds]
                for known in gone:
                    await self._nodes.pop(known).close()
                return

            raise StoreUnavailable(f"no Redis Cluster node answered CLUSTER SLOTS: {'; '.join(problems)}")

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for node in list(self._nodes.values()):
            await node.close()

    def __repr__(self) -> str:
        return f"<ClusterClient {self.url}>"
