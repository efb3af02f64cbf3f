"""Error responses read back on the client: an httpx or requests response becomes a typed error.

    from errorkit import catalogs
    from errorkit.client import async_error_hook, error_from_response

    error = error_from_response(response, catalogs.ENVELOPE_API)   # None for a success
    client = httpx.AsyncClient(event_hooks={"response": [async_error_hook(catalogs.ENVELOPE_API)]})

The error is the registry's class when the body's code is one the registry defines with
that status (catch `ENVELOPE_API["quota_exceeded"]`), else a subclass of `UnknownError`
made for that code. It carries the code, message, details, the request id and the retry
hints: `retry_after` (seconds, from `retry-after-ms` first, then `Retry-After` as seconds or
an HTTP date) and `definition.retryable` (the server's `x-should-retry` when sent).
The body format is recognised by its shape (envelope, RFC 9457, `detail`/`code`).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from errorkit._definition import ErrorDefinition
from errorkit._errors import APIError
from errorkit._formats import DetailFormat, EnvelopeFormat, Format, ParsedBody, ProblemFormat, status_phrase
from errorkit._registry import Registry
from errorkit.catalogs import GENERIC

__all__ = [
    "Response",
    "UnknownError",
    "async_error_hook",
    "error_from_response",
    "error_hook",
    "raise_for_error",
    "retry_delay",
]

# statuses the OpenAI and Anthropic SDKs retry when no x-should-retry header says otherwise
_RETRIED_BY_SDKS = frozenset({408, 409, 429})
_PROBLEM, _ENVELOPE, _DETAIL = ProblemFormat(), EnvelopeFormat(), DetailFormat()


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


def error_from_response(response: Response, registry: Registry = GENERIC) -> APIError | None:
    """The typed error a response stands for, or None when its status is not an error (below 400)."""
    status = response.status_code
    if status < 400:
        return None
    headers = response.headers
    parsed = _parse(response.content, headers.get("content-type", ""))
    cls = _class_for(registry, status, parsed, headers.get("x-should-retry"))
    delay = retry_delay(headers)
    error = cls(
        message=parsed.message,
        headers=dict(headers.items()),
        retry_after=None if delay is None else max(0, math.ceil(delay)),
        _details=parsed.details,
    )
    error._request_id = parsed.request_id or headers.get("x-request-id")
    return error


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
    """Seconds to wait before a retry, as the SDKs read it: `retry-after-ms`, then `Retry-After`."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value / 1000
    retry_after = headers.get("retry-after")
    if retry_after is None:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        moment = email.utils.parsedate_tz(retry_after)
        return None if moment is None else max(0.0, email.utils.mktime_tz(moment) - now())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _parse(content: bytes, content_type: str) -> ParsedBody:
    try:
        body: Any = json.loads(content) if content else None
    except ValueError:
        body = None
    formats: tuple[Format, ...] = (
        (_PROBLEM, _ENVELOPE, _DETAIL) if "problem+json" in content_type else (_ENVELOPE, _PROBLEM, _DETAIL)
    )
    for format in formats:
        parsed = format.parse(body)
        if parsed is not None:
            return parsed
    return ParsedBody(None, None, {}, None)


_UNKNOWN: dict[tuple[str, int, bool], type[APIError]] = {}


def _class_for(registry: Registry, status: int, parsed: ParsedBody, should_retry: str | None) -> type[APIError]:
    code = parsed.code
    if code is not None and code in registry and registry[code].definition.status == status:
        return registry[code]
    if code is None:
        known = registry.for_status(status)
        if known.definition.status == status and not issubclass(known, UnknownError):
            return known
    retryable = should_retry == "true" if should_retry in ("true", "false") else (
        status in _RETRIED_BY_SDKS or status >= 500
    )  # fmt: skip
    name = code or f"http_{status}"
    cls = _UNKNOWN.get((name, status, retryable))
    if cls is None:
        definition = ErrorDefinition(
            code=name,
            status=status,
            message=status_phrase(status),
            title=status_phrase(status),
            retryable=retryable,
        )
        cls = _UNKNOWN[(name, status, retryable)] = type(
            "".join(part.capitalize() for part in name.split("_")) or "Unknown",
            (UnknownError,),
            {"definition": definition, "__module__": "errorkit.client", "__slots__": ()},
        )
    return cls
