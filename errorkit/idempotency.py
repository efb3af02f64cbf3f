"""`Idempotency-Key` replay: a request runs at most once per key; retries get the first response.

The state machine's steps (claim, complete, release, renew) are atomic backend steps
(Lua on Redis, Python twins in memory); everything else lives here:

- **claim**: absent -> in progress, with a request fingerprint (method, path, body), a
  random owner token and a lease. A crashed worker's claim expires with its lease, so the
  key becomes usable again (no key is stuck in 409 forever).
- **complete** (owner only): the status, an allow-list of headers and the body are kept
  for `ttl` seconds (24 h). **release** (owner only) on an exception, a response that is
  not stored, or a cancelled handler, so a retry can run again. The lease is renewed only
  if the handler outlives a third of it (a fast handler costs claim + complete).
- **replay**: the stored status, headers and body byte for byte, plus
  `Idempotent-Replayed: true`; the handler does not run.
- **conflicts**: malformed key -> 400, key missing where required -> 400, same key with a
  different request -> 422, same request still running -> 409 with `Retry-After`
  (or, with `wait=`, wait briefly and replay).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit.auth.keys import Principal
from errorkit.backends.base import Backend, BackendUnavailable
from errorkit.errors import APIError
from errorkit.paths import PathPatterns
from errorkit.registry import Registry

if TYPE_CHECKING:
    from errorkit.kit import ErrorKit

logger = logging.getLogger("errorkit.idempotency")

IDEMPOTENCY_CODES = Registry("idempotency")
IDEMPOTENCY_CODES.define(
    "invalid_idempotency_key",
    status=400,
    message="The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
    when="The Idempotency-Key header is empty, too long or not printable ASCII.",
    fix="Send a unique value such as a UUID.",
    group="idempotency",
)
IDEMPOTENCY_CODES.define(
    "idempotency_key_required",
    status=400,
    message="This endpoint requires an Idempotency-Key header.",
    when="The endpoint only accepts requests that carry an Idempotency-Key.",
    fix="Send a unique Idempotency-Key (a UUID) with the request, and the same one on retries.",
    group="idempotency",
)
IDEMPOTENCY_CODES.define(
    "idempotency_key_reused",
    status=422,
    message="This Idempotency-Key was already used with a different request.",
    when="A key was sent again with another method, path or body than its first request.",
    fix="Use a new key for a new request; resend the original request unchanged to get its response.",
    group="idempotency",
)
IDEMPOTENCY_CODES.define(
    "idempotency_key_in_use",
    status=409,
    message="A request with this Idempotency-Key is still being processed.",
    when="The first request with this key has not finished yet.",
    fix="Retry after Retry-After seconds to receive its response.",
    group="idempotency",
    retryable=True,
    retry_after=1,
)
IDEMPOTENCY_CODES.define(
    "idempotency_response_unavailable",
    status=409,
    message="The request with this Idempotency-Key was processed, but its response cannot be replayed.",
    when="The first response was larger than the replay limit, so it was not stored. The request ran once.",
    fix="Fetch the resource it created instead of retrying, or use a new key for a new request.",
    group="idempotency",
)

_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_NOT_STORED = frozenset({401, 403, 408, 409, 429})
_ALWAYS_REPLAYED = ("content-type", "location")
_NEVER_REPLAYED = frozenset({"set-cookie", "x-request-id", "retry-after", "date", "server", "content-length"})


class Idempotency:
    """Makes `methods` requests (POST by default) carrying `Idempotency-Key` run at most once.

    - `ttl` (seconds, 24 h) keeps completed responses; `lease` bounds how long a crashed
      worker can hold a key;
    - `exempt` / `required`: paths (a trailing `*` matches a prefix) that ignore keys, or
      that refuse requests without one;
    - `replay_headers`: response headers stored besides `Content-Type` and `Location`
      (`Set-Cookie` and per-request headers never are);
    - `max_response_bytes`: larger responses are not stored; a retry gets 409
      `idempotency_response_unavailable` instead of running again;
    - `store_5xx`: also store server errors (off: they are released for a retry);
    - `scope_of`: `(scope, principal) -> str`, whose keys are separate (default: the
      workspace and API key, so one tenant can never replay another's response);
    - `on_failure`: `"fail_closed"` (503 while the store is unreachable, the default: the
      guarantee cannot be kept) or `"fail_open"` (run the request unguarded);
    - `wait`: seconds to wait for a running first request and replay it, instead of 409.
    """

    def __init__(
        self,
        kit: ErrorKit,
        backend: Backend,
        *,
        methods: Iterable[str] = ("POST",),
        ttl: float = 24 * 3600,
        lease: float = 30.0,
        exempt: Iterable[str] = (),
        required: Iterable[str] = (),
        replay_headers: Iterable[str] = (),
        max_response_bytes: int = 1 << 20,
        max_request_bytes: int = 10 << 20,
        store_5xx: bool = False,
        scope_of: Callable[[Scope, Principal | None], str] | None = None,
        on_failure: Literal["fail_closed", "fail_open"] = "fail_closed",
        wait: float = 0.0,
        mismatch_code: str = "idempotency_key_reused",
        prefix: str = "errorkit:idem",
    ) -> None:
        self.kit = kit
        self.backend = backend
        self.methods = frozenset(m.upper() for m in methods)
        self.ttl_ms = int(ttl * 1000)
        self.lease_ms = int(lease * 1000)
        self.exempt = PathPatterns(exempt)
        self.required = PathPatterns(required)
        self.replayed = frozenset(_ALWAYS_REPLAYED) | {h.lower() for h in replay_headers} - _NEVER_REPLAYED
        self.max_response_bytes = max_response_bytes
        self.max_request_bytes = max_request_bytes
        self.store_5xx = store_5xx
        self.scope_of = scope_of
        self.on_failure = on_failure
        self.wait = wait
        self.mismatch_code = mismatch_code
        self.prefix = prefix
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, principal: Principal | None
    ) -> None:
        """The gateway's step: answer from the store, or run `app` once and store its response."""
        path: str = scope["path"]
        if scope["method"] not in self.methods or self.exempt.matches(path):
            await app(scope, receive, send)
            return
        raw = _header(scope, b"idempotency-key")
        if raw is None:
            if self.required.matches(path):
                await self._answer(self._error("idempotency_key_required"), scope, receive, send)
            else:
                await app(scope, receive, send)
            return
        if not _KEY.fullmatch(raw) or not raw.strip():
            await self._answer(self._error("invalid_idempotency_key"), scope, receive, send)
            return
        body = await _read_body(receive, self.max_request_bytes)
        if body is None:  # the client left, or sent more than we fingerprint
            await self._answer(self._error_for_status(413), scope, receive, send)
            return
        fingerprint = hashlib.sha256(b"%s\0%s\0%s" % (scope["method"].encode(), path.encode(), body)).hexdigest()
        tenant = self.scope_of(scope, principal) if self.scope_of else _tenant(scope, principal)
        key = f"{self.prefix}:{{{tenant.replace('{', '(').replace('}', ')')}}}:{hashlib.sha1(raw.encode()).hexdigest()}"
        owner = secrets.token_hex(8)
        replay_receive = _replaying(body, receive)
        try:
            reply = await self._claim(key, fingerprint, owner)
        except BackendUnavailable as exc:
            logger.warning("idempotency store unavailable (%s): %s", exc, self.on_failure)
            if self.on_failure == "fail_open":
                await app(scope, replay_receive, send)
                return
            error = self.kit.component_error("service_unavailable", None, dependency=self.backend.name)
            error.retry_after = 1
            await self._answer(error, scope, receive, send)
            return
        state = reply[0]
        if state == b"claimed":
            await self._run(key, owner, scope, replay_receive, send, app)
        elif reply[1].decode() != fingerprint:
            await self._answer(self._error(self.mismatch_code), scope, receive, send)
        elif state == b"completed" and reply[2][:1] == b"U":  # ran once, response too big to keep
            await self._answer(self._error("idempotency_response_unavailable"), scope, receive, send)
        elif state == b"completed":
            await _replay(reply[2], send)
        else:
            await self._answer(self._error("idempotency_key_in_use"), scope, receive, send)

    async def _claim(self, key: str, fingerprint: str, owner: str) -> list[Any]:
        reply = await self.backend.idempotency_claim(key, fingerprint, owner, self.lease_ms)
        if reply[0] != b"in_progress" or self.wait <= 0 or reply[1].decode() != fingerprint:
            return reply
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while reply[0] == b"in_progress" and loop.time() < deadline:
            await asyncio.sleep(0.05)
            reply = await self.backend.idempotency_claim(key, fingerprint, owner, self.lease_ms)
        return reply

    async def _run(self, key: str, owner: str, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        capture = _Capture(self.max_response_bytes)

        async def capturing_send(message: Message) -> None:
            capture.add(message)
            await send(message)

        loop = asyncio.get_running_loop()
        renewal: list[asyncio.Task[None]] = []
        timer = loop.call_later(self.lease_ms / 3000, lambda: renewal.append(loop.create_task(self._renew(key, owner))))
        try:
            await app(scope, receive, capturing_send)
        except BaseException:
            # the handler failed (or was cancelled): let a retry run; never block on it
            self._background.add(task := loop.create_task(self._release(key, owner)))
            task.add_done_callback(self._background.discard)
            raise
        finally:
            timer.cancel()
            for task in renewal:
                task.cancel()
        if not capture.complete or not self._stored(capture.status):
            await self._release(key, owner)
            return
        blob = capture.blob(self.replayed)
        try:
            await self.backend.idempotency_complete(key, owner, blob, self.ttl_ms)
        except BackendUnavailable as exc:  # the response went out; the claim lapses with its lease
            logger.error("could not store the idempotent response (%s); the key frees up after its lease", exc)

    def _stored(self, status: int) -> bool:
        if 200 <= status < 300:
            return True
        if 400 <= status < 500:
            return status not in _NOT_STORED
        return status >= 500 and self.store_5xx

    async def _renew(self, key: str, owner: str) -> None:
        interval = self.lease_ms / 3000
        while True:
            try:
                if not await self.backend.idempotency_renew(key, owner, self.lease_ms):
                    return
            except BackendUnavailable:
                pass
            await asyncio.sleep(interval)

    async def _release(self, key: str, owner: str) -> None:
        try:
            await self.backend.idempotency_release(key, owner)
        except BackendUnavailable as exc:
            logger.warning("could not release an idempotency key (%s); it frees up after its lease", exc)

    def _error(self, code: str) -> APIError:
        return self.kit.component_error(code, IDEMPOTENCY_CODES)

    def _error_for_status(self, status: int) -> APIError:
        from errorkit.handlers import bare_error

        return bare_error(self.kit.registry.for_status(status))

    async def _answer(self, error: APIError, scope: Scope, receive: Receive, send: Send) -> None:
        await self.kit.handler.response(error, scope)(scope, receive, send)


class _Capture:
    """Collects a response as it is sent, up to a size limit."""

    __slots__ = ("body", "complete", "headers", "limit", "size", "status", "too_big")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.complete = False
        self.too_big = False

    def add(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.limit:
                self.too_big, self.body = True, []
            elif not self.too_big:
                self.body.append(chunk)
            if not message.get("more_body", False):
                self.complete = True

    def blob(self, replayed: frozenset[str]) -> bytes:
        """`<status>\\n<headers json>\\n<body>`, or `U<status>` for a response too big to keep."""
        if self.too_big:
            return b"U%d" % self.status
        headers = [
            [k.decode("latin-1"), v.decode("latin-1")]
            for k, v in self.headers
            if k.decode("latin-1").lower() in replayed
        ]
        return b"%d\n%s\n%s" % (self.status, json.dumps(headers).encode(), b"".join(self.body))


async def _replay(blob: bytes, send: Send) -> None:
    status, headers_json, body = blob.split(b"\n", 2)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(headers_json)]
    headers += [(b"content-length", b"%d" % len(body)), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": int(status), "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then defers to the real one."""
    sent = False

    async def replaying_receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying_receive


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _tenant(scope: Scope, principal: Principal | None) -> str:
    if principal is not None:
        return f"ws:{principal.workspace_id}:key:{principal.key_id}"
    client = scope.get("client")
    return f"anon:{client[0] if client else '-'}"
