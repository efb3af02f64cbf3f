"""The one place errorkit talks to Redis: a multiplexed, auto-pipelined asyncio connection.

Every command issued during one event-loop tick, by any number of concurrent requests,
leaves in a single write on one connection, and the replies are read back in one pass
(hiredis parses them). That amortises the per-round-trip cost that makes a naive
"one redis-py call per request" middleware slow.

Failure behaviour, chosen for middleware that must never stall an API:
- every batch has a deadline (`timeout`, tens of milliseconds by default); when a reply
  is late the connection is dropped and every pending command fails with
  `RedisUnavailable`: a late reply can never be matched to the wrong caller;
- nothing is retried blindly, so a command is never executed twice by errorkit; the only
  retry is EVALSHA after `NOSCRIPT`, which Redis answers without running anything;
- after a failed connect or a timeout, commands fail at once for `retry_interval`
  seconds, then the next command reconnects: recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis

from errorkit.backends.base import BackendUnavailable

Arg = str | bytes | int | float


class RedisError(Exception):
    """Redis answered with an error reply (a bug or a misconfiguration, not an outage)."""


class RedisUnavailable(BackendUnavailable):
    """Redis could not be reached or did not answer in time."""


class Script:
    """A Lua script run with EVALSHA, loaded on first use and again after `NOSCRIPT`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class _Protocol(asyncio.Protocol):
    """Replies arrive in the order commands were written: each resolves the oldest waiter."""

    def __init__(self, on_lost: Any) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.replied = 0
        self.on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiters = self.waiters
        while (reply := self.reader.gets()) is not False:
            self.replied += 1
            waiter = waiters.popleft()
            if waiter.done():  # its caller was cancelled
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RedisError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisUnavailable(f"connection to Redis lost: {exc or 'closed'}"))
        self.on_lost(self)

    def fail(self, error: Exception) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class Redis:
    """A single multiplexed connection to one Redis server, shared by all requests of a process.

    `url` is `redis://[:password@]host[:port][/db]`. `timeout` bounds every command
    (seconds); `connect_timeout` bounds connecting; `retry_interval` is how long commands
    fail fast after a failed connect before the next attempt.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout: float = 0.05,
        connect_timeout: float = 0.25,
        retry_interval: float = 0.5,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "redis":
            raise ValueError(f"unsupported Redis URL {url!r}: use redis://host:port/db")
        self.url = url
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.db = int(parsed.path.lstrip("/") or 0)
        self.password = unquote(parsed.password) if parsed.password else None
        self.username = unquote(parsed.username) if parsed.username else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry_interval = retry_interval
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._down_until = 0.0
        self._buffer: list[bytes] = []
        self._flush_scheduled = False
        self.commands_sent = 0
        self.writes = 0

    async def execute(self, *args: Arg) -> Any:
        """Run one command; raises `RedisUnavailable` on outage or timeout, `RedisError` on an error reply."""
        protocol = self._protocol
        if protocol is None or self._loop is not asyncio.get_running_loop():
            protocol = await self._connect()
        waiter: asyncio.Future[Any] = self._loop.create_future()  # type: ignore[union-attr]
        protocol.waiters.append(waiter)
        self._buffer.append(hiredis.pack_command(args))  # type: ignore[arg-type]
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush, protocol)  # type: ignore[union-attr]
        return await waiter

    async def run(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """EVALSHA `script`; on `NOSCRIPT` (first use, or after a flush or restart) load it and run again."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except RedisError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        await self.execute("SCRIPT", "LOAD", script.source)
        return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    def _flush(self, protocol: _Protocol) -> None:
        self._flush_scheduled = False
        buffer, self._buffer = self._buffer, []
        if protocol is not self._protocol or protocol.transport is None:
            protocol.fail(RedisUnavailable("connection to Redis lost"))
            return
        protocol.transport.write(b"".join(buffer))
        self.commands_sent += len(buffer)
        self.writes += 1
        target = protocol.replied + len(protocol.waiters)
        self._loop.call_later(self.timeout, self._check_deadline, protocol, target)  # type: ignore[union-attr]

    def _check_deadline(self, protocol: _Protocol, target: int) -> None:
        if protocol.replied < target and protocol is self._protocol:
            protocol.fail(RedisUnavailable(f"Redis did not answer within {self.timeout * 1000:.0f} ms"))
            self._down_until = time.monotonic() + self.retry_interval
            self._drop(protocol)

    def _drop(self, protocol: _Protocol) -> None:
        if protocol is self._protocol:
            self._protocol = None
        if protocol.transport is not None:
            protocol.transport.abort()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests, a forked worker)
            self._loop, self._protocol, self._lock, self._buffer = loop, None, asyncio.Lock(), []
            self._flush_scheduled = False
        async with self._lock:
            if self._protocol is not None:
                return self._protocol
            if time.monotonic() < self._down_until:
                raise RedisUnavailable(f"Redis at {self.host}:{self.port} is unreachable (retrying soon)")
            try:
                return await self._open(loop)
            except (TimeoutError, OSError, RedisUnavailable, RedisError) as error:
                self._protocol = None
                self._down_until = time.monotonic() + self.retry_interval
                raise RedisUnavailable(f"cannot connect to Redis at {self.host}:{self.port}: {error!r}") from None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self._lost), self.host, self.port),
            self.connect_timeout,
        )
        self._protocol = protocol
        if self.password is not None:
            auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            await self.execute(*auth)
        if self.db:
            await self.execute("SELECT", self.db)
        return protocol

    def _lost(self, protocol: _Protocol) -> None:
        if protocol is self._protocol:
            self._protocol = None

    def __repr__(self) -> str:
        return f"<Redis {self.host}:{self.port}/{self.db} timeout={self.timeout}s>"
