"""Testing an app that uses errorkit: pytest fixtures, synchronous store helpers and `assert_error`.

errorkit installs a pytest plugin (the `pytest11` entry point `errorkit`, the module
`errorkit_pytest_plugin`, which imports errorkit only when a test asks for a fixture): its fixtures,
documented here, are there in every test without an import, and it does nothing until a test asks for
one (it opens no connection and adds no marker; it adds one command-line option).

- `errorkit_memory_backend`: a fresh `MemoryBackend` for each test;
- `errorkit_redis_backend`: a `RedisBackend` on the Redis that `--errorkit-redis-url` (or the
  environment variable `ERRORKIT_TEST_REDIS_URL`) names, under a key prefix of the test's own,
  marked as holding errorkit's data, and whose keys are all deleted after the test; a test that
  asks for it without a URL fails, saying how to give one;
- `issue_key`, `register_key`, `set_usage`: `issue_api_key`, `register_api_key` and
  `Quotas.set_usage` for a plain (synchronous) test; `reset`: forget a long-lived store's rate-limit
  counters, idempotency records, quota usage and concurrency slots, keeping its API keys;
- `assert_error(response, error, **details)`: the response is that documented error, whole
  (status, body format, code, details, request id, retry headers); a readable difference when not.

Threads: a `MemoryBackend` is plain dicts with no lock. A helper changes it from the calling thread
(or a worker thread the caller waits for), so never run one while a request is in flight on a
`TestClient`'s portal thread (a request sent from another thread of the test): call helpers between
requests. A store that is neither a `MemoryBackend` nor a `RedisBackend` is refused while an event
loop runs in the calling thread: the helper would use it on a loop of its own, not the one it lives on.

    from errorkit.testing import assert_error, issue_key

    def test_over_quota(errorkit_memory_backend):
        key = issue_key(errorkit_memory_backend, workspace_id="ws_1", plan="free")
        ...
        assert_error(response, QuotaExceeded, usage=3, limit=3)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, Unpack

from pydantic_core import to_jsonable_python

from errorkit._app.handlers import should_retry
from errorkit._app.kit import ErrorKit
from errorkit._common.principal import APIKeyRecord
from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import DetailFormat, EnvelopeFormat, Format, ParsedBody, ProblemFormat
from errorkit._errors.registry import Registry
from errorkit._stages.keys import KeyFields, issue_api_key, register_api_key
from errorkit._stages.quotas import Quotas
from errorkit._stores.memory import MemoryBackend
from errorkit._stores.protocols import KeyStore
from errorkit._stores.redis.backend import RedisBackend
from errorkit._stores.redis.connection import Timeouts
from errorkit._stores.redis.topology import ClusterClient, connect, hash_slot
from errorkit.catalogs import GENERIC
from errorkit.catalogs.traffic import STAGE_CODES
from errorkit.client import Response, error_from_response
from errorkit_pytest_plugin import (  # the plugin's fixtures, documented here (pytest loads them from there)
    REDIS_URL_VARIABLE,
    errorkit_memory_backend,
    errorkit_redis_backend,
    errorkit_redis_url,
)

__all__ = [
    "REDIS_URL_VARIABLE",
    "assert_error",
    "errorkit_memory_backend",
    "errorkit_redis_backend",
    "errorkit_redis_url",
    "issue_key",
    "register_key",
    "reset",
    "set_usage",
]

# The fixture's store waits 1 s for a reply (production's default is 50 ms): a busy CI machine is no outage.
_FIXTURE_TIMEOUTS = Timeouts(command=1.0, connect=2.0, dead_after=5.0)
# The helpers' own connections wait longer still: they set a test up, nothing waits on them.
_HELPER_TIMEOUTS = Timeouts(command=5.0, connect=5.0, dead_after=10.0)
# What `reset` deletes of a Redis store, by kind (the key layout in errorkit/_stores/redis/backend.py): rate limits,
# idempotency records, quota usage, holds and settled tokens, concurrency slots. An allow-list: another store whose
# prefix extends this one's (`myapp:tenant2`) has keys under `myapp:*` too, and they are not this store's.
_TRAFFIC_KINDS = ("rl", "ik", "quota", "quota-held", "quota-settled", "cc")
_T = TypeVar("_T")
_S = TypeVar("_S")


# -- synchronous helpers -------------------------------------------------------------------------


def issue_key(store: KeyStore, *, prefix: str = "ek_", **fields: Unpack[KeyFields]) -> str:
    """`errorkit.issue_api_key` for a synchronous test: creates a key and returns its token. It takes
    `errorkit.register_api_key`'s keywords: `workspace_id=` (required), `scopes=`, `project_id=`,
    `key_scope=`, `plan=`, `expires_at=`.

    Like every helper here, it runs on an event loop of its own (in a worker thread when the calling
    thread already runs one, which it then blocks until the store has answered). On a `RedisBackend`
    it uses a connection of its own, closed before it returns: the store's connection, bound to the
    app's event loop, is never touched, so it may be called at any time, also inside `with TestClient(app)`.
    A `MemoryBackend` is changed from this thread: not while a request is in flight on the `TestClient`'s
    portal thread (see the module's note on threads). Another store is used as it is, on that private
    loop, and refused (`TypeError`) while an event loop runs in the calling thread.
    """
    return _run(store, lambda own: issue_api_key(own, prefix=prefix, **fields))


def register_key(store: KeyStore, token: str, **fields: Unpack[KeyFields]) -> APIKeyRecord:
    """`errorkit.register_api_key` for a synchronous test: stores a key whose token you chose
    (`"ek_test.secret-1234"`), as `issue_key` does (same event loop and connection rules)."""
    return _run(store, lambda own: register_api_key(own, token, **fields))


def set_usage(quotas: Quotas, workspace_id: str, resource: str, usage: int) -> None:
    """`Quotas.set_usage` for a synchronous test: the workspace now holds `usage` units of the resource's
    quota group (e.g. 3 of a plan's 3 agents, so the next creation is refused). Same rules as `issue_key`."""
    if usage < 0:
        raise ValueError(f"usage is a count, not {usage!r}")
    group = quotas.group_of(resource)
    _run(quotas.store, lambda own: own.set_usage(workspace_id, group, usage))


def reset(store: MemoryBackend | RedisBackend) -> None:
    """Forget what requests left in a store that lives longer than a test (an app built once per module):
    rate-limit counters, idempotency records, quota usage and holds, concurrency slots. API keys stay.

    On Redis it deletes the store's keys of those kinds, and only them (a SCAN of `<prefix>:<kind>:*`
    for each kind, on each primary, on a connection of its own): the API keys, the workspaces' key
    sets, the dataset markers and another store's keys under a longer prefix (`myapp:tenant2` next to
    `myapp`) stay. Never point it at a Redis that serves real traffic under the same prefix. A fresh store
    per test (the fixtures) needs no reset. Not while a request is in flight (see the module's note on threads).
    """
    if isinstance(store, MemoryBackend):
        store._reset_traffic()
    elif isinstance(store, RedisBackend):
        _run(store, lambda own: _delete_keys(own, [f"{own.prefix}:{kind}:" for kind in _TRAFFIC_KINDS]))
    else:
        raise TypeError(f"reset() resets a MemoryBackend or a RedisBackend, not {type(store).__name__}")


def _run(store: _S, step: Callable[[_S], Awaitable[_T]]) -> _T:
    """`step(store)` to completion on an event loop of its own; on Redis, `store` is a twin with its own connection.

    The loop is an `asyncio.Runner`'s with a loop factory, which leaves the thread's current event loop as it
    found it (`asyncio.run` sets it to None afterwards). With a loop running in this thread, the step runs in a
    worker thread, this one blocked until it is done; a store other than errorkit's two is refused there.
    """

    async def main() -> _T:
        own = _twin(store)
        try:
            return await step(own)
        finally:
            if own is not store:
                assert isinstance(own, RedisBackend)
                await own.close()

    def run() -> _T:
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            return runner.run(main())

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a plain test: no loop here
        return run()
    if not isinstance(store, MemoryBackend | RedisBackend):
        raise TypeError(
            f"errorkit.testing's helpers take a {type(store).__name__} only where no event loop runs: it would be "
            "used on a loop of the helper's own, not on the one it lives on; in an async test, await the step itself"
        )
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="errorkit-testing") as worker:
        return worker.submit(run).result()


def _twin(store: _S) -> _S:
    if isinstance(store, RedisBackend):
        twin = RedisBackend(connection=connect(store.redis.config, timeout=_HELPER_TIMEOUTS), prefix=store.prefix)
        return twin  # type: ignore[return-value]
    return store


def _delete_all(backend: RedisBackend) -> None:
    """Delete every key under the fixture store's prefix, on a connection of its own."""
    _run(backend, lambda own: _delete_keys(own, [f"{own.prefix}:"]))


async def _delete_keys(backend: RedisBackend, starts: list[str]) -> int:
    """Delete the keys starting with any of `starts`, on every primary; how many.

    One SCAN per start, one UNLINK per page of it (per hash slot on a Cluster, where a command's keys share one).
    """
    client = backend.redis
    scans: list[Callable[..., Awaitable[Any]]] = [client.execute]
    if isinstance(client, ClusterClient):
        scans = [client.node(a).execute for a in await client.primary_addresses(fresh=True) if a is not None]

    deleted = 0
    for start in starts:
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in start) + "*"
        for scan in scans:
            cursor: bytes = b"0"
            while True:
                cursor, found = await scan("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                await asyncio.gather(*(client.execute("UNLINK", *names) for names in _batches(client, found)))
                deleted += len(found)
                if cursor == b"0":
                    break
    return deleted


def _batches(client: object, names: list[bytes]) -> list[list[str]]:
    """A SCAN page's keys as UNLINK batches: the page, or on a Cluster one batch per hash slot."""
    keys = [name.decode() for name in names]
    if not keys:
        return []
    if not isinstance(client, ClusterClient):
        return [keys]
    by_slot: defaultdict[int, list[str]] = defaultdict(list)
    for key in keys:
        by_slot[hash_slot(key)].append(key)
    return list(by_slot.values())


def _close(backend: RedisBackend) -> None:
    """Close the fixture store's connection on the event loop it lives on, if that loop is still there."""
    # The client keeps the loop its connection was opened on in a private attribute: no public accessor
    # exists, and closing on any other loop would touch another loop's transport.
    loop: asyncio.AbstractEventLoop | None = getattr(backend.redis, "_loop", None)
    if loop is None or loop.is_closed():  # never used, or its loop ended (TestClient's): nothing to close there
        return
    if loop.is_running():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:  # another thread's loop (a live TestClient portal)
            asyncio.run_coroutine_threadsafe(backend.close(), loop).result(timeout=10)
        return
    loop.run_until_complete(backend.close())


# -- assert_error ---------------------------------------------------------------------------------

_BUILT_IN_FORMATS = (EnvelopeFormat, ProblemFormat, DetailFormat)
_ENVELOPE, _PROBLEM, _DETAIL = EnvelopeFormat(), ProblemFormat(), DetailFormat()
_UNSHOWN_HEADERS = frozenset({"content-length", "date", "server"})
_SECRET_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization"})  # shown as <redacted>
_BODY_SHOWN = 2000  # characters of a body the failure message shows


def assert_error(
    response: Response,
    error: type[APIError] | str,
    /,
    *,
    registry: ErrorKit | Registry | None = None,
    message: str | None = None,
    retry_after: int | None = None,
    **details: Any,
) -> APIError:
    """Assert that `response` is the documented error `error`; returns it as `errorkit.client` reads it.

    `response`: Starlette's `TestClient`'s, an `httpx` one (`httpx.AsyncClient` with an `ASGITransport`
    too) or a `requests` one. `error`: the error's class (`kit.define(...)`, `catalogs.ENVELOPE_API["quota_exceeded"]`),
    or its code, then with `registry=` (the `ErrorKit` or the catalog) to know its definition: without
    one only the code, details and request id are checked, and that the status is 4xx or 5xx.

    Checked: the status is the definition's; the body is in one of the three formats (with an
    `ErrorKit` as `registry`, in that kit's format and with its doc URL for the code), with the right
    content type and that code (a detail-format validation body, `{"detail": [...]}`, names none: it
    passes only for an error whose definition has an `issues` detail, which renders that way);
    each detail named here equals the body's, compared as JSON with its types (`True` is not `1`; a
    `datetime` as the kit writes it; details not named are not checked: `assert_error(...).details == {...}`
    checks them all, and the detail format shows none); `message=`, when given, is the body's message; `X-Request-ID` is
    there and the body's `request_id` is the same (not on an idempotent replay, which keeps the first
    response's body); `x-should-retry` says what the definition's `retryable` says (false for a 5xx
    other than 503 of a POST or PATCH sent without an `Idempotency-Key`); `Retry-After` is
    `retry_after=`, else the `retry_after_seconds` detail or the definition's `retry_after` of a
    retryable code, when one of those says a number; and `retry-after-ms`, rounded up to seconds, agrees with it.

    Returned: the error as `errorkit.client.error_from_response` reads the response, with the catalog of
    `registry=` and, when `error` is a class, that class: an instance of it.

    On failure: an `AssertionError` listing each difference (`status: expected 402, got 429`) and
    then the response, its headers (cookies and credentials shown as `<redacted>`) and its body.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this function's
    definition = _definition_of(error, registry)
    kit = registry if isinstance(registry, ErrorKit) else None
    catalog = _catalog_for(
        error, kit.registry if kit is not None else registry if isinstance(registry, Registry) else GENERIC
    )
    code = definition.code if definition is not None else str(error)
    headers = response.headers
    differences: list[str] = []

    status = response.status_code
    if definition is not None and status != definition.status:
        differences.append(_differs("status", definition.status, status))
    elif definition is None and not 400 <= status <= 599:
        differences.append(f"status: expected an error status (4xx or 5xx), got {status}")

    content_type = headers.get("content-type", "")
    format, parsed = _read(response.content, content_type, kit.format if kit is not None else None)
    if format is None or parsed is None:
        shape = (
            f"the kit's {_format_name(kit.format)} format"
            if kit is not None
            else "the detail, envelope or problem format"
        )
        differences.append(f"body: expected an error body in {shape}, got something else")
    else:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != format.media_type:
            differences.append(_differs("content-type", format.media_type, media_type))
        differences += _body_differences(format, parsed, code, definition, message, details)
        if kit is not None and definition is not None and isinstance(format, EnvelopeFormat | ProblemFormat):
            wanted = kit.doc_url_for(definition)
            if parsed.doc_url != wanted:
                differences.append(_differs("doc_url", wanted, parsed.doc_url))

    differences += _request_id_differences(headers, format, parsed)

    if definition is not None:
        should = _should_retry(definition, status, response)
        if should is not None and headers.get("x-should-retry") != should:
            differences.append(_differs("x-should-retry", should, headers.get("x-should-retry")))
    differences += _retry_differences(headers, definition, parsed, retry_after)

    if differences:
        raise AssertionError(_report(code, definition, differences, response, format))
    read = error_from_response(response, catalog, format=kit.format if kit is not None else None)
    assert read is not None
    return read


def _definition_of(error: type[APIError] | str, registry: ErrorKit | Registry | None) -> ErrorDefinition | None:
    if isinstance(error, type) and issubclass(error, APIError):
        definition: ErrorDefinition | None = getattr(error, "definition", None)
        if definition is None:
            raise TypeError("APIError is the base class: pass a class made by define(), or a code")
        return definition
    if not isinstance(error, str):
        raise TypeError(f"assert_error() takes an error class or a code, not {type(error).__name__}")
    if registry is None:
        return None

    catalog = registry.registry if isinstance(registry, ErrorKit) else registry
    for known in (catalog, STAGE_CODES):  # as the kit resolves a stage's code: the catalog's own first
        if error in known:
            return known[error].definition
    raise ValueError(f"{registry!r} defines no code {error!r}, and no errorkit stage answers it")


def _catalog_for(error: type[APIError] | str, catalog: Registry) -> Registry:
    """The catalog `error_from_response` reads with: `catalog`, holding `error` when it is a class (so the
    error returned is an instance of it, also for a class no catalog holds, and for a validation body)."""
    if not isinstance(error, type):
        return catalog
    definition = error.definition
    own = Registry(f"assert_error({definition.code})", fallback=catalog)
    own.add(error)
    if _renders_without_code(definition):
        own.map_status(definition.status, definition.code)  # a codeless body of that status is this error
    return own


def _renders_without_code(definition: ErrorDefinition | None) -> bool:
    """The detail format renders the error as a validation body, `{"detail": [issues]}`: it has an `issues` detail."""
    return definition is not None and "issues" in definition.details.model_fields


def _read(content: bytes, content_type: str, format: Format | None) -> tuple[Format | None, ParsedBody | None]:
    """The body's format and what it says: in `format` only when given, else the first built-in one that reads it."""
    try:
        body = json.loads(content) if content else None
    except (ValueError, RecursionError):
        return None, None

    if format is not None:
        candidates: tuple[Format, ...] = (format,)
    elif "problem+json" in content_type:
        candidates = (_PROBLEM, _ENVELOPE, _DETAIL)
    else:
        candidates = (_ENVELOPE, _PROBLEM, _DETAIL)
    for candidate in candidates:
        parsed = candidate.parse(body)
        if parsed is not None:
            return candidate, parsed
    return None, None


def _body_differences(
    format: Format,
    parsed: ParsedBody,
    code: str,
    definition: ErrorDefinition | None,
    message: str | None,
    details: Mapping[str, Any],
) -> list[str]:
    differences = []
    validation_body = isinstance(format, DetailFormat) and parsed.code is None and "issues" in parsed.details
    if validation_body and not _renders_without_code(definition):
        differences.append(f"code: expected {_show(code)}, got a validation body (no code)")
    elif parsed.code != code and not validation_body:
        differences.append(_differs("code", code, parsed.code))
    if message is not None and parsed.message != message:
        differences.append(_differs("message", message, parsed.message))

    for name, value in details.items():
        wanted = to_jsonable_python(value)
        if name not in parsed.details:
            unshown = " (the detail format shows no details)" if isinstance(format, DetailFormat) else ""
            differences.append(f"details.{name}: expected {_show(wanted)}, got nothing{unshown}")
        elif _as_json(parsed.details[name]) != _as_json(wanted):  # with types: true is not 1, 1.0 is not 1
            differences.append(_differs(f"details.{name}", wanted, parsed.details[name]))
    return differences


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _request_id_differences(headers: Mapping[str, str], format: Format | None, parsed: ParsedBody | None) -> list[str]:
    """`X-Request-ID` is there, and the body says the same id (the built-in formats always carry one; a replay
    keeps the first response's body, so its id is not this response's)."""
    request_id = headers.get("x-request-id")
    if not request_id:
        return ["x-request-id: expected a request id, got none"]
    if parsed is None or headers.get("idempotent-replayed") == "true":
        return []
    if parsed.request_id is None and not isinstance(format, _BUILT_IN_FORMATS):
        return []  # a format of your own that carries none
    if parsed.request_id != request_id:
        return [_differs("request_id (the body's, as X-Request-ID)", request_id, parsed.request_id)]
    return []


def _should_retry(definition: ErrorDefinition, status: int, response: Response) -> str | None:
    """`x-should-retry` as the kit sends it, or None when it depends on a request the response does not carry."""
    if definition.retryable and status >= 500 and status != 503:  # (the answer depends on the request's method and key)
        try:
            request = getattr(response, "request", None)  # (httpx raises RuntimeError for a response built by hand)
        except RuntimeError:
            request = None
        if request is None or getattr(request, "method", None) is None:
            return None
        method, keyed = str(request.method).upper(), "idempotency-key" in request.headers
    else:
        method, keyed = "GET", False
    return "true" if should_retry(definition.retryable, status, method, keyed=keyed) else "false"


def _retry_differences(
    headers: Mapping[str, str], definition: ErrorDefinition | None, parsed: ParsedBody | None, retry_after: int | None
) -> list[str]:
    seconds = retry_after
    if seconds is None and definition is not None and definition.retryable:
        said = parsed.details.get("retry_after_seconds") if parsed is not None else None
        default = said if isinstance(said, int | float) and not isinstance(said, bool) else definition.retry_after
        seconds = None if default is None else max(1, math.ceil(default))

    header = headers.get("retry-after")
    if seconds is not None and header != str(seconds):
        return [_differs("retry-after", str(seconds), header)]  # (retry-after-ms is read against a right one)
    if header is None:
        return []
    if not _is_count(header):  # ("²".isdigit() is true, and int() refuses it)
        return [f"retry-after: expected whole seconds, got {_show(header)}"]

    expected = int(header)
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is None or not _is_count(milliseconds) or math.ceil(int(milliseconds) / 1000) != expected:
        return [
            f"retry-after-ms: expected {(expected - 1) * 1000 + 1} to {expected * 1000} "
            f"(Retry-After {expected} s), got {_show(milliseconds)}"
        ]
    return []


def _is_count(text: str) -> bool:
    """ASCII digits only, as HTTP writes a number (str.isdigit alone accepts "²" and other digits)."""
    return text.isascii() and text.isdigit()


def _differs(what: str, expected: Any, got: Any) -> str:
    return f"{what}: expected {_show(expected)}, got {_show(got)}"


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _format_name(format: Format) -> str:
    return format.name or type(format).__name__


def _report(
    code: str, definition: ErrorDefinition | None, differences: list[str], response: Response, format: Format | None
) -> str:
    expected = f"{code} ({definition.status})" if definition is not None else code
    count = "1 difference" if len(differences) == 1 else f"{len(differences)} differences"
    lines = [f"the response is not the error {expected}: {count}"]
    lines += [f"  {difference}" for difference in differences]

    shape = f", {_format_name(format)} format" if format is not None else ""
    lines.append(f"the response: {response.status_code}{shape}")
    lines += [
        f"  {name.lower()}: {'<redacted>' if name.lower() in _SECRET_HEADERS else value}"
        for name, value in response.headers.items()
        if name.lower() not in _UNSHOWN_HEADERS
    ]
    try:
        body = json.dumps(json.loads(response.content), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        body = response.content.decode("utf-8", errors="replace")
    if len(body) > _BODY_SHOWN:
        body = body[:_BODY_SHOWN] + f"... ({len(body) - _BODY_SHOWN} more characters)"
    lines += [f"  {line}" for line in body.splitlines()] if body else ["  (no body)"]
    return "\n".join(lines)
