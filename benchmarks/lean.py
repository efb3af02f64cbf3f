"""Lean equivalents: the floor errorkit's own work on the hot path is measured against (issue 25).

Each class is a pure ASGI middleware written by hand for one job, as short as it can be while
doing that job with the wire behaviour of the errorkit case it stands beside (same Redis
commands per request, same status codes and headers). `benchmarks.hotpath` runs them in the
same wrk rounds as errorkit, and `benchmarks.instructions` counts their instructions under
callgrind, so the distance from a lean row to its errorkit row is what errorkit's own work
costs (stages, policies, failure handling, observers), and the distance from bare Starlette to
a lean row is what the job itself costs:

- `RawEvalsha` (BENCH_APP=raw_evalsha): one EVALSHA of errorkit's GCRA script per request, no
  headers: the floor of any Redis-backed limiter (bare Starlette plus one Redis round trip);
- `LeanRateLimit` (lean_redis): the API key checked against a table in memory, the same limit
  per workspace, the `X-RateLimit-*` headers and an `X-Request-ID`: `stack_redis`'s GET;
- `LeanStack` (lean_stack_redis): that, plus `Idempotency-Key` on POST: one script limits and
  claims, one completes (a replay is the first alone): `stack_redis`'s POST.

All three speak to Redis through `Redis`, a minimal client as auto-pipelined as errorkit's own
connection. They leave out what a product needs and a floor does not: failure policies (a
Redis error is a 500), Redis Cluster, timeouts, lease renewal, key validation, body size
limits, refusals in errorkit's documents, metrics and traces.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import math
import os
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import hiredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit._stages.algorithms import GCRA  # the same script as errorkit's limiter: Redis does the same work

Header = tuple[bytes, bytes]


class Redis(asyncio.Protocol):
    """One connection, opened at first use (SELECT and SCRIPT LOAD go first); the commands of one
    event-loop tick leave in one write, and hiredis's replies resolve their futures in order."""

    def __init__(self, url: str, *scripts: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.first = [("SELECT", parts.path.strip("/") or "0"), *(("SCRIPT", "LOAD", s) for s in scripts)]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.queued: list[bytes] = []
        self.waiting: deque[asyncio.Future[Any]] = deque()

    def call(self, *args: bytes | str | int) -> asyncio.Future[Any]:
        if self.loop is None:  # first use: connect (what is queued meanwhile leaves once connected)
            self.loop = asyncio.get_running_loop()
            self.loop.create_task(self.connect())
            for command in self.first:
                self.call(*command)
        elif not self.queued and self.transport is not None:
            self.loop.call_soon(self.flush)  # the tick's first command: the write goes at its end
        self.queued.append(hiredis.pack_command(args))  # type: ignore[arg-type]  # (its stub takes 1-tuples)
        self.waiting.append(future := self.loop.create_future())
        return future

    async def connect(self) -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: self, *self.address)
        except OSError as exc:
            self.connection_lost(exc)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.flush()

    def flush(self) -> None:
        if self.transport is not None:
            self.transport.write(b"".join(self.queued))
            self.queued.clear()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if future.done():  # (its request was cancelled)
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.loop = self.transport = None  # the next call reconnects
        self.queued, self.reader = [], hiredis.Reader()
        for future in self.waiting:
            if not future.done():
                future.set_exception(ConnectionError(f"Redis connection lost: {exc}"))
        self.waiting.clear()


def sha1(script: str) -> bytes:
    """The name Redis gives a loaded script (what SCRIPT LOAD answers)."""
    return hashlib.sha1(script.encode()).hexdigest().encode()


GCRA_SHA = sha1(GCRA.lua)  # KEYS: one per limit; ARGV: cost, then (period_us, limit) per key


async def respond(send: Send, status: int, body: bytes, headers: list[Header]) -> None:
    """A whole response in two messages, `body` sent as it is (JSON unless `headers` say otherwise)."""
    start = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": body})


class RawEvalsha:
    """The floor: one EVALSHA of errorkit's GCRA script per request, keyed by the client address;
    no headers, a bare 429 when over the limit."""

    def __init__(self, app: ASGIApp, *, url: str, limit: int, period: float) -> None:
        self.app = app
        self.redis = Redis(url, GCRA.lua)
        self.args = (b"1", b"%d" % (period * 1_000_000), b"%d" % limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = b"lean:raw:{%s}" % scope["client"][0].encode()
            reply = await self.redis.call(b"EVALSHA", GCRA_SHA, b"1", key, *self.args)
            if reply[1] == 0:
                await respond(send, 429, b'{"error":"rate_limited"}', [])
                return
        await self.app(scope, receive, send)


PREFIX, COUNTER = os.urandom(8).hex().encode(), itertools.count()  # request ids: 32 hex characters


def request_id() -> Header:
    return b"x-request-id", b"%s%016x" % (PREFIX, next(COUNTER))


async def unauthorized(send: Send) -> None:
    await respond(
        send, 401, b'{"error":"invalid_api_key"}', [(b"www-authenticate", b'Bearer realm="api"'), request_id()]
    )


class LeanRateLimit:
    """Auth + rate limit: `X-API-Key` (`<key id>.<secret>`) checked against the SHA-256 kept at
    start-up (401 else), one EVALSHA of errorkit's GCRA script per workspace (429 when over), and
    the `X-RateLimit-*` and `X-Request-ID` headers on the response. `keys`: token -> workspace."""

    scripts: tuple[str, ...] = (GCRA.lua,)

    def __init__(self, app: ASGIApp, *, url: str, keys: Mapping[str, str], limit: int, period: float) -> None:
        self.app = app
        self.redis = Redis(url, *self.scripts)
        self.limit, self.period_us, self.interval = limit, int(period * 1_000_000), period * 1_000_000 / limit
        self.args = (self.period_us, limit)  # the script's (period_us, limit)
        self.keys: dict[bytes, tuple[str, bytes, bytes]] = {}  # key id -> (secret's SHA-256, limit key, record prefix)
        for token, workspace in keys.items():
            key_id, secret = token.encode().split(b".", 1)
            bucket = b"lean:rl:{ws:%s}:*:%d/%g" % (workspace.encode(), limit, period)
            records = b"lean:ik:{ws:%s}:%s." % (workspace.encode(), key_id)  # the workspace's slot, the key's own
            self.keys[key_id] = (hashlib.sha256(secret).hexdigest(), bucket, records)

    def authenticate(self, token: bytes | None) -> tuple[str, bytes, bytes] | None:
        """What the key table holds for a valid token, else None."""
        key_id, _, secret = (token or b"").partition(b".")
        known = self.keys.get(key_id)
        if known is None or not hmac.compare_digest(hashlib.sha256(secret).hexdigest(), known[0]):
            return None
        return known

    def headers(self, now: int, admitted: int, tat: int) -> list[Header]:
        """The rate-limit headers (errorkit's GCRA arithmetic), a request id, and Retry-After when refused."""
        if admitted:
            remaining, reset, retry = max(0, self.limit - math.ceil((tat - now) / self.interval - 0.01)), tat, []
        else:
            wait = max(0, math.ceil(tat + self.interval - self.period_us - now))
            remaining, reset, retry = 0, now + wait, [(b"retry-after", b"%d" % max(1, -(-wait // 1_000_000)))]
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % -(-reset // 1_000_000)),
            request_id(),
            *retry,  # (refused: when to come back)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        known = self.authenticate(dict(scope["headers"]).get(b"x-api-key"))
        if known is None:
            await unauthorized(send)
            return
        now, admitted, _, tat = await self.redis.call(b"EVALSHA", GCRA_SHA, b"1", known[1], b"1", *self.args)
        headers = self.headers(now, admitted, tat)
        if not admitted:
            await respond(send, 429, b'{"error":"rate_limited"}', headers)
            return

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, sender)


# GCRA (errorkit's, for one limit and a cost of 1), then, if admitted, the idempotency claim.
# KEYS: the limit, the record. ARGV: period_us, limit, fingerprint (16 bytes), owner, lease_ms.
# A record is 'p' (running) or 'c' (completed), the fingerprint, then the owner or the response.
# Returns {now, admitted, tat} (admitted: claimed, or refused), or {now, 1, tat, record} when the key is taken.
CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local new = math.ceil(tat + period / limit)
if new - period > now then return {now, 0, tat} end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000))
local record = redis.call('GET', KEYS[2])
if record then return {now, 1, new, record} end
redis.call('SET', KEYS[2], 'p' .. ARGV[3] .. ARGV[4], 'PX', ARGV[5])
return {now, 1, new}
"""
# Its owner completes a claim (ARGV: owner, ttl_ms, response) or, without a response, frees the key.
COMPLETE = """
local record = redis.call('GET', KEYS[1])
if not record or string.sub(record, 1, 1) ~= 'p' or string.sub(record, 18) ~= ARGV[1] then return 0 end
if ARGV[3] then redis.call('SET', KEYS[1], 'c' .. string.sub(record, 2, 17) .. ARGV[3], 'PX', ARGV[2])
else redis.call('DEL', KEYS[1]) end
return 1
"""
CLAIM_SHA, COMPLETE_SHA = sha1(CLAIM), sha1(COMPLETE)
LEASE_MS, TTL_MS = b"30000", b"86400000"
KEPT = (b"content-type", b"location")  # the response headers a replay repeats


class LeanStack(LeanRateLimit):
    """Auth + rate limit + `Idempotency-Key` on POST: one EVALSHA limits and claims the key; a claimed
    request runs once, and one more EVALSHA keeps its response (status, Content-Type, Location, body)
    for 24 h before its last message leaves; a completed key with the same fingerprint (method, path,
    query, body) replays without running the app; else 422 (another request) or 409 (still running)."""

    scripts = (GCRA.lua, CLAIM, COMPLETE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"]) if scope["type"] == "http" and scope["method"] == "POST" else {}
        idempotency_key = headers.get(b"idempotency-key")
        if idempotency_key is None:  # GETs, and POSTs without a key: auth + rate limit alone
            await super().__call__(scope, receive, send)
            return
        known = self.authenticate(headers.get(b"x-api-key"))
        if known is None:
            await unauthorized(send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        request = b"POST\0%s\0%s\0%s" % (scope["path"].encode(), scope["query_string"], body)
        fingerprint = hashlib.blake2b(request, digest_size=16).digest()
        record, owner = known[2] + idempotency_key, b"%016x" % next(COUNTER)
        now, admitted, tat, *found = await self.redis.call(
            b"EVALSHA", CLAIM_SHA, b"2", known[1], record, *self.args, fingerprint, owner, LEASE_MS
        )
        own = self.headers(now, admitted, tat)
        if not admitted:
            await respond(send, 429, b'{"error":"rate_limited"}', own)
        elif not found:
            await self.run(scope, body, receive, send, record, owner, own)
        elif found[0][1:17] != fingerprint:
            await respond(send, 422, b'{"error":"idempotency_key_reused"}', own)
        elif found[0][:1] == b"c":
            head, stored = found[0][17:].split(b"\n\n", 1)
            status, *lines = head.split(b"\n")
            kept = [(name, value) for name, _, value in (line.partition(b":") for line in lines)]
            replayed = [(b"content-length", b"%d" % len(stored)), (b"idempotent-replayed", b"true")]
            await send({"type": "http.response.start", "status": int(status), "headers": [*kept, *replayed, *own]})
            await send({"type": "http.response.body", "body": stored})
        else:
            await respond(send, 409, b'{"error":"idempotency_key_in_use"}', [*own, (b"retry-after", b"1")])

    async def run(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, record: bytes, owner: bytes, own: list[Header]
    ) -> None:
        """Run the app once (its body given back), keeping its response before the last message leaves
        (a 5xx, or a failure before it ends, frees the key instead)."""
        first: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        response: list[bytes] = []  # `<status>\n<name>:<value>\n...\n`, then the body's chunks
        completed = False

        async def replaying() -> Message:
            return first.pop() if first else await receive()

        async def sender(message: Message) -> None:
            nonlocal completed
            if message["type"] == "http.response.start":
                kept = [b"%s:%s\n" % (k, v) for k, v in message.get("headers", ()) if k in KEPT]
                response.append(b"%d\n%s\n" % (message["status"], b"".join(kept)))
                message["headers"] = [*message.get("headers", ()), *own]
            elif message["type"] == "http.response.body":
                response.append(message.get("body", b""))
                if not message.get("more_body", False):
                    keep = (TTL_MS, b"".join(response)) if response[0][:1] != b"5" else ()
                    await self.redis.call(b"EVALSHA", COMPLETE_SHA, b"1", record, owner, *keep)
                    completed = True
            await send(message)

        try:
            await self.app(scope, replaying, sender)
        finally:
            if not completed:
                await self.redis.call(b"EVALSHA", COMPLETE_SHA, b"1", record, owner)
