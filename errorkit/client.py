"""Error responses read back on the client: an httpx or requests response becomes a typed error.

    from errorkit import catalogs
    from errorkit.client import async_error_hook, error_from_response

    error = error_from_response(response, catalogs.ENVELOPE_API)   # None for a success
    client = httpx.AsyncClient(event_hooks={"response": [async_error_hook(catalogs.ENVELOPE_API)]})

The error is the registry's class when the body's code is one the registry (or errorkit's
stages) defines with that status (catch `ENVELOPE_API["quota_exceeded"]`), else a subclass of
`UnknownError` made for that code. It carries the code, message, details, the request id, the
retry hint `retry_after` (seconds rounded up, from `retry-after-ms` first, then `Retry-After`
as seconds or an HTTP date; None when the server sent neither or sent nothing readable; at
most `MAX_RETRY_DELAY`, 60 s: a longer wait is cut to it) and `response_headers`;
`should_retry(error)` is the server's `x-should-retry`, else the definition's `retryable`.
The body format is recognised by its shape (envelope, RFC 9457, `detail`/`code`).

Whatever the response holds (a body nested too deep to parse, a code no class name can
carry, a date past the year 9999), `error_from_response` returns an error, never raises one
of its own: what it cannot read is simply not there (no code, no hint).
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import DetailFormat, EnvelopeFormat, Format, ParsedBody, ProblemFormat, status_phrase
from errorkit._errors.registry import Registry
from errorkit.catalogs import GENERIC
from errorkit.catalogs.traffic import STAGE_CODES

__all__ = [
    "MAX_RETRY_DELAY",
    "Response",
    "UnknownError",
    "async_error_hook",
    "error_from_response",
    "error_hook",
    "raise_for_error",
    "retry_delay",
    "should_retry",
]

MAX_RETRY_DELAY = 60.0
"""The longest retry delay read from a response, in seconds: a longer `Retry-After` counts as this
(the OpenAI and Anthropic SDKs follow the header only up to 60 s)."""
# statuses the OpenAI and Anthropic SDKs retry when no x-should-retry header says otherwise
_RETRIED_BY_SDKS = frozenset({408, 409, 429})
_PROBLEM = ProblemFormat()
_ENVELOPE = EnvelopeFormat()
_DETAIL = DetailFormat()


class Response(Protocol):
    """What is read of a response: httpx's and requests' responses both have it."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...


class UnknownError(APIError):
    """Base of the errors whose code the registry does not define (one subclass per code and status)."""

    __slots__ = ()


def error_from_response(
    response: Response, registry: Registry = GENERIC, *, format: Format | None = None
) -> APIError | None:
    """The typed error a response stands for, or None when its status is not an error (below 400).

    `format`: a custom body format to try first (the built-in three are recognised anyway).
    """
    status = response.status_code
    if status < 400:
        return None

    headers = response.headers
    parsed = _parse(response.content, headers.get("content-type", ""), format)
    cls = _class_for(registry, status, parsed.code)
    error = cls(message=parsed.message, _details=parsed.details)

    delay = retry_delay(headers)
    error._retry_after = None if delay is None else math.ceil(delay)  # what the server said, nothing assumed
    error._request_id = parsed.request_id or headers.get("x-request-id")
    error._response_headers = headers
    return error


def should_retry(error: APIError) -> bool:
    """Whether a retry may succeed: the server's `x-should-retry` when it sent one, else the definition's."""
    said = error.response_headers.get("x-should-retry")
    if said in ("true", "false"):
        return said == "true"
    return error.definition.retryable


def raise_for_error(response: Response, registry: Registry = GENERIC) -> None:
    """Raise the response's typed error, if it is one."""
    error = error_from_response(response, registry)
    if error is not None:
        raise error


class _Readable(Response, Protocol):
    def read(self) -> bytes: ...


class _AsyncReadable(Response, Protocol):
    async def aread(self) -> bytes: ...


def error_hook(registry: Registry = GENERIC) -> Callable[[_Readable], None]:
    """An httpx `Client(event_hooks={"response": [...]})` hook raising the typed error of error responses."""

    def hook(response: _Readable) -> None:
        if response.status_code >= 400:
            response.read()  # event hooks run before the body is read
            raise_for_error(response, registry)

    return hook


def async_error_hook(registry: Registry = GENERIC) -> Callable[[_AsyncReadable], Awaitable[None]]:
    """The same hook for `httpx.AsyncClient`."""

    async def hook(response: _AsyncReadable) -> None:
        if response.status_code >= 400:
            await response.aread()
            raise_for_error(response, registry)

    return hook


def retry_delay(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait before a retry, as the SDKs read it: `retry-after-ms`, then `Retry-After`
    (seconds or an HTTP date); at most `MAX_RETRY_DELAY`; None when neither says anything readable."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        value = _number(milliseconds)
        if value is not None:
            return min(value / 1000, MAX_RETRY_DELAY)

    retry_after = headers.get("retry-after")
    if retry_after is None:
        return None
    seconds = _number(retry_after)
    if seconds is None:
        seconds = _seconds_until(retry_after, now)
    return None if seconds is None else min(seconds, MAX_RETRY_DELAY)


def _number(text: str) -> float | None:
    """A finite, non-negative number of seconds (or milliseconds), else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _seconds_until(text: str, now: Callable[[], float]) -> float | None:
    """Seconds from now until an HTTP date (0 for one past); None for anything that is not a date
    a computer can hold (the year 10000, a 40-digit year)."""
    try:
        moment = email.utils.parsedate_tz(text)
        if moment is None:
            return None
        return max(0.0, email.utils.mktime_tz(moment) - now())
    except (ValueError, OverflowError, OSError):
        return None


def _parse(content: bytes, content_type: str, custom: Format | None) -> ParsedBody:
    try:
        body: Any = json.loads(content) if content else None
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested past the parser's depth
        body = None

    formats: tuple[Format, ...] = (
        (_PROBLEM, _ENVELOPE, _DETAIL) if "problem+json" in content_type else (_ENVELOPE, _PROBLEM, _DETAIL)
    )
    if custom is not None:
        formats = (custom, *formats)

    for format in formats:
        parsed = format.parse(body)
        if parsed is not None:
            return parsed
    return ParsedBody(None, None, {}, None)


_UNKNOWN: dict[tuple[str, int], type[APIError]] = {}
_UNKNOWN_KEPT = 1024  # classes made for unknown codes, kept so the same code is the same class
_UNKNOWN_CODE_KEPT = 256  # characters: a longer code gets a class of its own each time, never kept


def _class_for(registry: Registry, status: int, code: str | None) -> type[APIError]:
    """The registry's class (or errorkit's own, for a stage's code) when it defines `code` with
    this status, the class standing for the status when the body names no code, else an
    `UnknownError` subclass for the code (or for the bare status)."""
    if code is not None:
        for known in (registry, STAGE_CODES):
            if code in known and known[code].definition.status == status:
                return known[code]
    elif 400 <= status <= 599 and registry.for_status(status).definition.code in registry:
        return registry.for_status(status)

    name = code or f"http_{status}"
    cls = _UNKNOWN.get((name, status))
    if cls is None:
        if len(_UNKNOWN) >= _UNKNOWN_KEPT:
            _UNKNOWN.clear()

        definition = ErrorDefinition(
            code=name,
            status=status,
            message=status_phrase(status),
            title=status_phrase(status),
            retryable=status in _RETRIED_BY_SDKS or status >= 500,  # as the SDKs assume without x-should-retry
        )
        cls = type(
            _class_name(name),
            (UnknownError,),
            {"definition": definition, "__module__": "errorkit.client", "__slots__": ()},
        )
        if len(name) <= _UNKNOWN_CODE_KEPT:  # (a hostile server's megabyte codes pin no memory)
            _UNKNOWN[(name, status)] = cls
    return cls


def _class_name(code: str) -> str:
    """A class name for a code: its ASCII letters and digits, each word capitalised (`teapot_empty`:
    `TeapotEmpty`), at most 64 characters; `Unknown...` when that would not start with a letter."""
    name = "".join(part.capitalize() for part in _NOT_A_NAME.split(code))[:64]
    return name if name[:1].isalpha() else "Unknown" + name


_NOT_A_NAME = re.compile(r"[^0-9A-Za-z]+")
