"""`Idempotency-Key` replay: a request runs at most once per key; retries get the first response.

The state machine's steps (claim, complete, release, renew) are atomic store steps
(`IdempotencyStore`); everything else lives here:

- **claim**: absent -> in progress, with a request fingerprint (method, path, query
  string, body), an owner token unique to this request and a lease. A crashed worker's
  claim expires with its lease, so the key becomes usable again (no key is stuck in 409
  forever).
- **complete** (owner only) *before the response's last message leaves*, so a retry sent
  right after a success always replays: the status, an allow-list of headers and the
  body are kept for `ttl` seconds (24 h). **release** (owner only) on an exception, a
  response that is not stored, or a cancelled handler, so a retry can run again. The
  lease is renewed only if the handler outlives a third of it.
- **replay**: the stored status, headers and body byte for byte, plus
  `Idempotent-Replayed: true`; the handler does not run.
- **refusals**: malformed or repeated key header -> 400, key missing where required ->
  400, same key with a different request -> 422, same request still running -> 409 with
  `Retry-After` (or, with `wait=`, wait briefly and replay).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit._common.background import Background, keep_trying
from errorkit._common.body import BODY_KEY, keep_body
from errorkit._common.exceptions import ConfigurationError, StoreDataLost, StoreError, StoreUnavailable
from errorkit._common.paths import PathPatterns
from errorkit._common.principal import Principal
from errorkit._common.refusal import Refusal
from errorkit._common.unique import unique_token
from errorkit._observe.observer import Observer
from errorkit._stages.auth import get_principal
from errorkit._stages.charge import Charge
from errorkit._stages.failure import FailureMode, FailurePolicy
from errorkit._stages.identity import TrustedProxies
from errorkit._stages.lease import GIVE_BACK_WITHIN, renew_while_held, settle
from errorkit._stages.limits import method_names
from errorkit._stages.routes import STANDARD_METHODS, AppRoutes, nearest, serves
from errorkit._stores.protocols import Claim, ClaimRequest, ClaimState, Counted, IdempotencyStore

logger = logging.getLogger("errorkit.idempotency")

_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_NOT_STORED = frozenset({401, 403, 408, 409, 429})
_ALWAYS_REPLAYED = ("content-type", "location", "x-should-retry")
_NEVER_REPLAYED = frozenset({"set-cookie", "x-request-id", "retry-after", "date", "server", "content-length"})
_INVALID_KEY = Refusal(("invalid_idempotency_key",), 400)
_KEY_REQUIRED = Refusal(("idempotency_key_required",), 400)
_IN_USE = Refusal(("idempotency_key_in_use",), 409, retry_after=1)
_UNREPLAYABLE = Refusal(("idempotency_response_unavailable",), 409)
_TOO_LARGE = Refusal.for_status(413)
_TWO_KEYS = "\0two keys"  # compared by identity: no header value can be this object
_CLAIMED = ClaimState.CLAIMED
_COMPLETED = ClaimState.COMPLETED
_UNSTORED = ClaimState.COMPLETED_UNSTORED
_new = tuple.__new__  # a NamedTuple's own constructor is a Python function: claims are built without it


@dataclass(frozen=True, slots=True)
class StoredResponses:
    """Which responses are kept for replay, and what of them.

    - `replay_headers`: response headers kept besides `Content-Type` and `Location`
      (`Set-Cookie` and per-request headers never are);
    - `store_5xx`: also keep server errors (off: they are released for a retry);
    - `max_bytes`: larger responses are not kept; a retry gets 409
      `idempotency_response_unavailable` instead of running again.
    """

    replay_headers: Iterable[str] = ()
    store_5xx: bool = False
    max_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "replay_headers", tuple(self.replay_headers))
        if self.max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, not {self.max_bytes}")


class Idempotency:
    """Makes `methods` requests (POST by default) carrying `Idempotency-Key` run at most once.

    - `ttl` (seconds, 24 h) keeps completed responses; `lease` bounds how long a crashed
      worker can hold a key; `wait`: seconds to wait for a running first request and
      replay it, instead of 409;
    - `exempt` / `required`: paths (a trailing `*` matches a prefix) that ignore keys, or
      that refuse requests without one;
    - `responses`: `StoredResponses` (what is kept and replayed);
    - `max_request_bytes`: larger bodies with a key are refused (413);
    - `scope_of`: `(scope, principal) -> str | None`, whose keys are separate (None, and the
      default: the workspace and API key or user, so one tenant can never replay another's
      response; the client address, seen through `trusted_proxies`, for anonymous requests);
    - `on_failure`: `FailurePolicy` while the store is unreachable (default fail closed:
      503, the guarantee cannot be kept; fail open runs the request unguarded);
    - `mismatch_code`: the code for a key reused with another request.
    """

    def __init__(
        self,
        records: IdempotencyStore,
        *,
        methods: Iterable[str] = ("POST",),
        exempt: Iterable[str] = (),
        required: Iterable[str] = (),
        ttl: float = 24 * 3600,
        lease: float = 30.0,
        wait: float = 0.0,
        responses: StoredResponses = StoredResponses(),
        max_request_bytes: int = 10 << 20,
        scope_of: Callable[[Scope, Principal | None], str | None] | None = None,
        trusted_proxies: Iterable[str] = (),
        on_failure: FailurePolicy | FailureMode = "fail_closed",
        mismatch_code: str = "idempotency_key_reused",
    ) -> None:
        if ttl < 0.001 or lease < 0.001:
            raise ValueError(f"ttl and lease must be at least a millisecond, not ttl={ttl!r}, lease={lease!r}")

        self.records = records
        self.methods = frozenset(method_names(methods, "Idempotency(methods=...)"))
        self.exempt = PathPatterns(exempt, "Idempotency(exempt=...)")
        self.required = PathPatterns(required, "Idempotency(required=...)")
        self.ttl_ms = int(ttl * 1000)
        self.lease_ms = int(lease * 1000)
        self.give_back_within = max(GIVE_BACK_WITHIN, lease)  # (after that, the claim has lapsed anyway)
        self.wait = wait

        self.responses = responses
        kept = {h.lower() for h in responses.replay_headers} - _NEVER_REPLAYED
        names = frozenset(_ALWAYS_REPLAYED) | kept
        self.replayed = frozenset(name.encode("latin-1") for name in names)

        self.max_request_bytes = max_request_bytes
        self.scope_of = scope_of
        self.proxies = TrustedProxies(trusted_proxies)
        self.on_failure = FailurePolicy.of(on_failure)
        self.mismatch = Refusal((mismatch_code,), 422)
        self._background = Background()
        self.observer: Observer | None = None  # set by install(): metrics, traces

    def check_routes(self, app: AppRoutes) -> None:
        """When the app starts: `exempt=` and `required=` paths reach routes of the app, and every
        method in `methods=` is a standard one or served by one of its routes."""
        app.check_paths(self.exempt.patterns, "Idempotency(exempt=...)")
        app.check_paths(self.required.patterns, "Idempotency(required=...)")

        served = {method for s in app.served for method in s.methods or ()}
        unknown = sorted(self.methods - served - STANDARD_METHODS)
        if unknown:
            raise ConfigurationError(
                f"Idempotency(methods=...): no route of the app serves {unknown[0]!r}"
                + nearest(unknown[0], sorted(served | STANDARD_METHODS))
            )

    def guards(self, method: str, path: str) -> bool:
        """Whether requests to this route (`path` a template) may carry an Idempotency-Key."""
        return method.upper() in self.methods and not self.exempt.matches(path)

    def route_refusals(self, method: str, path: str) -> list[Refusal]:
        """What this stage may refuse on a route, for its documentation."""
        if not self.guards(method, path):
            return []

        refusals = [_INVALID_KEY, _TOO_LARGE, _IN_USE, _UNREPLAYABLE, self.mismatch]
        if self.required.matches(path):
            refusals.append(_KEY_REQUIRED)
        if not self.on_failure.fails_open:
            refusals.append(self.on_failure.refusal(self.records.name))
        return refusals

    def claimed_key(self, scope: Scope) -> str | None:
        """The key `wrap` will claim this request under (unless its body is too large): a valid key on a
        guarded route; else None."""
        raw = self._key_of(scope)
        return raw if isinstance(raw, str) else None

    async def wrap(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        charge: Charge | None = None,
        key: str | None = None,
    ) -> Refusal | None:
        """The gateway's wrapping stage: replay, refuse, or run `app` once and keep its response.

        `charge` and `key`, given only for a request `claimed_key()` named the key of, are the
        limiter's charge (counted in the claim's step) and that key.
        """
        raw = self._key_of(scope) if key is None else key
        if raw is None:  # nothing to guard: not a guarded route, or no key where none is required
            await app(scope, keep_body(scope, receive), send)
            return None
        if isinstance(raw, Refusal):
            return raw

        message = await receive()  # (the whole body in one message, the common case, read without a coroutine)
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")
            body = body if len(body) <= self.max_request_bytes else None
        else:
            body = await _read_body(receive, self.max_request_bytes, message)
        if body is None:  # the client left, or sent more than we fingerprint
            return (await charge.count() if charge is not None else None) or _TOO_LARGE
        scope[BODY_KEY] = body  # kept, as the gateway keeps bodies, to judge decoding errors

        request = self._claim_request(scope, raw, body)
        claim = await self._claimed(request, charge)
        if claim is None:  # the store failed, and the policy runs the request unguarded
            await app(scope, _Replaying(body, receive), send)
            return None
        if isinstance(claim, Refusal):
            return claim

        # what the claim found: run the request once, replay it, or refuse (the hot outcomes are
        # handled here rather than in a coroutine of their own: see benchmarks/README.md, issue 21)
        state = claim.state
        if state is _CLAIMED:
            if self.observer is not None:
                self.observer.idempotency_outcome("first_run")
            await self._run(request.tenant, request.key, request.owner, scope, _Replaying(body, receive), send, app)
            return None
        if state is _COMPLETED and claim.fingerprint == request.fingerprint:
            if self.observer is not None:
                self.observer.idempotency_outcome("replayed")
            await _replay(claim.response, send)
            return None
        return self._refused(claim, request)

    def _key_of(self, scope: Scope) -> str | Refusal | None:
        """The request's `Idempotency-Key`; None when there is nothing to guard; the 400 for a key that
        is missing where one is required, malformed, or sent twice."""
        if scope["method"] not in self.methods or self.exempt.matches_request(scope):
            return None

        raw = _idempotency_key(scope)
        if raw is None:
            return _KEY_REQUIRED if self.required.matches_request(scope) else None
        if raw is _TWO_KEYS or not _KEY.fullmatch(raw) or not raw.strip():
            return _INVALID_KEY
        return raw

    def _claim_request(self, scope: Scope, raw: str, body: bytes) -> ClaimRequest:
        """The claim to make: whose key it is (the tenant's: two tenants' keys never meet), the
        request's fingerprint (method, path, query string, body) and a fresh owner token."""
        request = b"%s\0%s\0%s\0%s" % (
            scope["method"].encode(),
            scope["path"].encode(),
            scope.get("query_string", b""),
            body,
        )
        fingerprint = hashlib.blake2b(request, digest_size=16).digest()  # 128 raw bits: 16 bytes a record

        principal = get_principal(scope)
        tenant = self.scope_of(scope, principal) if self.scope_of is not None else None
        if tenant is not None:
            key = raw
        elif principal is not None:  # the workspace is the hash tag, as for the limiter; keys are per key or user
            tenant, key = "ws:" + principal.workspace_id, f"{principal.key_id}\0{raw}"
        else:
            tenant, key = "ip:" + self.proxies.client_address(scope), raw
        return _new(ClaimRequest, (tenant, key, fingerprint, unique_token(), self.lease_ms))

    async def _claimed(self, request: ClaimRequest, charge: Charge | None) -> Claim | Refusal | None:
        """Claim the key, counting the limiter's `charge` in the same store step when given.

        Returns the claim; a refusal (the limit's 429, or a failure policy's 503); or None when the
        store failed and the policy lets the request run unguarded."""
        answered = False  # the store answered the charge: a later failure is idempotency's alone
        try:
            if charge is None:
                return await self._claim(request)

            counted, charged = await charge.count_and_claim(request)
            answered = True
            limited = charge.settle(counted)
            if limited is not None:
                return limited
            if charged is not None and (charged.state is not ClaimState.IN_PROGRESS or self.wait <= 0):
                return charged  # nothing to wait for (one coroutine fewer on the hot path)
            return await self._claim(request, charged)
        except StoreUnavailable as exc:
            made = exc.counted if isinstance(exc, StoreDataLost) else None
            if charge is not None and isinstance(made, Counted):  # the limit counted: its headers, its 429 first
                answered = True
                limited = charge.settle(made)
                if limited is not None:
                    return limited

            # the limiter's policy, unless the store did answer (it counted) and only the records are lost
            limiter_failed = charge is not None and not answered and not isinstance(exc, StoreDataLost)
            limited = charge.failed(exc) if charge is not None and limiter_failed else None
            if limited is not None:
                return limited

            passes = "requests run without replay protection (a retry may run twice)"
            refusal = self.on_failure.failed("idempotency", self.records.name, exc, passes=passes)
            if self.observer is not None:
                self.observer.idempotency_outcome("store_failure")
            return None if self.on_failure.fails_open else refusal

    async def _claim(self, request: ClaimRequest, first: Claim | None = None) -> Claim:
        """Claim (or take `first`, made already), then wait up to `wait` for one in progress to finish."""
        tenant, key = request.tenant, request.key
        claim = first
        if claim is None:
            claim = await self.records.claim(tenant, key, request.fingerprint, request.owner, self.lease_ms)
        if claim.state is not ClaimState.IN_PROGRESS or self.wait <= 0 or claim.fingerprint != request.fingerprint:
            return claim

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while claim.state is ClaimState.IN_PROGRESS and loop.time() < deadline:
            await asyncio.sleep(0.05)
            claim = await self.records.claim(tenant, key, request.fingerprint, request.owner, self.lease_ms)
        return claim

    def _refused(self, claim: Claim, request: ClaimRequest) -> Refusal:
        """The claim found the key taken by another request, one still running, or one whose response
        was too big to keep."""
        observer = self.observer
        if claim.fingerprint != request.fingerprint:
            if observer is not None:
                observer.idempotency_outcome("mismatch")
            return self.mismatch

        unstored = claim.state is _UNSTORED
        if observer is not None:
            observer.idempotency_outcome("unreplayable" if unstored else "in_flight")
        return _UNREPLAYABLE if unstored else _IN_USE

    async def _run(
        self, tenant: str, key: str, owner: str, scope: Scope, receive: Receive, send: Send, app: ASGIApp
    ) -> None:
        run = _Run(self, tenant, key, owner, scope, send)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.lease_ms / 3000, run.renew)

        try:
            await app(scope, receive, run)
        finally:
            timer.cancel()
            if run.renewal is not None:
                run.renewal.cancel()
            if not run.capture.complete:  # the handler failed, was cancelled, or ended without a response
                await self._release(tenant, key, owner)  # (a retry may run; awaited even when cancelled)

    async def _finish(self, tenant: str, key: str, owner: str, capture: _Capture) -> None:
        """Keep a finished response for replay (or release the key when it is not kept)."""
        if not self._stored(capture.status):
            await self._release(tenant, key, owner)
            return

        response = None if capture.too_big else capture.blob(self.replayed)
        # the response goes out anyway; a completion the store failed is sent again (owner only: at most
        # once) until the claim's lease ends, and if it never lands the key frees up after the lease.
        # (`settle` inlined: it cost a coroutine on every first-time POST; see benchmarks/README.md)
        try:
            await self.records.complete(tenant, key, owner, response, self.ttl_ms)
        except (StoreError, asyncio.CancelledError) as exc:
            complete = functools.partial(self.records.complete, tenant, key, owner, response, self.ttl_ms)
            self._background.spawn(keep_trying(complete, self.give_back_within, "storing an idempotent response"))
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _stored(self, status: int) -> bool:
        if 200 <= status < 300:
            return True
        if 400 <= status < 500:
            return status not in _NOT_STORED
        return status >= 500 and self.responses.store_5xx

    async def _renew(self, tenant: str, key: str, owner: str) -> None:
        await renew_while_held(lambda: self.records.renew(tenant, key, owner, self.lease_ms), self.lease_ms / 3000)

    async def _release(self, tenant: str, key: str, owner: str) -> None:
        """Let a retry run: release the claim (owner only, so sent again until taken; else it lapses)."""
        what = "releasing an idempotency key"
        await settle(self._background, self.give_back_within, what, self.records.release, tenant, key, owner)


class _Run:
    """A claimed request's first run, called as the app's send: captures the response and, before
    its last message leaves, keeps it for replay (or releases the key); `renew` keeps the lease.

    A callable object rather than closures: fewer objects per request for the garbage
    collector to find alive while the request waits than functions and their cells.
    """

    __slots__ = ("app", "capture", "key", "owner", "renewal", "root_path", "scope", "send", "stage", "tenant")

    def __init__(self, stage: Idempotency, tenant: str, key: str, owner: str, scope: Scope, send: Send) -> None:
        self.stage = stage
        self.tenant, self.key = tenant, key
        self.owner = owner
        self.scope = scope
        self.send = send
        # as they are before the router runs (a Mount changes the root path, a mounted app the app)
        self.root_path, self.app = scope.get("root_path", ""), scope.get("app")
        self.capture = _Capture(stage.responses.max_bytes)
        self.renewal: asyncio.Task[None] | None = None

    async def __call__(self, message: Message) -> None:
        capture = self.capture
        capture.add(message)
        if capture.complete and message["type"] == "http.response.body":  # before the last message leaves
            stage = self.stage
            if capture.status == 405 or (
                capture.status == 404 and not serves({**self.scope, "root_path": self.root_path, "app": self.app})
            ):
                # no route took it, or not with this method (a router's or an HTTPEndpoint's 405): nothing ran
                await stage._release(self.tenant, self.key, self.owner)
            else:
                await stage._finish(self.tenant, self.key, self.owner, capture)

        await self.send(message)

    def renew(self) -> None:
        """The lease timer's callback: renew the lease until the run ends."""
        self.renewal = asyncio.get_running_loop().create_task(self.stage._renew(self.tenant, self.key, self.owner))


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

    def blob(self, replayed: frozenset[bytes]) -> bytes:
        """What a replay sends: `<status>\n<name>:<value>\n...\n\n<body>` (no header has a newline)."""
        lines = [b"%d\n" % self.status]
        for name, value in self.headers:  # (a loop: on Python 3.11 a list comprehension is a frame of its own)
            if name.lower() in replayed:
                lines.append(b"%s:%s\n" % (name, value))
        return b"".join(lines) + b"\n" + b"".join(self.body)


async def _replay(blob: bytes, send: Send) -> None:
    head, body = blob.split(b"\n\n", 1)
    status, *lines = head.split(b"\n")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines:  # (a loop: on Python 3.11 a list comprehension is a frame of its own)
        name, value = line.split(b":", 1)
        headers.append((name, value))
    headers += [(b"content-length", b"%d" % len(body)), (b"idempotent-replayed", b"true")]

    await send({"type": "http.response.start", "status": int(status), "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int, message: Message) -> bytes | None:
    """The whole body, from its first message on; None when the client left or it is over `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] != "http.request":
            return None

        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


class _Replaying:
    """A receive that gives the app the body already read, then defers to the real one."""

    __slots__ = ("body", "receive")

    def __init__(self, body: bytes, receive: Receive) -> None:
        self.body: bytes | None = body
        self.receive = receive

    async def __call__(self) -> Message:
        body = self.body
        if body is not None:
            self.body = None
            return {"type": "http.request", "body": body, "more_body": False}
        return await self.receive()


def _idempotency_key(scope: Scope) -> str | None:
    """The `Idempotency-Key` header; `_TWO_KEYS` when there are several (a 400), None when absent."""
    found = None
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            if found is not None:
                return _TWO_KEYS
            found = value.decode("latin-1")
    return found
