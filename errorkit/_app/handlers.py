"""Turning any exception, or a stage's refusal, into an error response in the kit's format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from errorkit._common.body import request_body
from errorkit._common.exceptions import InvalidDetails, Refused
from errorkit._common.refusal import Refusal
from errorkit._common.request_id import get_request_id, incoming_request_id, new_request_id
from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import ErrorContext, Format, Issue
from errorkit._errors.registry import Registry
from errorkit._observe.log_context import log_extra
from errorkit._observe.observer import Observer
from errorkit.catalogs.traffic import STAGE_CODES

try:  # FastAPI is optional
    from fastapi.exceptions import RequestValidationError
except ImportError:  # pragma: no cover - exercised only without the extra
    RequestValidationError = None  # type: ignore[assignment,misc]

_NO_BODY_STATUSES = frozenset({204, 205, 304})


class ExceptionHandler:
    """The kit's Starlette exception handler; errorkit's middleware answers through it too.

    `doc_url` is the template (`.../errors/{code}`) for codes without a doc URL of their own.
    """

    def __init__(
        self,
        registry: Registry,
        format: Format,
        *,
        doc_url: str | None,
        validation_input: bool,
        logger: logging.Logger,
    ) -> None:
        self.registry = registry
        self.format = format
        self.doc_url = doc_url
        self.validation_input = validation_input
        self.logger = logger
        self._refusal_classes: dict[tuple[tuple[str, ...], int, str], type[APIError]] = {}
        self.observer: Observer | None = None  # set by install(): hears every error sent

    def exception_classes(self) -> list[type[Exception]]:
        """What `install()` registers in Starlette's `ExceptionMiddleware`."""
        classes: list[type[Exception]] = [APIError, Refused, HTTPException, ValidationError]
        if RequestValidationError is not None:
            classes.append(RequestValidationError)
        return classes

    async def __call__(self, request: Request, exc: Exception) -> Response:
        """Starlette handler. For a crash it is only reached from `ServerErrorMiddleware`
        (a middleware added after `install()` failed), which re-raises for the server to log."""
        if isinstance(exc, HTTPException) and (exc.status_code < 400 or exc.status_code in _NO_BODY_STATUSES):
            return Response(status_code=exc.status_code, headers=exc.headers)

        error = self.error_for(exc, request_body(request.scope))
        response = self.response(error, request.scope, exc)
        if get_request_id(request.scope) is None:
            request_id = incoming_request_id(request.scope) or new_request_id()
            response.headers["X-Request-ID"] = request_id
            if error.status >= 500:
                exc.add_note(f"errorkit request id: {request_id}")
        return response

    def doc_url_for(self, definition: ErrorDefinition) -> str | None:
        """The definition's own doc URL, else the template filled with its code."""
        return definition.doc_url_from(self.doc_url)

    def error_for(self, exc: BaseException, body: bytes | None = None) -> APIError:
        """The registry error that `exc` stands for; an unknown exception is `internal_error`.

        `body` is the request body when the gateway kept it: a decoding error that parsing
        that very body raises too is the client's malformed JSON, a 400, not a crash.
        """
        if isinstance(exc, APIError):
            return exc
        if isinstance(exc, Refused):
            return self.refusal_error(exc.refusal)

        if isinstance(exc, HTTPException):
            if exc.status_code == 400 and exc.__cause__ is not None and _client_json_fault(exc.__cause__, body):
                return self._malformed_json(exc.__cause__)  # FastAPI's "error parsing the body"
            return self._from_http_exception(exc)

        if RequestValidationError is not None and isinstance(exc, RequestValidationError):
            return self.format.validation_error(self.registry, self._issues(exc.errors()))
        if isinstance(exc, ValidationError):
            issues = self._issues(exc.errors(include_url=False), prefix=("body",))
            return self.format.validation_error(self.registry, issues)

        if _client_json_fault(exc, body):
            return self._malformed_json(exc)
        if isinstance(exc, ClientDisconnect):
            return self.registry.status_error(400)
        return self.registry.status_error(500)

    def refusal_error(self, refusal: Refusal) -> APIError:
        """The app's registry error for a stage's refusal (see `errorkit._common.refusal`)."""
        cls = self.refusal_class(refusal)
        definition = cls.definition
        fields = definition.detail_fields
        details = {name: value for name, value in refusal.details.items() if name in fields}

        # where the format shows no details (the detail shape), the stage's own sentence says them; a
        # definition formatting its details into its message says them already
        says = refusal.message is not None and not self.format.shows_details and "{" not in definition.message
        message = refusal.message if says else None

        try:
            return cls(message=message, headers=refusal.headers, retry_after=refusal.retry_after, **details)
        except InvalidDetails:  # the catalog's definition wants details this stage does not have
            return cls(message=message, headers=refusal.headers, retry_after=refusal.retry_after, _details={})

    def refusal_class(self, refusal: Refusal) -> type[APIError]:
        """The registry class a refusal becomes: the first of its codes the catalog defines, else
        the stage's default (`fallback="defaults"`), else the catalog's class for the status."""
        signature = (refusal.codes, refusal.status, refusal.fallback)
        cls = self._refusal_classes.get(signature)
        if cls is None:
            cls = self._refusal_classes[signature] = self._resolve_refusal(refusal)
        return cls

    def _resolve_refusal(self, refusal: Refusal) -> type[APIError]:
        for code in refusal.codes:
            if code in self.registry:
                return self.registry[code]
        if refusal.fallback == "defaults":
            for code in refusal.codes:
                if code in STAGE_CODES:
                    return STAGE_CODES[code]
        return self.registry.for_status(refusal.status)

    def refusal_response(self, refusal: Refusal, scope: Scope) -> Response:
        return self.response(self.refusal_error(refusal), scope)

    def response(self, error: APIError, scope: Scope, exc: BaseException | None = None) -> Response:
        """The response for `error` (raised as, or standing for, `exc`): the format's body, its
        headers and the retry hints; the observer hears of it.

        Retry hints: `Retry-After` (seconds) and `retry-after-ms`, which the OpenAI, Anthropic
        and Azure SDKs read first; `x-should-retry: true|false` from the definition's
        `retryable` (false for a 5xx other than 503 of a POST or PATCH without an
        Idempotency-Key), which the OpenAI and Anthropic SDKs obey before their own status
        rules (they retry every 409 and 5xx otherwise).
        """
        headers = error.headers
        names = {k.lower(): k for k in headers}
        if error.retry_after is not None and "retry-after" not in names:
            headers["Retry-After"] = str(error.retry_after)
            names["retry-after"] = "Retry-After"
        seconds = headers.get(names.get("retry-after", ""), "")
        if seconds.isascii() and seconds.isdigit() and "retry-after-ms" not in names:
            headers["retry-after-ms"] = str(int(seconds) * 1000)
        if "x-should-retry" not in names:
            headers["x-should-retry"] = "true" if _should_retry(error, scope) else "false"

        if self.observer is not None:
            crashed = exc is not None and error.status >= 500 and not isinstance(exc, _ON_PURPOSE)
            self.observer.error_sent(error.code, error.status, exc if crashed else None)

        if error.status in _NO_BODY_STATUSES:
            return Response(status_code=error.status, headers=headers)

        context = ErrorContext(
            request_id=get_request_id(scope),
            path=scope.get("path", ""),
            doc_url=self.doc_url_for(error.definition),
        )
        body = self.format.render(error, context)
        return JSONResponse(body, status_code=error.status, headers=headers, media_type=self.format.media_type)

    async def answer_crash(self, exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the formatted error unless a response already began; log a 5xx once.

        A response that already started cannot be replaced: the server then ends the
        connection without completing it, so the client sees a broken body, never a
        truncated one that looks whole.
        """
        error = self.error_for(exc, request_body(scope))
        if (error.status >= 500 and not isinstance(exc, Refused)) or started:  # (a stage logs its own refusals)
            self.log_crash(exc, scope, error.code)
        if not started:
            await self.response(error, scope, exc)(scope, receive, send)

    def log_crash(self, exc: BaseException, scope: Scope, code: str | None = None) -> None:
        """Log an unhandled exception once, with the request id, where trackers see it."""
        if isinstance(exc, ClientDisconnect):
            return

        extra = log_extra(code, scope)
        self.logger.error(
            "Unhandled %s in %s %s (request id %s)",
            type(exc).__name__,
            scope.get("method", "-"),
            scope.get("path", "-"),
            extra["request_id"],
            exc_info=exc,
            extra=extra,
        )

    def _malformed_json(self, exc: BaseException) -> APIError:
        loc: list[str | int] = ["body"]
        if isinstance(exc, json.JSONDecodeError):
            loc.append(exc.pos)
        elif isinstance(exc, UnicodeDecodeError):
            loc.append(exc.start)

        issue: Issue = {"loc": loc, "msg": "JSON decode error", "type": "json_invalid"}
        return self.format.validation_error(self.registry, [issue])

    def _from_http_exception(self, exc: HTTPException) -> APIError:
        message = None
        details = None
        if isinstance(exc.detail, str):
            if exc.detail and exc.detail != _starlette_default_detail(exc.status_code):
                message = exc.detail
        else:  # FastAPI allows any JSON-able detail: keep it as data
            details = {"detail": to_jsonable_python(exc.detail)}

        return self.registry.status_error(exc.status_code, message=message, headers=exc.headers, details=details)

    def _issues(self, errors: Iterable[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> list[Issue]:
        issues: list[Issue] = []
        for e in errors:
            issue: Issue = {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            if self.validation_input and "input" in e:
                issue["input"] = e["input"]
            issues.append(issue)
        return issues


#: Exceptions that stand for an error raised on purpose, not a crash.
_ON_PURPOSE: tuple[type[BaseException], ...] = (APIError, Refused, HTTPException, ValidationError) + (
    (RequestValidationError,) if RequestValidationError is not None else ()
)
_SAFE_TO_REPEAT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # idempotent methods (RFC 9110 9.2.2)


def _should_retry(error: APIError, scope: Scope) -> bool:
    keyed = any(name == b"idempotency-key" for name, _ in scope.get("headers", ()))
    return should_retry(error.definition.retryable, error.status, scope.get("method", "GET"), keyed=keyed)


def should_retry(retryable: bool, status: int, method: str, *, keyed: bool) -> bool:
    """`x-should-retry`: the definition's `retryable`, except for a server error of a request that is not
    safe to repeat (a POST or PATCH without an Idempotency-Key may have done its work before failing)."""
    if not retryable:
        return False
    return status < 500 or status == 503 or method in _SAFE_TO_REPEAT or keyed


def _starlette_default_detail(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


_DECODING_ERRORS = (ValueError, RecursionError)  # JSONDecodeError and UnicodeDecodeError are ValueErrors


def _client_json_fault(exc: BaseException, body: bytes | None) -> bool:
    """True when `exc` is what parsing the client's own body as JSON raises: the client's fault.

    The test is semantic, not a look at the traceback: the body the gateway kept is parsed
    again, and must fail with an exception of the same type (a JSONDecodeError, invalid
    UTF-8, nesting too deep, an integer with too many digits).
    """
    if body is None or not isinstance(exc, _DECODING_ERRORS):
        return False
    try:
        json.loads(body)
    except _DECODING_ERRORS as again:
        return type(again) is type(exc)  # the same class exactly (a subclass is another failure), not for speed
    return False
