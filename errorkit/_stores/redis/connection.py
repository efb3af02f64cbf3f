"""The one place errorkit talks to a Redis server: a multiplexed, auto-pipelined asyncio connection.

Every command issued during one event-loop tick, by any number of concurrent requests,
leaves in a single write on one connection, and the replies are read back in one pass
(hiredis parses them). That amortises the per-round-trip cost that makes a "one redis-py
call per request" middleware slow. `Redis` is that connection to one server (TCP, TLS or a
unix socket); `errorkit._stores.redis.topology` builds Sentinel and Cluster clients from it.

Failure behaviour, chosen for middleware that must never stall an API:
- nothing reaches a connection before its handshake (AUTH, SELECT, the role check) has
  answered; a failed handshake closes the socket;
- a reply later than the per-command deadline (`Timeouts.command`, 50 ms by default) fails
  the commands that were waiting with `StoreUnavailable` (each stage applies its failure
  policy), but the connection is kept: late replies are read and dropped in order (a
  command's `late` hook sees its reply, so an idempotency claim nobody waits for is
  released); the connection is torn down only when it is dead (a transport error, or
  nothing answered for `Timeouts.dead_after`), then reconnected with exponential backoff
  and jitter. Once Redis answers again, the next command is decided by Redis;
- error replies that say Redis cannot serve right now (out of memory, read-only replica,
  loading, busy, cluster down) raise `StoreUnavailable`; `READONLY`, `LOADING` and
  `MASTERDOWN` also drop the connection (it points at the wrong server, or too early), so
  the next command reconnects (and Sentinel re-discovers). `MOVED`/`ASK` raise `Redirect`
  for the Cluster client; any other error reply raises `RedisError`;
- nothing is retried blindly, so errorkit never runs a command twice; the only resend is
  EVALSHA after `NOSCRIPT` (as EVAL) and a Cluster redirect, which Redis answers without
  running anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, Protocol, cast

import hiredis

from errorkit._common.exceptions import RedisError, StoreError, StoreUnavailable
from errorkit._observe.observer import Observer, RedisFailure
from errorkit._stores.redis.urls import Address, RedisURL, parse_url

logger = logging.getLogger("errorkit.store")

Arg = str | bytes | int | float
Convert = Callable[[Any], Any]


class Late(Protocol):
    """What a command that takes something (a slot, a unit, a claim) does when its caller cannot."""

    def __call__(self, result: Any) -> None:
        """The reply came after its caller gave up (deadline): give back what it took."""

    def unknown(self) -> None:
        """The connection went before the reply: the command may have run; give back by token."""


#: Error replies meaning "not now" (an outage in all but name), not "never".
UNAVAILABLE_REPLIES = frozenset(
    {"OOM", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "MISCONF"}
)
#: Of those, the replies that mean this connection points at the wrong server (or too early).
MISDIRECTED_REPLIES = frozenset({"READONLY", "LOADING", "MASTERDOWN"})


class Redirect(RedisError):
    """`MOVED` or `ASK` from a Redis Cluster node: the slot is served elsewhere (nothing ran)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        kind, slot, address = message.split(" ", 2)
        host, _, port = address.rpartition(":")
        self.kind = kind
        self.slot = int(slot)
        self.address: Address = (host, int(port))


def reply_error(message: str) -> Exception:
    """The exception for an error reply: `StoreUnavailable`, `Redirect` or `RedisError`."""
    code = message.split(" ", 1)[0]
    if code in UNAVAILABLE_REPLIES:
        return StoreUnavailable(f"Redis cannot serve now: {message}")
    if code in ("MOVED", "ASK"):
        return Redirect(message)
    return RedisError(message)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a `RedisBackend` waits for Redis, in seconds: `RedisBackend(url, timeout=Timeouts(...))`.

    A number as `timeout=` sets `command` alone; the other fields keep their defaults.

    - `command` (0.05): a reply later than this fails its command, and the stage applies its
      failure policy; the connection is kept, and the late reply is read and dropped.
    - `connect` (0.5): connecting, TLS and the handshake (AUTH, SELECT...) together; a connection
      that takes longer fails.
    - `dead_after` (1.0): when commands are pending and nothing has answered for this long, the
      connection is torn down and a new one opened.
    - `backoff` (0.05): after a failed connection, the wait before the next attempt; commands
      fail at once meanwhile. It doubles with each failure in a row, jittered (between half of
      it and all of it).
    - `backoff_cap` (2.0): the longest that wait grows to.

    See [the store's options](https://errorkit.github.io/errorkit/guides/redis/#the-stores-options).
    """

    command: float = 0.05
    connect: float = 0.5
    dead_after: float = 1.0
    backoff: float = 0.05
    backoff_cap: float = 2.0

    @classmethod
    def of(cls, timeout: float | Timeouts) -> Timeouts:
        return timeout if isinstance(timeout, Timeouts) else cls(command=timeout)


#: Script sources by SHA-1: an EVALSHA answered `NOSCRIPT` is sent again as EVAL from its own arguments.
_SOURCES: dict[str, str] = {}


class Script:
    """A Lua script run with EVALSHA, loaded on first use and again after `NOSCRIPT`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        _SOURCES[self.sha] = source

    @classmethod
    def from_file(cls, package: str, name: str) -> Script:
        """The script kept as `name` in `package` (Lua sources live in `.lua` files)."""
        return cls(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


class Prepared:
    """A script call packed for the wire once and sent as often as it is asked for: the limiter's count
    of one identity under one policy is the same bytes every time (Redis reads the clock itself).

    Packing the limiter's 7-argument EVALSHA (`hiredis.pack_command`) cost 11.9k instructions a
    request, and building its keys and argument tuple more; see benchmarks/README.md, issue 25.
    """

    __slots__ = ("args", "command", "convert", "keys", "packed", "script")

    def __init__(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], convert: Convert | None) -> None:
        self.script = script
        self.keys = tuple(keys)
        self.args = tuple(args)
        self.convert = convert
        self.command: tuple[Arg, ...] = ("EVALSHA", script.sha, len(self.keys), *self.keys, *self.args)
        self.packed: bytes = hiredis.pack_command(self.command)  # type: ignore[arg-type]  # (hiredis's stub: a 1-tuple)


class EvalshaLayout:
    """An EVALSHA whose first keys and last arguments never change, packed once: `pack(*values)` puts
    the request's own keys and arguments between them.

    Packing only the request's own arguments costs about a third of what `hiredis.pack_command`
    spends on the whole command (6.7k instructions against 20.1k for the idempotency claim's 13
    arguments, with a bytes format per argument): most of the packing is of what never changes.
    The command is now one bytes format with the request's own values in the middle, cheaper still.
    """

    __slots__ = ("args", "format", "keys", "script")

    def __init__(self, script: Script, keys: Sequence[Arg], own_keys: int, own_args: int, args: Sequence[Arg]) -> None:
        self.script = script
        self.keys = tuple(keys)  # the keys that come first
        self.args = tuple(args)  # the arguments that come last
        count = 3 + len(self.keys) + own_keys + own_args + len(self.args)
        head = b"*%d\r\n%s" % (count, _bulk_strings(("EVALSHA", script.sha, len(self.keys) + own_keys, *self.keys)))
        tail = _bulk_strings(self.args)
        # one bytes format for the whole command: 0.9 µs a call against 1.3 µs for a join of a
        # format per value (the claim's four values, `python -m timeit`)
        between = b"$%d\r\n%s\r\n" * (own_keys + own_args)
        self.format = head.replace(b"%", b"%%") + between + tail.replace(b"%", b"%%")

    def pack(self, *values: bytes) -> bytes:
        """The command with `values` (the request's own keys, then its own arguments) in the middle."""
        sized: list[int | bytes] = []
        for value in values:
            sized += (len(value), value)
        return self.format % tuple(sized)


def _bulk_strings(values: Sequence[Arg]) -> bytes:
    """`values` as Redis's protocol writes a command's arguments (without the array's header)."""
    if not values:
        return b""
    packed: bytes = hiredis.pack_command(tuple(values))  # type: ignore[arg-type]  # (hiredis's stub: a 1-tuple)
    return packed.split(b"\r\n", 1)[1]


_Pending = tuple["asyncio.Future[Any]", "tuple[Arg, ...] | None", "Convert | None", "Late | None"]


class _Protocol(asyncio.Protocol):
    """Replies arrive in the order commands were written: each resolves the oldest waiter."""

    def __init__(self, owner: Redis) -> None:
        self.reader = hiredis.Reader()
        # per command in flight: its caller's future, for an EVALSHA how to run it again as
        # EVAL after NOSCRIPT, how to turn the reply into the result, and who undoes it when
        # nobody waits for its reply or the reply never comes
        self.waiters: deque[_Pending] = deque()
        self.transport: asyncio.Transport | None = None
        self.replied = 0
        self.owner = owner
        self.deadlines: deque[tuple[float, int]] = deque()  # (when, replies expected by then) per write
        self.watchdog: asyncio.TimerHandle | None = None
        self.last_heard = 0.0  # loop time of the last reply, or of the first write after a quiet time
        self.lost = False
        self.sent: deque[tuple[float, int, int]] = deque()  # with an observer: (when, replies by then, commands)
        self.published = False  # its handshake answered: in use (failures before that are the connect's)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.last_heard = self.owner._loop.time() if self.owner._loop is not None else 0.0
        waiters = self.waiters
        misdirected = False

        try:  # (a try costs nothing until something raises)
            while (reply := self.reader.gets()) is not False:
                try:
                    waiter, evalsha, convert, late = waiters.popleft()
                except IndexError:  # nobody asked: a message pushed to a subscribed connection
                    if self.owner.on_push is not None:
                        self.owner.on_push(reply)
                    continue

                self.replied += 1
                is_error = isinstance(reply, hiredis.ReplyError)
                if is_error and str(reply).split(" ", 1)[0] in MISDIRECTED_REPLIES:
                    misdirected = True

                if waiter.done():  # its caller gave up (deadline) or was cancelled: drop the reply
                    if late is not None and not is_error:
                        with contextlib.suppress(StoreError):
                            late(reply if convert is None else convert(reply))
                    continue

                if not is_error:
                    try:  # a store's convert raises StoreError for a reply that means "cannot answer"
                        waiter.set_result(reply if convert is None else convert(reply))
                    except StoreError as exc:
                        waiter.set_exception(exc)
                elif evalsha is not None and str(reply).startswith("NOSCRIPT"):
                    # the script was not run (first use, flush, restart, a node new to the slot): EVAL loads and
                    # runs it once, after ASKING again if the EVALSHA had it (else an importing node says MOVED)
                    self.owner._evaluate(self, waiter, evalsha, convert, late)
                else:
                    error = reply_error(str(reply))
                    waiter.set_exception(error)
                    if isinstance(error, StoreUnavailable) and self.published:
                        self.owner._report_failure("unavailable", 1)
        except hiredis.ProtocolError as exc:  # not Redis at the other end (an HTTP server on that port, say)
            self.fail(StoreUnavailable(f"the server does not speak Redis's protocol ({exc})"))
            if self.transport is not None:
                self.transport.abort()
            return

        if self.sent:
            self.owner._replied(self)
        if misdirected:
            self.owner._misdirected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        failed = self.fail(StoreUnavailable(f"connection to Redis lost: {exc or 'closed'}"))
        if self.published:  # (before that, the connect's failure is reported)
            self.owner._report_failure("connection_lost", failed)

        if self.watchdog is not None:
            self.watchdog.cancel()
        self.owner._lost(self)

    def fail(self, error: Exception, count: int | None = None) -> int:
        """Fail the first `count` waiters (all when None); failed ones stay queued if the connection lives.

        All (the connection is gone): no reply will come, so a command that takes something may
        have run or not; its `late` hook gives it back by token on another connection, so a
        unit, slot or claim is never held for a request that was refused or let through.
        Returns how many callers it failed (those that had not given up already)."""
        failed = 0
        if count is None:
            while self.waiters:
                waiter, _, _, late = self.waiters.popleft()
                if late is not None:
                    try:
                        late.unknown()
                    except Exception:  # (no event loop left to give back on): its lease frees it
                        logger.exception("could not give back what a command on a lost connection took")
                if not waiter.done():
                    waiter.set_exception(error)
                    failed += 1
            return failed

        for index, pending in enumerate(self.waiters):
            if index >= count:
                break
            if not pending[0].done():
                pending[0].set_exception(error)
                failed += 1
        return failed


class Redis:
    """A multiplexed connection to one Redis server, shared by all requests of a process.

    `url` is `redis://`, `rediss://` or `unix://` (see `errorkit._stores.redis.urls`), or an
    already parsed `RedisURL` with `address` naming the server (Sentinel and Cluster use
    that). `timeout` is the per-command deadline in seconds, or a `Timeouts`. `role`, when
    set, is checked with `ROLE` during the handshake (Sentinel's master must be "master").
    `on_lost` hears that the connection went; `on_push` receives what Redis sends that no
    command asked for (the messages of a connection that has subscribed). `observer` hears
    of replies (timed per write), failures and the connection opening and closing.
    """

    def __init__(
        self,
        url: str | RedisURL = "redis://127.0.0.1:6379/0",
        *,
        timeout: float | Timeouts = 0.05,
        address: Address | None = None,
        role: str | None = None,
        select_db: bool = True,
        on_lost: Callable[[], None] | None = None,
        on_push: Callable[[Any], None] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.config = parse_url(url) if isinstance(url, str) else url
        if self.config.topology != "single" and address is None:
            raise ValueError(f"{self.config.text!r} is not one server: use errorkit._stores.redis.topology.connect()")

        self.address: Address | None = address or (self.config.addresses[0] if self.config.addresses else None)
        self.timeouts = Timeouts.of(timeout)
        self.role = role
        self.select_db = select_db
        self.on_lost = on_lost
        self.on_push = on_push
        self.observer = observer
        self.node = self.where  # how metrics name this server
        self.url = self.config.text  # never the password

        self._up = False  # a connection is published (for the observer's connection count)
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        self._failures = 0
        self._buffer: list[bytes] = []
        self._flush_scheduled = False

        self.commands_sent = 0
        self.writes = 0
        self.connections_opened = 0

    async def primary_addresses(self, *, fresh: bool = False) -> list[Address | None]:
        """This one server (for a `KeyWatch`)."""
        return [self.address]

    def dedicated(
        self, address: Address | None, *, on_push: Callable[[Any], None], on_lost: Callable[[], None]
    ) -> Redis:
        """A second connection to this server, for subscribing (same address, TLS and credentials)."""
        return Redis(
            self.config,
            timeout=self.timeouts,
            address=address,
            select_db=False,
            on_push=on_push,
            on_lost=on_lost,
            observer=self.observer,
        )

    def observe(self, observer: Observer | None) -> None:
        """Report to `observer` from now on (None: stop); an open connection moves from the old one's count to its."""
        if self._up and self.observer is not None:
            self.observer.redis_connection(self.node, False)
        self.observer = observer
        if self._up and observer is not None:
            observer.redis_connection(self.node, True)

    def abandon(self) -> None:
        """Its event loop is gone (tests, a forked worker): count its connection closed."""
        self._down()

    @property
    def where(self) -> str:
        if self.config.unix_path is not None:
            return self.config.unix_path
        assert self.address is not None
        return f"{self.address[0]}:{self.address[1]}"

    async def execute(self, *args: Arg, asking: bool = False) -> Any:
        """Run one command; `StoreUnavailable` on outage, timeout or a "not now" reply, else `RedisError`.

        `asking` sends `ASKING` first (a Cluster `ASK` redirect), in the same write.
        """
        if self._protocol is None or self._loop is not asyncio.get_running_loop():
            await self._connect()
        if asking:
            self._send(("ASKING",), None)
        return await self._send(args, None)

    def run(
        self,
        script: Script,
        keys: Sequence[Arg],
        args: Sequence[Arg],
        convert: Convert | None = None,
        late: Late | None = None,
        *,
        asking: bool = False,
        packed: bytes | None = None,
    ) -> Awaitable[Any]:
        """EVALSHA `script`, falling back to EVAL (which loads it) after `NOSCRIPT`.

        `convert` turns the reply into the result; `late` receives the converted reply of
        a command whose caller had already given up. `asking` sends `ASKING` first (a
        Cluster `ASK` redirect). `packed`: the EVALSHA as the caller packed it already
        (`pack_evalsha`). Returns a future, not a coroutine: the hot path adds no frame to
        the caller's stack.
        """
        loop = self._loop
        protocol = self._protocol
        if protocol is None or loop is not asyncio.get_running_loop():
            return self._run_connecting(script, keys, args, convert, late, asking)

        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        if packed is not None and not asking:  # (packed already: queued here, two calls fewer than `_send`'s way)
            waiter: asyncio.Future[Any] = loop.create_future()
            self._write(protocol, packed, (waiter, command, convert, late))
            return waiter
        if asking:
            self._send(("ASKING",), None)
            return self._send(command, ("ASKING", *command), convert, late, packed)  # after NOSCRIPT: ASKING, EVAL
        return self._send(command, command, convert, late, packed)  # after NOSCRIPT it goes again as EVAL

    def run_prepared(self, prepared: Prepared, *, asking: bool = False) -> Awaitable[Any]:
        """`run()` of a call packed already: the same command, without packing it again."""
        loop = self._loop
        protocol = self._protocol
        if protocol is None or loop is not asyncio.get_running_loop() or asking:
            return self.run(prepared.script, prepared.keys, prepared.args, prepared.convert, asking=asking)

        waiter: asyncio.Future[Any] = loop.create_future()
        self._write(protocol, prepared.packed, (waiter, prepared.command, prepared.convert, None))
        return waiter

    async def _run_connecting(
        self,
        script: Script,
        keys: Sequence[Arg],
        args: Sequence[Arg],
        convert: Convert | None,
        late: Late | None,
        asking: bool,
    ) -> Any:
        await self._connect()
        return await self.run(script, keys, args, convert, late, asking=asking)

    def _send(
        self,
        args: tuple[Arg, ...],
        evalsha: tuple[Arg, ...] | None,
        convert: Convert | None = None,
        late: Late | None = None,
        packed: bytes | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one command on the live connection; its reply resolves the returned future.

        `evalsha`: the command itself when it is an EVALSHA, sent again as EVAL after `NOSCRIPT`;
        `packed`: the command as it goes on the wire, when the caller packed it already.
        """
        loop = self._loop
        assert loop is not None
        waiter: asyncio.Future[Any] = loop.create_future()

        protocol = self._protocol
        if protocol is None:
            waiter.set_exception(StoreUnavailable(f"connection to Redis at {self.where} lost"))
            self._report_failure("connection_lost", 1)
            return waiter
        self._queue(protocol, waiter, args, evalsha, convert, late, packed)
        return waiter

    def _queue(
        self,
        protocol: _Protocol,
        waiter: asyncio.Future[Any],
        args: tuple[Arg, ...],
        evalsha: tuple[Arg, ...] | None,
        convert: Convert | None,
        late: Late | None,
        packed: bytes | None = None,
    ) -> None:
        if packed is None:
            try:  # packed before its waiter is queued: a command that cannot be sent leaves the replies in step
                packed = hiredis.pack_command(args)  # type: ignore[arg-type]  # (hiredis's stub: a 1-tuple)
            except (UnicodeEncodeError, TypeError, ValueError) as exc:
                waiter.set_exception(ValueError(f"cannot send {args[0]!r} to Redis: {exc}"))
                return

        self._write(protocol, packed, (waiter, evalsha, convert, late))

    def _write(self, protocol: _Protocol, packed: bytes, pending: _Pending) -> None:
        """Add a command to the write that leaves at the end of this loop tick, and its waiter to the
        queue its reply resolves (the two together: replies come back in the order commands went)."""
        protocol.waiters.append(pending)
        self._buffer.append(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop
            assert loop is not None
            loop.call_soon(self._flush, protocol)

    def _evaluate(
        self,
        protocol: _Protocol,
        waiter: asyncio.Future[Any],
        evalsha: tuple[Arg, ...],
        convert: Convert | None,
        late: Late | None,
    ) -> None:
        """Send an EVALSHA answered `NOSCRIPT` again as EVAL (which loads the script), in one write with
        the `ASKING` it was sent after, if any (`evalsha` then starts with it)."""
        if evalsha[0] == "ASKING":
            evalsha = evalsha[1:]
            self._queue(protocol, waiter.get_loop().create_future(), ("ASKING",), None, None, None)
        self._queue(protocol, waiter, ("EVAL", _SOURCES[str(evalsha[1])], *evalsha[2:]), None, convert, late)

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        self._down()
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    def _flush(self, protocol: _Protocol) -> None:
        self._flush_scheduled = False
        buffer, self._buffer = self._buffer, []
        if protocol is not self._protocol or protocol.transport is None:
            failed = protocol.fail(StoreUnavailable(f"connection to Redis at {self.where} lost"))
            self._report_failure("connection_lost", failed)
            return

        loop = self._loop
        assert loop is not None
        now = loop.time()
        if len(protocol.waiters) == len(buffer):  # nothing was outstanding: the wait starts now
            protocol.last_heard = now
        protocol.transport.write(b"".join(buffer))
        self.commands_sent += len(buffer)
        self.writes += 1

        expected = protocol.replied + len(protocol.waiters)
        protocol.deadlines.append((now + self.timeouts.command, expected))
        if self.observer is not None:
            protocol.sent.append((now, expected, len(buffer)))
        if protocol.watchdog is None:
            protocol.watchdog = loop.call_later(self.timeouts.command / 5, self._watch, protocol)

    def _watch(self, protocol: _Protocol) -> None:
        """Every command/5 seconds while commands are pending: fail the late ones; drop a dead connection.

        One timer per connection instead of one per write keeps the hot path cheap; a late
        reply is noticed within 1.2 x the deadline.
        """
        protocol.watchdog = None
        if protocol is not self._protocol:
            return

        loop = self._loop
        assert loop is not None
        now = loop.time()
        deadlines = protocol.deadlines
        while deadlines and (deadlines[0][1] <= protocol.replied or deadlines[0][0] <= now):
            when, expected = deadlines.popleft()
            if expected > protocol.replied and when <= now:  # late: fail those callers, keep reading
                late = StoreUnavailable(
                    f"Redis at {self.where} did not answer within {self.timeouts.command * 1000:.0f} ms"
                )
                failed = protocol.fail(late, expected - protocol.replied)
                self._report_failure("timeout", failed)

        if protocol.waiters and now - protocol.last_heard > self.timeouts.dead_after:
            failed = protocol.fail(
                StoreUnavailable(f"Redis at {self.where} answered nothing for {self.timeouts.dead_after:g} s")
            )
            self._report_failure("connection_lost", failed)
            self._drop(protocol)
            return

        if protocol.waiters:
            protocol.watchdog = loop.call_later(self.timeouts.command / 5, self._watch, protocol)

    def _replied(self, protocol: _Protocol) -> None:
        """Tell the observer of the writes now wholly answered (each command timed from its write)."""
        observer, sent = self.observer, protocol.sent
        if observer is None:
            sent.clear()
            return

        now = self._loop.time() if self._loop is not None else 0.0
        while sent and sent[0][1] <= protocol.replied:
            when, _, commands = sent.popleft()
            observer.redis_replied(self.node, now - when, commands)

    def _report_failure(self, reason: RedisFailure, commands: int) -> None:
        """Tell the observer that `commands` failed for `reason` (nothing when none did)."""
        if commands and self.observer is not None:
            self.observer.redis_failed(self.node, reason, commands)

    def _down(self) -> None:
        """The published connection is gone: tell the observer once."""
        if self._up:
            self._up = False
            if self.observer is not None:
                self.observer.redis_connection(self.node, False)

    def _drop(self, protocol: _Protocol) -> None:
        """Nothing answered for `dead_after`: abort the connection (published or not), then `on_lost`."""
        self._tear_down(protocol, "abort")

    def _misdirected(self, protocol: _Protocol) -> None:
        """READONLY, LOADING or MASTERDOWN: this server cannot take our writes; reconnect (or re-discover)."""
        if protocol is self._protocol:
            self._tear_down(protocol, "close")  # replies still in flight are failed by connection_lost

    def _lost(self, protocol: _Protocol) -> None:
        """The transport is gone (`connection_lost`): if it was the published one, unpublish it and tell."""
        if protocol is self._protocol:
            self._tear_down(protocol, None)

    def _tear_down(self, protocol: _Protocol, end: Literal["abort", "close"] | None) -> None:
        """Unpublish `protocol` if it is the published one (the observer hears it), end its transport
        (`abort` drops what is unsent, `close` sends it first), then tell `on_lost`."""
        if protocol is self._protocol:
            self._protocol = None
            self._down()

        if end is not None and protocol.transport is not None:
            if end == "abort":
                protocol.transport.abort()
            else:
                protocol.transport.close()

        if self.on_lost is not None:
            self.on_lost()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests, a forked worker)
            self._loop = loop
            self._protocol = None
            self._lock = asyncio.Lock()
            self._buffer = []
            self._flush_scheduled = False
            self._down()

        async with self._lock:
            if self._protocol is not None:
                return self._protocol
            if time.monotonic() < self._retry_at:
                self._report_failure("backoff", 1)
                raise StoreUnavailable(f"Redis at {self.where} is unreachable (reconnecting with backoff)")

            try:
                protocol = await asyncio.wait_for(self._open(loop), self.timeouts.connect)
            except (TimeoutError, OSError, ssl.SSLError, StoreUnavailable, RedisError) as error:
                self._failures += 1
                delay = min(self.timeouts.backoff_cap, self.timeouts.backoff * 2 ** (self._failures - 1))
                self._retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)
                reason = "timed out" if isinstance(error, TimeoutError) else repr(error)
                if self.on_lost is not None:  # Sentinel asks again, Cluster re-reads its slots
                    self.on_lost()
                self._report_failure("connect", 1)
                raise StoreUnavailable(f"cannot connect to Redis at {self.where}: {reason}") from None

            self._failures = 0
            self._protocol = protocol  # published only now: the handshake has answered
            protocol.published = self._up = True
            if self.observer is not None:
                self.observer.redis_connection(self.node, True)
            return protocol

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        config = self.config
        context = config.ssl_context
        if config.unix_path is not None:
            _, protocol = await loop.create_unix_connection(lambda: _Protocol(self), config.unix_path, ssl=context)
        else:
            assert self.address is not None
            host, port = self.address
            _, protocol = await loop.create_connection(
                lambda: _Protocol(self), host, port, ssl=context, server_hostname=host if context else None
            )
        self.connections_opened += 1

        try:
            answered = False
            if config.password is not None:
                auth = ("AUTH", config.username, config.password) if config.username else ("AUTH", config.password)
                await self._handshake(protocol, auth)
                answered = True
            if self.select_db and config.db:
                await self._handshake(protocol, ("SELECT", config.db))
                answered = True
            if self.role is not None:
                role = await self._handshake(protocol, ("ROLE",))
                if role[0].decode() != self.role:
                    raise StoreUnavailable(f"Redis at {self.where} is a {role[0].decode()}, not the {self.role}")
                answered = True
            if not answered:  # the server must answer once before anyone uses the connection
                await self._handshake(protocol, ("PING",))  # (TLS 1.3 refuses a client certificate only now)
        except BaseException:
            if protocol.transport is not None:
                protocol.transport.close()  # never leave a half-open socket behind
            raise
        return protocol

    async def _handshake(self, protocol: _Protocol, args: tuple[Arg, ...]) -> Any:
        """One command on a connection nobody else can see yet."""
        assert self._loop is not None and protocol.transport is not None
        if protocol.lost:
            raise StoreUnavailable(f"connection to Redis at {self.where} lost during the handshake")

        packed = hiredis.pack_command(args)  # type: ignore[arg-type]  # (hiredis's stub: a 1-tuple)
        waiter: asyncio.Future[Any] = self._loop.create_future()
        protocol.waiters.append((waiter, None, None, None))
        protocol.transport.write(packed)
        return await waiter

    def __repr__(self) -> str:
        return f"<Redis {self.url} timeout={self.timeouts.command}s>"  # never the password
