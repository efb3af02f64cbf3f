"""Changes pushed by Redis: every process hears at once that a key it may have cached changed.

`KeyWatch` keeps one connection of its own to each primary (one server, Sentinel's master,
each Cluster primary) and asks it, before subscribing, for server-assisted client-side
caching in broadcast mode:

    CLIENT TRACKING ON REDIRECT <this connection's id> BCAST PREFIX <prefix>
    SUBSCRIBE __redis__:invalidate

Redis then pushes the name of every key under the prefix that anyone changes (or `nil` for
a flush), in RESP2, so errorkit's reader stays as it is and no per-key tracking table grows
on the server. A cache may trust what it fetched while the watch was `live` and its
`epoch` unchanged, provided no change arrived during the fetch (`changes`); whenever a
channel is lost or the set of primaries changes (a failover), the epoch moves on and every
such trust ends at once, so nothing is served from memory while a change could be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from typing import Any, Protocol

from errorkit._common.exceptions import RedisError, StoreError
from errorkit._observe.log_context import log_extra
from errorkit._stores.redis.connection import Redis
from errorkit._stores.redis.urls import Address

logger = logging.getLogger("errorkit.store")
CHANNEL = "__redis__:invalidate"
_REFUSED_FOR_GOOD = ("NOPERM", "ERR unknown", "ERR Unknown", "NOAUTH", "WRONGPASS")


class Primaries(Protocol):
    """What a client offers a watch: where its primaries are, and a connection of one's own to each."""

    async def primary_addresses(self, *, fresh: bool = False) -> list[Address | None]: ...

    def dedicated(
        self, address: Address | None, *, on_push: Callable[[Any], None], on_lost: Callable[[], None]
    ) -> Redis: ...


class KeyWatch:
    """Hears, on one subscribed connection per primary, every change to keys under `prefix`.

    `on_change(name)` gets each changed key's name, or None when Redis flushed (or the
    watch lost a channel): forget everything. Every `check_interval` each channel is sent a
    PING (no answer within the command deadline: the channel is lost, so a half-open link
    never keeps trust alive) and the set of primaries is compared with the client's (a
    Sentinel or Cluster failover); it is also the pause before a lost channel is reopened.
    """

    def __init__(
        self,
        client: Primaries,
        prefix: str,
        on_change: Callable[[bytes | None], None],
        *,
        check_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.on_change = on_change
        self.check_interval = check_interval

        self.live = False  # every primary's channel is subscribed
        self.epoch = 0  # moves on whenever a channel starts or stops: earlier trust ends
        self.changes = 0  # changes heard so far (a fetch that overlaps one is not trusted)
        self.unsupported = False  # Redis refused tracking for good (an old server, ACL rules)
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None

    def start(self) -> None:
        """Open the channels in the background (again, in a new event loop); cheap when running."""
        loop = asyncio.get_running_loop()
        task = self._task
        running = task is not None and not task.done() and task.get_loop() is loop
        if self.unsupported or self.closed or running:
            return

        self.live = False
        self.epoch += 1
        self._task = loop.create_task(self._supervise(), context=contextvars.Context())  # outlives every request

    async def _supervise(self) -> None:
        while True:
            channels: dict[Address | None, Redis] = {}
            self._lost = asyncio.Event()

            try:
                # (re)starting, perhaps after a failover: a Cluster reads its slot map again
                addresses = await self.client.primary_addresses(fresh=True)
                for address in addresses:
                    channels[address] = await self._subscribe(address)
                self.epoch += 1
                self.live = True

                while not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), self.check_interval)
                    if self._lost.is_set():
                        break
                    for channel in channels.values():  # a silently dead link must not keep trust alive
                        self._heard(await channel.execute("PING"))
                    if await self.client.primary_addresses(fresh=True) != addresses:
                        break  # a failover: listen to the new primaries
            except RedisError as exc:
                if not str(exc).startswith(_REFUSED_FOR_GOOD):
                    logger.warning("key-change tracking failed (%s); trying again", exc, extra=log_extra())
                else:  # refused for good (ACL, an old server): caches fall back to asking the store
                    self.unsupported = True
                    logger.warning(
                        "Redis refused key-change tracking (%s): API keys are looked up per request",
                        exc,
                        extra=log_extra(),
                    )
                    return
            except StoreError:
                pass
            finally:
                self.live = False
                self.epoch += 1
                self.on_change(None)
                for channel in channels.values():
                    await channel.close()

            await asyncio.sleep(self.check_interval)

    async def _subscribe(self, address: Address | None) -> Redis:
        channel = self.client.dedicated(address, on_push=self._pushed, on_lost=self._channel_lost)
        try:
            client_id = await channel.execute("CLIENT", "ID")
            await channel.execute("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", self.prefix)
            await channel.execute("SUBSCRIBE", CHANNEL)
        except BaseException:
            await channel.close()  # never leave a half-set-up channel behind
            raise
        return channel

    def _heard(self, reply: Any) -> None:
        """A PING's answer while subscribed; a change pushed just before it may stand in its place."""
        if isinstance(reply, list) and reply and reply[0] == b"message":
            self._pushed(reply)  # (its own answer then arrives unasked, and is ignored)

    def _pushed(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return

        self.changes += 1
        names = message[2]
        if names is None:
            self.on_change(None)
            return
        for name in names:
            self.on_change(name)

    def _channel_lost(self) -> None:
        self.live = False
        self.epoch += 1
        if self._lost is not None:
            self._lost.set()

    async def close(self) -> None:
        self.closed = True
        self.live = False
        self.epoch += 1

        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
