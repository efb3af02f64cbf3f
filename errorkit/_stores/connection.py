"""The one place errorkit talks to Redis: a multiplexed, auto-pipelined asyncio connection.

Every command issued during one event-loop tick, by any number of concurrent requests,
leaves in a single write on one connection, and the replies are read back in one pass
(hiredis parses them). That amortises the per-round-trip cost that makes a naive
"one redis-py call per request" middleware slow.

Failure behaviour, chosen for middleware that must never stall an API:
- error replies that say Redis cannot serve right now (out of memory, read-only replica,
  loading its data, busy with a script, cluster down) raise `StoreUnavailable`, like an
  outage, so each stage applies its failure policy; any other error reply raises
  `RedisError` (a misconfiguration such as a missing ACL permission);
- every batch has a deadline (`timeout`, tens of milliseconds by default); when a reply
  is late the connection is dropped and every pending command fails with
  `StoreUnavailable`: a late reply can never be matched to the wrong caller;
- nothing is retried blindly, so a command is never executed twice by errorkit; the only
  retry is EVALSHA after `NOSCRIPT` (sent again as EVAL), which Redis answers without
  running anything;
- after a failed connect or a timeout, commands fail at once for `retry_interval`
  seconds, then the next command reconnects: recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

import hiredis

from errorkit._exceptions import RedisError, StoreUnavailable

Arg = str | bytes | int | float
Convert = Callable[[Any], Any]

#: Error replies meaning "not now" (an outage in all but name), not "never".
UNAVAILABLE_REPLIES = frozenset(
    {"OOM", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "MISCONF"}
)


def reply_error(message: str) -> Exception:
    """The exception for an error reply: `StoreUnavailable` for "not now", else `RedisError`."""
    if message.split(" ", 1)[0] in UNAVAILABLE_REPLIES:
        return StoreUnavailable(f"Redis cannot serve now: {message}")
    return RedisError(message)


def redact(url: str) -> str:
    """`url` with its password (and any `password=` query value) replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0] if ":" in credentials else ""
        netloc = f"{user}:***@{host}" if ":" in credentials else f"***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}={value}" if sep else name
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Script:
    """A Lua script run with EVALSHA, loaded on first use and again after `NOSCRIPT`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    @classmethod
    def from_file(cls, package: str, name: str) -> Script:
        """The script kept as `name` in `package` (Lua sources live in `.lua` files)."""
        return cls(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


class _Protocol(asyncio.Protocol):
    """Replies arrive in the order commands were written: each resolves the oldest waiter."""

    def __init__(self, owner: Redis) -> None:
        self.reader = hiredis.Reader()
        # per command in flight: its caller's future, for an EVALSHA how to run it again as
        # EVAL after NOSCRIPT, and how to turn the reply into the caller's result
        self.waiters: deque[tuple[asyncio.Future[Any], tuple[Arg, ...] | None, Convert | None]] = deque()
        self.transport: asyncio.Transport | None = None
        self.replied = 0
        self.owner = owner
        self.deadlines: deque[tuple[float, int]] = deque()  # (when, replies expected by then) per write
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiters = self.waiters
        while (reply := self.reader.gets()) is not False:
            self.replied += 1
            waiter, fallback, convert = waiters.popleft()
            if waiter.done():  # its caller was cancelled
                continue
            if not isinstance(reply, hiredis.ReplyError):
                waiter.set_result(reply if convert is None else convert(reply))
            elif fallback is not None and str(reply).startswith("NOSCRIPT"):
                # the script was not run (first use, flush, restart): EVAL loads and runs it once
                self.owner._queue(self, waiter, fallback, None, convert)
            else:
                waiter.set_exception(reply_error(str(reply)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(StoreUnavailable(f"connection to Redis lost: {exc or 'closed'}"))
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.owner._lost(self)

    def fail(self, error: Exception) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()[0]
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
            raise ValueError(f"unsupported Redis URL {redact(url)!r}: use redis://[[user]:password@]host:port/db")
        try:
            parsed.port  # noqa: B018  # raises for a port that is not a number
            int(parsed.path.lstrip("/") or 0)
        except ValueError:
            raise ValueError(f"malformed Redis URL {redact(url)!r}: the port and db must be numbers") from None
        self.url = redact(url)
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
        """Run one command; raises `StoreUnavailable` on outage, timeout or a "not now" reply, else `RedisError`."""
        if self._protocol is None or self._loop is not asyncio.get_running_loop():
            await self._connect()
        return await self._send(args, None)

    def run(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], convert: Convert | None = None
    ) -> Awaitable[Any]:
        """EVALSHA `script`, falling back to EVAL (which loads it) after `NOSCRIPT`.

        `convert` turns the reply into the result. Returns a future, not a coroutine: the
        hot path adds no frame to the caller's stack.
        """
        if self._protocol is None or self._loop is not asyncio.get_running_loop():
            return self._run_connecting(script, keys, args, convert)
        n = len(keys)
        return self._send(("EVALSHA", script.sha, n, *keys, *args), ("EVAL", script.source, n, *keys, *args), convert)

    async def _run_connecting(
        self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], convert: Convert | None
    ) -> Any:
        await self._connect()
        return await self.run(script, keys, args, convert)

    def _send(
        self, args: tuple[Arg, ...], fallback: tuple[Arg, ...] | None, convert: Convert | None = None
    ) -> asyncio.Future[Any]:
        """Queue one command on the live connection; its reply resolves the returned future."""
        loop = self._loop
        assert loop is not None
        waiter: asyncio.Future[Any] = loop.create_future()
        protocol = self._protocol
        if protocol is None:
            waiter.set_exception(StoreUnavailable("connection to Redis lost"))
            return waiter
        self._queue(protocol, waiter, args, fallback, convert)
        return waiter

    def _queue(
        self,
        protocol: _Protocol,
        waiter: asyncio.Future[Any],
        args: tuple[Arg, ...],
        fallback: tuple[Arg, ...] | None,
        convert: Convert | None,
    ) -> None:
        protocol.waiters.append((waiter, fallback, convert))
        self._buffer.append(hiredis.pack_command(args))  # type: ignore[arg-type]
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush, protocol)  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    def _flush(self, protocol: _Protocol) -> None:
        self._flush_scheduled = False
        buffer, self._buffer = self._buffer, []
        if protocol is not self._protocol or protocol.transport is None:
            protocol.fail(StoreUnavailable("connection to Redis lost"))
            return
        protocol.transport.write(b"".join(buffer))
        self.commands_sent += len(buffer)
        self.writes += 1
        loop = self._loop
        assert loop is not None
        protocol.deadlines.append((loop.time() + self.timeout, protocol.replied + len(protocol.waiters)))
        if protocol.watchdog is None:
            protocol.watchdog = loop.call_later(self.timeout / 5, self._watch, protocol)

    def _watch(self, protocol: _Protocol) -> None:
        """Every timeout/5 while commands are pending: fail the connection if a reply is late.

        One timer per connection instead of one per write keeps the hot path cheap; a late
        reply is noticed within 1.2 x timeout.
        """
        protocol.watchdog = None
        deadlines = protocol.deadlines
        while deadlines and deadlines[0][1] <= protocol.replied:
            deadlines.popleft()
        if not deadlines or protocol is not self._protocol:
            return
        loop = self._loop
        assert loop is not None
        if deadlines[0][0] <= loop.time():
            deadlines.clear()
            protocol.fail(StoreUnavailable(f"Redis did not answer within {self.timeout * 1000:.0f} ms"))
            self._down_until = time.monotonic() + self.retry_interval
            self._drop(protocol)
            return
        protocol.watchdog = loop.call_later(self.timeout / 5, self._watch, protocol)

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
                raise StoreUnavailable(f"Redis at {self.host}:{self.port} is unreachable (retrying soon)")
            try:
                return await self._open(loop)
            except (TimeoutError, OSError, StoreUnavailable, RedisError) as error:
                self._protocol = None
                self._down_until = time.monotonic() + self.retry_interval
                raise StoreUnavailable(f"cannot connect to Redis at {self.host}:{self.port}: {error!r}") from None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.host, self.port),
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
        return f"<Redis {self.host}:{self.port}/{self.db} timeout={self.timeout}s>"  # never the password
